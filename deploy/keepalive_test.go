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
// container local/http.conf must set it as the native runner does.
func TestContainerNginxKeepsIdleConnectionsAcrossReloads(t *testing.T) {
	const want = "10s" // internal/gateway's keepaliveMinTimeout
	for _, f := range []string{"nginx/local/http.conf", "kubernetes/nginx/local/http.conf", "demo/nginx/local/http.conf"} {
		if !strings.Contains(readFile(t, f), "\nkeepalive_min_timeout "+want+";\n") {
			t.Errorf("%s lacks keepalive_min_timeout %s", f, want)
		}
	}
	// On a VM the distribution's nginx may be older: the line is there to
	// uncomment, never active.
	if s := readFile(t, "systemd/nginx/local/http.conf"); !strings.Contains(s, "\n#keepalive_min_timeout "+want+";\n") {
		t.Errorf("systemd/nginx/local/http.conf lacks the commented keepalive_min_timeout %s", want)
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
