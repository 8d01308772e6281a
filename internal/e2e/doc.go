// Package e2e is the end-to-end suite: the gateway as `make run` starts it
// (nginx with the project's nginx.conf, authsvc, tokenwriter) between a real
// OpenLDAP slapd and a real registry (Debian's docker-registry) behind the
// project's ECR emulator, driven by a real registry client
// (go-containerregistry). It has no non-test code.
package e2e
