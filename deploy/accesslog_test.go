package deploy

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// accessLogs returns the access_log directives of an nginx file that log
// (not `access_log off;`).
func accessLogs(conf string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^\s*access_log\s+([^;]*);`).FindAllStringSubmatch(stripComments(conf), -1) {
		if v := strings.Join(strings.Fields(m[1]), " "); v != "off" {
			out = append(out, v)
		}
	}
	return out
}

// TestAccessLogPerInstance: nginx.conf defines gateway_json before it includes
// local/http.conf, and leaves the destination to each instance's http.conf.
// Under systemd stdout is the journal's socket: a /dev/stdout access log
// there makes nginx fail to start (ENXIO), so the VM's goes to syslog.
func TestAccessLogPerInstance(t *testing.T) {
	conf := stripComments(readFile(t, "../nginx/nginx.conf"))
	if got := accessLogs(conf); len(got) != 0 {
		t.Errorf("nginx/nginx.conf access_log %q; want none (local/http.conf chooses)", got)
	}
	format, include := strings.Index(conf, "log_format gateway_json"), strings.Index(conf, "include local/http.conf;")
	if format < 0 || include < 0 || format > include {
		t.Errorf("nginx/nginx.conf: log_format gateway_json at %d, include local/http.conf at %d; want the format first", format, include)
	}
	for _, tc := range []struct{ file, want string }{
		{"nginx/local/http.conf", "/dev/stdout gateway_json"},
		{"demo/nginx/local/http.conf", "/dev/stdout gateway_json"},
		{"kubernetes/nginx/local/http.conf", "/dev/stdout gateway_json"},
		{"systemd/nginx/local/http.conf", "syslog:server=unix:/dev/log,tag=aws_ecr_ldap,nohostname gateway_json"},
	} {
		if got := accessLogs(readFile(t, tc.file)); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%s: access_log %q; want exactly [%q]", tc.file, got, tc.want)
		}
	}
}

// worker_processes is per instance: nginx's "auto" counts a Kubernetes
// node's CPUs, not the pod's, so the pod sets a number.
func TestWorkerProcessesPerInstance(t *testing.T) {
	if strings.Contains(stripComments(readFile(t, filepath.Join("..", "nginx", "nginx.conf"))), "worker_processes") {
		t.Error("nginx/nginx.conf sets worker_processes; it belongs in local/main.conf")
	}
	for _, f := range []string{"nginx/local/main.conf", "systemd/nginx/local/main.conf", "demo/nginx/local/main.conf", "kubernetes/nginx/local/main.conf"} {
		conf := stripComments(readFile(t, f))
		if !strings.Contains(conf, "worker_processes ") {
			t.Errorf("%s: no worker_processes", f)
		}
		if strings.HasPrefix(f, "kubernetes/") && strings.Contains(conf, "worker_processes auto") {
			t.Errorf("%s: worker_processes auto counts the node's CPUs; set a number", f)
		}
	}
}
