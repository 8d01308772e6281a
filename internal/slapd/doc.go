// Package slapd runs a throwaway OpenLDAP server with a small, deliberate sample
// directory, for the test suites and for `make demo`. Options add TLS (ldaps://
// and StartTLS with certificates from internal/testpki) and the memberof overlay;
// [Server.Add] loads further fixtures online.
//
// The server lives entirely in a directory the caller owns (configuration, mdb data,
// and slapd's stats log), listens on 127.0.0.1 only, and can be stopped and started
// again on the same port with the same data to simulate a directory outage. Because
// slapd runs in the foreground with `-d stats`, the package can count the BIND
// requests that reached it (see [Server.BindCount]).
package slapd
