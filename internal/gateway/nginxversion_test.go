package gateway

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestParseNginxVersion(t *testing.T) {
	for _, tc := range []struct {
		out    string
		want   nginxVersion
		ok     bool
		recent bool // has keepalive_min_timeout
	}{
		{"nginx version: nginx/1.22.1", nginxVersion{1, 22, 1}, true, false},
		{"nginx version: nginx/1.27.3", nginxVersion{1, 27, 3}, true, false},
		{"nginx version: nginx/1.27.4", nginxVersion{1, 27, 4}, true, true},
		{"nginx version: nginx/1.30.6", nginxVersion{1, 30, 6}, true, true},
		{"nginx version: nginx/2.0.0 (Ubuntu)", nginxVersion{2, 0, 0}, true, true},
		{"nginx version: freenginx/1.29.0", nginxVersion{}, false, false},
		{"nginx version: openresty/1.27.1.2", nginxVersion{}, false, false},
		{"command not found", nginxVersion{}, false, false},
	} {
		t.Run(tc.out, func(t *testing.T) {
			got, ok := parseNginxVersion([]byte(tc.out))
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
			if r := got.supportsKeepaliveMinTimeout(); r != tc.recent {
				t.Errorf("supportsKeepaliveMinTimeout: got %v; want %v", r, tc.recent)
			}
		})
	}
}

// installedNginx is the version of the nginx on PATH, the one the runner and
// the tests start.
func installedNginx(t *testing.T) nginxVersion {
	t.Helper()
	p, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx not installed; run `make deps`")
	}
	v, err := probeNginxVersion(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// keepalive_min_timeout goes into local/http.conf exactly when the nginx
// that will read it knows the directive: an older nginx would refuse the whole
// configuration.
func TestHTTPConfKeepaliveMinTimeout(t *testing.T) {
	c := Config{AuthListenAddr: "127.0.0.1:9000", ECRCAFile: "/etc/ssl/certs/ca-certificates.crt"}
	l := layout{root: t.TempDir()}
	for _, tc := range []struct {
		v    nginxVersion
		want bool
	}{{nginxVersion{1, 22, 1}, false}, {nginxVersion{}, false}, {nginxVersion{1, 30, 6}, true}} {
		conf, err := renderHTTPConf(c, l, tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(conf, "\nkeepalive_min_timeout "+keepaliveMinTimeout+";\n"); got != tc.want {
			t.Errorf("nginx %v: keepalive_min_timeout written %v; want %v", tc.v, got, tc.want)
		}
	}
}
