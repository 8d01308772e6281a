package deploy

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// Every token refresh reloads nginx; with keepalive_min_timeout the old
// workers answer a request on an idle kept-alive connection instead of
// resetting it. The images' nginx must know the directive, and every
// container local/http.conf must set it to nginx.conf's keepalive_timeout.
func TestContainerNginxKeepsIdleConnectionsAcrossReloads(t *testing.T) {
	timeout := regexp.MustCompile(`(?m)^\s*keepalive_timeout (\S+);`).FindStringSubmatch(readFile(t, "../nginx/nginx.conf"))
	if timeout == nil {
		t.Fatal("nginx.conf sets no keepalive_timeout")
	}
	for _, f := range []string{"nginx/local/http.conf", "kubernetes/nginx/local/http.conf", "demo/nginx/local/http.conf"} {
		want := fmt.Sprintf("\nkeepalive_min_timeout %s;\n", timeout[1])
		if !strings.Contains(readFile(t, f), want) {
			t.Errorf("%s lacks %q", f, strings.TrimSpace(want))
		}
	}
	// On a VM the distribution's nginx may be older: the line is there to
	// uncomment, never active.
	if s := readFile(t, "systemd/nginx/local/http.conf"); !strings.Contains(s, "\n#keepalive_min_timeout "+timeout[1]+";\n") {
		t.Errorf("systemd/nginx/local/http.conf lacks the commented keepalive_min_timeout %s", timeout[1])
	}
	for _, img := range images {
		if !img.nginx {
			continue
		}
		d := mustParseDockerfile(t, img.file)
		from := d.final().from
		m := regexp.MustCompile(`^nginx:(\d+)\.(\d+)`).FindStringSubmatch(from)
		if m == nil {
			t.Errorf("%s: final stage FROM %q; want an official nginx:<major>.<minor> image", img.file, from)
			continue
		}
		var major, minor int
		fmt.Sscan(m[1], &major)
		fmt.Sscan(m[2], &minor)
		// 1.27.4 was a mainline release; the first stable series with the
		// directive is 1.28.
		if major == 1 && minor < 28 {
			t.Errorf("%s: FROM %s; want nginx 1.28 or newer (keepalive_min_timeout)", img.file, from)
		}
	}
}
