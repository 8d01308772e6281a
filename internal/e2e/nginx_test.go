package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
