// Package deploy holds every way to deploy the gateway, and the tests that
// hold them to the code: the Dockerfiles and container nginx snippets (with
// docker-compose.yml at the repository root), the compose demo profile
// (compose.demo.yml, demo/), Kubernetes manifests (kubernetes/), systemd units
// (systemd/) and IAM policies (iam/).
//
// There is no code here, only tests, and no Docker engine, cluster or systemd
// is needed. They load the compose files with compose-go, decode the
// manifests into the k8s.io/api types, parse Dockerfiles and unit files, hold
// every command to internal/gateway's command lines and every file to the
// configuration directory contract of ARCHITECTURE.md, run each nginx
// configuration through a real `nginx -t`, and run the demo's ECR emulator
// wrapper natively. `go test ./deploy -update` regenerates the demo LDIF and
// the Kubernetes copy of nginx.conf.
package deploy
