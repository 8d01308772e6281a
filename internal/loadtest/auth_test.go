package loadtest

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/slapd"
)

const nginxConf = `worker_processes 1;
user root;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/t1; proxy_temp_path %[1]s/t2; fastcgi_temp_path %[1]s/t3;
    uwsgi_temp_path %[1]s/t4; scgi_temp_path %[1]s/t5;
    upstream bare { server %[2]s; keepalive 32; keepalive_requests 1000000; }
    upstream authsvc { server %[3]s; keepalive 32; keepalive_requests 1000000; }
    # The same content handler (empty_gif: no disk, no upstream) behind each
    # variant, so that only the access check differs.
    server { listen %[4]s; location /v2/ { empty_gif; } }
    server { listen %[5]s;
        location /v2/ { auth_request /_auth; empty_gif; }
        location = /_auth { internal; proxy_pass http://bare/auth; proxy_pass_request_body off;
            proxy_set_header Content-Length ""; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
    server { listen %[6]s;
        location /v2/ { auth_request /_auth; empty_gif; }
        location = /_auth { internal; proxy_pass http://authsvc/auth; proxy_pass_request_body off;
            proxy_set_header Content-Length ""; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_set_header X-Original-URI $request_uri; proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Real-IP $remote_addr; }
    }
}
`

type result struct {
	name     string
	rps      float64
	p99, p50 string
}

// TestAuthRequestLoad prints the three figures and their ratios.
func TestAuthRequestLoad(t *testing.T) {
	if os.Getenv("LOADTEST") != "1" {
		t.Skip("load test: run with LOADTEST=1 (make bench-load)")
	}
	for _, tool := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (apt-get install %s)", tool, tool)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/authsvc", "./internal/loadtest/bare204")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ldap, err := slapd.Start(t.Context(), slapd.Options{Dir: filepath.Join(dir, "ldap")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ldap.Stop() })

	bareAddr, authAddr := freeAddr(t), "unix:"+filepath.Join(dir, "authsvc.sock")
	start(t, exec.Command(filepath.Join(bin, "bare204"), "-addr", bareAddr))
	authsvc := exec.Command(filepath.Join(bin, "authsvc"))
	authsvc.Env = append(os.Environ(),
		"LDAP_URL="+ldap.URL()+slapd.SearchPath,
		"LDAP_BIND_DN="+slapd.ServiceDN,
		"LDAP_BIND_PASSWORD="+slapd.ServicePassword,
		"LDAP_REQUIRE_GROUP="+slapd.GroupRegistryUsers,
		"AUTH_LISTEN_ADDR="+authAddr,
	)
	// authsvc's decision log (LOG_LEVEL, AUTH_LOG_CACHE_HITS from the
	// environment) goes to a file, as it would to journald or a container log.
	logFile, err := os.Create(filepath.Join(dir, "authsvc.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	authsvc.Stderr = logFile
	start(t, authsvc)

	plain, viaBare, viaAuth := freeAddr(t), freeAddr(t), freeAddr(t)
	ngx := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(ngx, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(ngx, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, ngx, bareAddr, authAddr, plain, viaBare, viaAuth), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nginx", "-e", "stderr", "-p", ngx+"/", "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("nginx: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("nginx", "-e", "stderr", "-p", ngx+"/", "-c", conf, "-s", "quit").Run() })

	u, _ := slapd.UserByName("alice")
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Name+":"+u.Password))
	for _, a := range []string{plain, viaBare, viaAuth} {
		waitStatus(t, "http://"+a+"/v2/", authz, http.StatusOK)
	}
	duration := os.Getenv("LOADTEST_DURATION")
	if duration == "" {
		duration = "10s"
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("LOADTEST_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	variants := []struct{ name, addr string }{
		{"nginx, no auth", plain},
		{"auth_request → bare 204 handler", viaBare},
		{"auth_request → authsvc (warm cache)", viaAuth},
	}
	// The variants take turns, round after round, so that whatever else the
	// machine does falls on all of them; the figures are medians.
	all := make([][]result, len(variants))
	var ratios []float64
	for range rounds {
		var round []result
		for i, v := range variants {
			r := wrk(t, v.name, "http://"+v.addr+"/v2/", authz, duration)
			all[i] = append(all[i], r)
			round = append(round, r)
		}
		ratios = append(ratios, round[2].rps/round[1].rps)
	}
	fmt.Printf("\n%d rounds of %s; medians\n\n| variant | req/s | p99 | vs no auth |\n|---|---|---|---|\n", rounds, duration)
	med := make([]result, len(variants))
	for i, rs := range all {
		med[i] = median(rs)
	}
	for _, r := range med {
		fmt.Printf("| %s | %.0f | %s | %.2f |\n", r.name, r.rps, r.p99, r.rps/med[0].rps)
	}
	slices.Sort(ratios)
	fmt.Printf("\nauthsvc / bare handler, per round: %.2f (median %.2f)\n", ratios, ratios[len(ratios)/2])
}

// median is the result with the median req/s (its p99 comes with it).
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(a.rps, b.rps) })
	return s[len(s)/2]
}

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50RE = regexp.MustCompile(`\s50%\s+(\S+)`)
	p99RE = regexp.MustCompile(`\s99%\s+(\S+)`)
	nonOK = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func wrk(t *testing.T, name, url, authz, duration string) result {
	t.Helper()
	out, err := exec.Command("wrk", "-t2", "-c32", "-d"+duration, "--latency", "-H", "Authorization: "+authz, url).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk %s: %v\n%s", name, err, out)
	}
	if m := nonOK.FindSubmatch(out); m != nil {
		t.Fatalf("%s: %s non-2xx answers; the figures would be meaningless\n%s", name, m[1], out)
	}
	r := result{name: name}
	if m := rpsRE.FindSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := p50RE.FindSubmatch(out); m != nil {
		r.p50 = string(m[1])
	}
	if m := p99RE.FindSubmatch(out); m != nil {
		r.p99 = string(m[1])
	}
	t.Logf("%s:\n%s", name, out)
	return r
}

func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

func waitStatus(t *testing.T, url, authz string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", authz)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: never answered %d (last: %v)", url, want, strings.TrimSpace(fmt.Sprint(resp, err)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
