// Package testpki makes a throwaway certificate authority and server
// certificates for tests and the local demo: ECDSA P-256 keys, valid for 24
// hours, never meant to leave the machine. It also writes them as PEM files
// (keys 0600) for nginx and builds the trust settings Go clients need.
package testpki
