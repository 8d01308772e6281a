// Package deploy holds the container deployment of the gateway: the
// Dockerfiles of authsvc, nginx and tokenwriter, the container versions of
// nginx's local/ snippets, and (at the repository root) docker-compose.yml.
//
// There is no code here, only tests. They load docker-compose.yml with
// compose-go and parse the Dockerfiles, and hold both to the command lines of
// internal/gateway and to the configuration directory contract of
// ARCHITECTURE.md; they also run the container's nginx configuration through
// a real `nginx -t`. No Docker engine is needed.
package deploy
