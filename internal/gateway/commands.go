package gateway

import "path/filepath"

// The commands below are the only way the gateway's processes are started,
// natively (make run) and in containers (docker-compose.yml, Kubernetes). A
// test of the deploy files compares their commands with these.

// AuthsvcCommand is the authsvc command line. Everything else comes from the
// environment.
func AuthsvcCommand() []string { return []string{"authsvc"} }

// TokenwriterOnceCommand writes one token and exits: run before nginx starts,
// so that nginx never starts without ecr/ecr.conf.
func TokenwriterOnceCommand() []string { return []string{"tokenwriter", "-once"} }

// TokenwriterCommand keeps the token current until stopped.
func TokenwriterCommand() []string { return []string{"tokenwriter"} }

// NginxCommand runs nginx in the foreground from the configuration directory
// confDir (holding nginx.conf, local/ and ecr/), with prefix confDir, logging
// start-up errors to stderr. The pid file is named in local/main.conf, so that
// `nginx -t` (NginxTestCommand) and the running nginx agree on it.
func NginxCommand(confDir string) []string {
	return []string{
		"nginx", "-e", "stderr",
		"-p", confDir + "/",
		"-c", filepath.Join(confDir, "nginx.conf"),
		"-g", "daemon off;",
	}
}

// NginxTestCommand checks the configuration in confDir as NginxCommand would
// load it. tokenwriter runs it (NGINX_TEST_COMMAND) before every reload.
func NginxTestCommand(confDir string) []string {
	return []string{
		"nginx", "-e", "stderr", "-q", "-t",
		"-p", confDir + "/",
		"-c", filepath.Join(confDir, "nginx.conf"),
	}
}
