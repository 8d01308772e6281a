// Package loadtest measures the gateway's auth_request path under load with
// wrk: the same nginx with no auth, with auth_request to a bare Go handler
// that answers 204, and with auth_request to authsvc with a warm cache. It
// runs only when LOADTEST=1 (make bench-load) and asserts nothing about speed:
// it prints the figures for BENCHMARKS.md.
package loadtest
