package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// layout is one instance's run directory:
//
//	conf/nginx.conf         copy of the hand-edited nginx.conf
//	conf/local/main.conf    the pid file
//	conf/local/http.conf    access log, authsvc upstream, temp paths, ECR CA bundle
//	conf/local/listen.conf  listen directives, TLS certificate
//	conf/ecr/ecr.conf       written by tokenwriter
//	temp/                   nginx temp paths (unused: nothing is buffered)
//	nginx.pid
//	lock                    held while a runner uses the directory
type layout struct{ root string }

func (l layout) confDir() string   { return filepath.Join(l.root, "conf") }
func (l layout) tokenFile() string { return filepath.Join(l.root, "conf", "ecr", "ecr.conf") }
func (l layout) pidFile() string   { return filepath.Join(l.root, "nginx.pid") }
func (l layout) lockFile() string  { return filepath.Join(l.root, "lock") }

// lock creates the run directory and takes its lock, so that a second runner
// pointed at the same directory stops before it rewrites the first one's
// files. The lock goes with the process.
func (l layout) lock() (*os.File, error) {
	if err := os.MkdirAll(l.root, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(l.lockFile(), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("GATEWAY_RUN_DIR %s is in use by another gateway; give each instance its own", l.root)
	}
	return f, nil
}

// prepare writes the per-instance nginx files, for the nginx of version v, into
// the locked run directory. A token file left by an earlier run stays: it is
// replaced by tokenwriter -once.
func (l layout) prepare(c Config, v nginxVersion) error {
	for _, d := range []string{"conf/local", "conf/ecr", "temp"} {
		if err := os.MkdirAll(filepath.Join(l.root, d), 0o755); err != nil {
			return err
		}
	}
	conf, err := os.ReadFile(c.NginxConf)
	if err != nil {
		return err
	}
	httpConf, err := renderHTTPConf(c, l, v)
	if err != nil {
		return err
	}
	files := map[string]string{
		"conf/nginx.conf":        string(conf),
		"conf/local/main.conf":   generatedHeader + "pid " + l.pidFile() + ";\nworker_processes auto;\n",
		"conf/local/http.conf":   httpConf,
		"conf/local/listen.conf": renderListenConf(c),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(l.root, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

const generatedHeader = "# Written by the gateway runner (make run) at every start; edit nginx.conf instead.\n"

// keepaliveMinTimeout is how long an old worker keeps an idle client
// connection after a reload. It covers the gaps between one client's
// requests (a push's HEAD, POST, PATCH, PUT follow each other within
// milliseconds), and bounds how long a graceful stop (docker stop, Ctrl-C)
// waits for idle connections.
const keepaliveMinTimeout = "10s"

func renderHTTPConf(c Config, l layout, v nginxVersion) (string, error) {
	auth, err := authUpstream(c.AuthListenAddr)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(generatedHeader)
	// nginx.conf defines gateway_json before including this file. The runner
	// gives nginx a pipe as stdout (startProcess), so /dev/stdout opens
	// whatever the runner's own stdout is.
	b.WriteString("access_log /dev/stdout gateway_json;\n")
	fmt.Fprintf(&b, "upstream authsvc {\n    server %s;\n    keepalive 16;\n}\n", auth)
	fmt.Fprintf(&b, "proxy_ssl_trusted_certificate %s;\n", abs(c.ECRCAFile))
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "%s_temp_path %s;\n", t, filepath.Join(abs(l.root), "temp", t))
	}
	if v.supportsKeepaliveMinTimeout() {
		// Every token refresh reloads nginx. Without this, the old workers
		// close idle client connections at once, and a request the client
		// sent on one at that instant is reset (a streamed PATCH or PUT
		// cannot be resent). With it, they answer such a request with
		// "Connection: close".
		fmt.Fprintf(&b, "keepalive_min_timeout %s;\n", keepaliveMinTimeout)
	}
	return b.String(), nil
}

func renderListenConf(c Config) string {
	var b strings.Builder
	b.WriteString(generatedHeader)
	if c.HTTPAddr != "" {
		fmt.Fprintf(&b, "listen %s;\n", c.HTTPAddr)
	}
	if c.HTTPSAddr != "" {
		fmt.Fprintf(&b, "listen %s ssl;\n", c.HTTPSAddr)
		fmt.Fprintf(&b, "ssl_certificate %s;\nssl_certificate_key %s;\n", abs(c.TLSCertFile), abs(c.TLSKeyFile))
	}
	return b.String()
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
