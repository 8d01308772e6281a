package gateway

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/tokenwriter"
)

// When nginx cannot reach the registry at all, clients get a registry JSON
// error, not nginx's HTML page: on repository paths and on the ping. The
// project's nginx.conf, run by the real nginx, with authsvc allowing
// everything and the registry's port closed.
func TestUnreachableRegistryIsJSON(t *testing.T) {
	nginxPath, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx not installed; run `make deps`")
	}
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Auth-Request-User", "alice")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer auth.Close()

	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	c := Config{
		HTTPAddr:       freeLoopbackAddr(t),
		RunDir:         filepath.Join(dir, "run"),
		NginxConf:      filepath.Join("..", "..", "nginx", "nginx.conf"),
		AuthListenAddr: strings.TrimPrefix(auth.URL, "http://"),
		ECRCAFile:      cert,
		TLSCertFile:    cert,
		TLSKeyFile:     key,
	}
	l := layout{root: c.RunDir}
	if err := l.prepare(c, installedNginx(t)); err != nil {
		t.Fatal(err)
	}
	closed := freeLoopbackAddr(t) // nothing listens here
	_, port, _ := net.SplitHostPort(closed)
	tok := tokenwriter.Token{
		Value: tokenwriter.Secret(base64.StdEncoding.EncodeToString([]byte("AWS:secret"))),
		Host:  "127.0.0.1", Port: port, ExpiresAt: time.Now().Add(time.Hour),
	}
	if err := os.WriteFile(l.tokenFile(), tokenwriter.Render(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := NginxCommand(l.confDir())
	cmd := exec.Command(nginxPath, argv[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	waitHTTP(t, client, "http://"+c.HTTPAddr+"/healthz")

	const want = `{"errors":[{"code":"UNAVAILABLE","message":"the gateway cannot reach the registry right now; try again"}]}` + "\n"
	for _, path := range []string{"/v2/team-a/app/tags/list", "/v2/"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+c.HTTPAddr+path, nil)
		req.SetBasicAuth("alice", "pw")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || string(body) != want {
			t.Errorf("GET %s with the registry down: got %d %q; want 502 %q", path, resp.StatusCode, body, want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: got Content-Type %q; want application/json", path, ct)
		}
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t *testing.T, c *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not answering %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
