// Package gateway runs the whole gateway natively: it prepares an nginx
// configuration directory for one instance, starts authsvc, writes the first
// ECR token with tokenwriter -once, starts nginx and the tokenwriter daemon,
// and stops them all when its context ends. It is what `make run` uses.
package gateway
