package gateway

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/testpki"
)

func TestValidateNamesEveryProblem(t *testing.T) {
	c := Config{
		HTTPSAddr:      "no-port",
		RunDir:         " ",
		NginxConf:      "/does/not/exist",
		AuthListenAddr: "nonsense",
		ECRCAFile:      "/does/not/exist/ca.pem",
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate: got nil; want errors")
	}
	for _, v := range []string{"GATEWAY_HTTPS_ADDR", "TLS_CERT_FILE", "TLS_KEY_FILE", "GATEWAY_NGINX_CONF", "ECR_CA_FILE", "AUTH_LISTEN_ADDR", "GATEWAY_RUN_DIR"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("Validate error does not name %s:\n%v", v, err)
		}
	}
}

func TestAuthUpstream(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"127.0.0.1:9000", "127.0.0.1:9000"},
		{"0.0.0.0:9000", "127.0.0.1:9000"},
		{":9000", "127.0.0.1:9000"},
		{"[::]:9000", "[::1]:9000"},
		{"unix:/run/authsvc.sock", "unix:/run/authsvc.sock"},
	} {
		got, err := authUpstream(c.in)
		if err != nil || got != c.want {
			t.Errorf("authUpstream(%q): got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// The run directory the runner lays out, with a token include in the
// documented format, passes the real `nginx -t`.
func TestPreparedConfigPassesNginxTest(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Fatal("nginx not installed; run `make deps`")
	}
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	c := Config{
		HTTPAddr:       "127.0.0.1:18080",
		HTTPSAddr:      "127.0.0.1:18443",
		TLSCertFile:    cert,
		TLSKeyFile:     key,
		RunDir:         filepath.Join(dir, "run"),
		NginxConf:      filepath.Join("..", "..", "nginx", "nginx.conf"),
		AuthListenAddr: "127.0.0.1:19000",
		ECRCAFile:      cert,
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	l := layout{root: c.RunDir}
	if err := l.prepare(c, installedNginx(t)); err != nil {
		t.Fatal(err)
	}
	argv := NginxTestCommand(l.confDir())
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err == nil {
		t.Fatalf("nginx -t without ecr/ecr.conf: got success; want failure (fail closed)\n%s", out)
	}
	include := "upstream ecr_registry {\n    server 127.0.0.1:1;\n    keepalive 32;\n}\n" +
		"map \"\" $ecr_registry_host { default \"localhost:1\"; }\n" +
		"map \"\" $ecr_token_0 { default \"QVdTOnNlY3JldA==\"; }\n" +
		"map \"\" $ecr_authorization { default \"Basic $ecr_token_0\"; }\n"
	if err := os.WriteFile(l.tokenFile(), []byte(include), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	ca, err := testpki.NewCA("gateway test")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.WriteFiles(dir, "tls", []string{"localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f.Cert, f.Key
}

// A second runner on the same run directory stops before it touches the
// first one's files.
func TestRunDirIsLocked(t *testing.T) {
	l := layout{root: t.TempDir()}
	first, err := l.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if second, err := l.lock(); err == nil {
		second.Close()
		t.Fatal("second lock of the same run directory: got success; want an error")
	} else if !strings.Contains(err.Error(), "GATEWAY_RUN_DIR") {
		t.Errorf("error does not name GATEWAY_RUN_DIR: %v", err)
	}
}

// LoadAll reports the runner's, authsvc's and tokenwriter's problems together.
func TestLoadAllNamesEveryComponent(t *testing.T) {
	for _, k := range []string{"LDAP_URL", "AWS_REGION", "REGION", "GATEWAY_HTTP_ADDR", "GATEWAY_HTTPS_ADDR"} {
		t.Setenv(k, "")
	}
	_, err := LoadAll()
	if err == nil {
		t.Fatal("LoadAll with nothing set: got nil; want errors")
	}
	for _, v := range []string{"GATEWAY_HTTP_ADDR", "LDAP_URL", "AWS_REGION"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("LoadAll error does not name %s:\n%v", v, err)
		}
	}
}

// The access log is per instance (nginx.conf only defines gateway_json): the
// runner's http.conf sends it to stdout, which the runner makes a pipe, so
// that the access lines reach the runner's own output (make run, journald).
func TestHTTPConfWritesAccessLogToStdout(t *testing.T) {
	c := Config{AuthListenAddr: "127.0.0.1:19000", ECRCAFile: "ca.pem"}
	got, err := renderHTTPConf(c, layout{root: t.TempDir()}, nginxVersion{})
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "access_log ") {
			logs = append(logs, strings.TrimSpace(line))
		}
	}
	if want := "access_log /dev/stdout gateway_json;"; len(logs) != 1 || logs[0] != want {
		t.Errorf("access_log directives got %q; want exactly %q", logs, want)
	}
}
