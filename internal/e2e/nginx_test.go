package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withCurrentNginx puts the current nginx of `make nginx-current`
// (.cache/nginx/bin, nginx >= 1.27.4 as in the images) ahead of path, when
// it is there, so that `go test` alone runs what `make test` runs.
func withCurrentNginx(path string) string {
	dir := filepath.Join(repoRoot(), ".cache", "nginx", "bin")
	if _, err := os.Stat(filepath.Join(dir, "nginx")); err != nil {
		return path
	}
	return dir + string(os.PathListSeparator) + path
}

// reloadsKeepIdleConnections reports whether the gateway's nginx keeps idle
// client connections through a reload (keepalive_min_timeout, nginx >=
// 1.27.4; the runner writes it into local/http.conf when nginx knows it).
// Without it a request that crosses a reload on an idle kept-alive connection
// is reset. CI must have it: there, its absence fails the test.
func reloadsKeepIdleConnections(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.runDir, "conf", "local", "http.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "\nkeepalive_min_timeout ") {
		return true
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the gateway's nginx is older than 1.27.4 (no keepalive_min_timeout); CI runs `make nginx-current` first")
	}
	t.Log("nginx older than 1.27.4: resets of idle connections at a reload are counted apart, not failed")
	return false
}

// A kept-alive connection that is idle when nginx reloads is still answered
// by the old worker, with "Connection: close", instead of being closed under
// the client (keepalive_min_timeout). Deterministic form of what
// TestRotationWithoutLoss sees under load.
func TestReloadKeepsIdleConnection(t *testing.T) {
	if !reloadsKeepIdleConnections(t) {
		t.Skip("nginx older than 1.27.4: a reload closes idle connections")
	}
	conn, err := net.DialTimeout("tcp", e.httpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func() (*http.Response, error) {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, err
	}
	if resp, err := get(); err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first request: %v, %v; want 200 on a kept-alive connection", resp, err)
	}
	if err := syscall.Kill(nginxPID(t), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // new workers up, the old one shutting down
	resp, err := get()
	if err != nil {
		t.Fatalf("request on the connection that was idle at the reload: %v; want an answer", err)
	}
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("got %d, Connection: close %v; want 200 with Connection: close from the old worker", resp.StatusCode, resp.Close)
	}
}
