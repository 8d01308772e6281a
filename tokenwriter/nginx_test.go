package tokenwriter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

const nginxBin = "/usr/sbin/nginx"

// testNginx is a prefix directory holding an nginx.conf that includes
// ecr/ecr.conf the way the gateway's does.
type testNginx struct {
	dir, conf, include, pidFile, errorLog string
}

func newTestNginx(t *testing.T, listenPort int) testNginx {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Fatalf("these tests need nginx at %s: %v", nginxBin, err)
	}
	dir := t.TempDir()
	n := testNginx{
		dir:      dir,
		conf:     filepath.Join(dir, "nginx.conf"),
		include:  filepath.Join(dir, "ecr", "ecr.conf"),
		pidFile:  filepath.Join(dir, "nginx.pid"),
		errorLog: filepath.Join(dir, "error.log"),
	}
	conf := fmt.Sprintf(`worker_processes 1;
pid nginx.pid;
error_log error.log;
events { worker_connections 64; }
http {
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    access_log off;

    include ecr/ecr.conf;

    server {
        listen 127.0.0.1:%d;
        location / {
            if ($ecr_upstream = "") {
                return 421;
            }
            proxy_pass https://$ecr_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $ecr_registry_host;
            proxy_set_header Authorization $ecr_authorization;
            proxy_ssl_server_name on;
            proxy_ssl_name $ecr_registry_host;
            proxy_redirect https://$ecr_registry_host/ /;
        }
    }
}
`, listenPort)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// testCommand is NGINX_TEST_COMMAND for this prefix.
func (n testNginx) testCommand() string {
	return strings.Join([]string{nginxBin, "-e", n.errorLog, "-p", n.dir, "-c", n.conf, "-t", "-q"}, " ")
}

// test runs `nginx -t` on the configuration with include as ecr/ecr.conf (nil: no include file).
func (n testNginx) test(t *testing.T, include []byte) error {
	t.Helper()
	os.Remove(n.include)
	if include != nil {
		if err := writeAtomic(n.include, include, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return runCommand(context.Background(), strings.Fields(n.testCommand()))
}

func sampleToken(n int, port string) Token {
	return Token{Value: Secret(testTokenValue(n, uint64(n))), Host: "127.0.0.1", Port: port, ExpiresAt: time.Now().Add(time.Hour)}
}

// Case G1: tokens of every size load.
func TestNginxAcceptsLargeTokens(t *testing.T) {
	n := newTestNginx(t, 1)
	for _, size := range []int{64, 6144, 6400, 8192, 16384} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			if err := n.test(t, Render(sampleToken(size, "443"))); err != nil {
				t.Errorf("nginx -t: %v; want success", err)
			}
		})
	}
}

// Case G2, the fail-closed property: any include short of its last line is refused.
func TestNginxRefusesIncompleteInclude(t *testing.T) {
	n := newTestNginx(t, 1)
	if err := n.test(t, nil); err == nil {
		t.Error("missing include: nginx -t passed; want failure")
	}
	if err := n.test(t, []byte{}); err == nil {
		t.Error("empty include: nginx -t passed; want failure")
	}
	for _, size := range []int{64, 8192} {
		full := Render(sampleToken(size, "443"))
		complete := len(full) - 1 // the last line without its newline is still whole
		for _, cut := range truncationPoints(full) {
			if cut >= complete {
				continue
			}
			t.Run(fmt.Sprintf("%d/cut_at_%d", size, cut), func(t *testing.T) {
				if err := n.test(t, full[:cut]); err == nil {
					t.Errorf("include cut at byte %d of %d passed nginx -t; want failure:\n%.200s", cut, len(full), full[:cut])
				}
			})
		}
	}
}

// truncationPoints returns, for every line, the offsets of its start, its middle,
// its last character and its newline.
func truncationPoints(b []byte) []int {
	var cuts []int
	start := 0
	for start < len(b) {
		end := start + strings.IndexByte(string(b[start:]), '\n')
		for _, c := range []int{start, start + (end-start)/2, end - 1, end} {
			if len(cuts) == 0 || c > cuts[len(cuts)-1] {
				cuts = append(cuts, c)
			}
		}
		start = end + 1
	}
	return cuts
}

// Cases G1 and G2 on a running nginx: the upstream gets exactly the ECR token,
// never the client's own Authorization, and a refresh reaches it by reload.
func TestNginxForwardsTokenAndReloads(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	var seenHost string
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		seenHost = r.Host
		mu.Unlock()
		// An upload start, answered as ECR does: absolute on the registry's own host.
		w.Header().Set("Location", "https://"+r.Host+"/v2/app/blobs/uploads/1")
		w.WriteHeader(http.StatusOK)
	}))
	backend.Config.MaxHeaderBytes = 1 << 20
	backend.StartTLS()
	t.Cleanup(backend.Close)
	_, backendPort, _ := net.SplitHostPort(backend.Listener.Addr().String())

	port := freePort(t)
	n := newTestNginx(t, port)
	cfg := Config{
		TokenFile: n.include, TokenFileMode: 0o600, CallTimeout: time.Second,
		RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		NginxTestCommand: n.testCommand(),
	}
	api := &fakeECR{}
	refresh := func(size int) string {
		t.Helper()
		value := testTokenValue(size, uint64(size)+1)
		api.answers = []fakeAnswer{{data: []types.AuthorizationData{authData(value, "https://127.0.0.1:"+backendPort, time.Now().Add(time.Hour))}}}
		r := NewRefresher(api, NginxReloader{PIDFile: n.pidFile}, cfg, discardLogger())
		r.reloader = skipIfStopped{next: r.reloader, log: discardLogger()}
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		return value
	}
	lastSeen := func() string {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v2/", port), nil)
		req.SetBasicAuth("alice", "ldap-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "request failed: " + err.Error()
		}
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		if resp.StatusCode != http.StatusOK || len(seen) == 0 {
			return "status " + resp.Status
		}
		// $ecr_registry_host carries the non-443 port, so Host and proxy_redirect agree with the registry.
		if want := "127.0.0.1:" + backendPort; seenHost != want {
			return "upstream Host " + seenHost + "; want " + want
		}
		if loc, want := resp.Header.Get("Location"), fmt.Sprintf("http://127.0.0.1:%d/v2/app/blobs/uploads/1", port); loc != want {
			return "client got Location " + loc + "; want " + want
		}
		return seen[len(seen)-1]
	}

	first := refresh(8192) // nginx not started yet: -once at start-up
	startNginx(t, n, port)
	if got, want := lastSeen(), "Basic "+first; got != want {
		t.Fatalf("upstream got Authorization %.60q (%d bytes); want the 8 KB ECR token", got, len(got))
	}

	second := refresh(16384)
	deadline := time.Now().Add(5 * time.Second)
	for got := lastSeen(); got != "Basic "+second; got = lastSeen() {
		if time.Now().After(deadline) {
			t.Fatalf("after reload upstream got Authorization %.60q (%d bytes); want the 16 KB ECR token", got, len(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startNginx(t *testing.T, n testNginx, port int) {
	t.Helper()
	cmd := exec.Command(nginxBin, "-e", n.errorLog, "-p", n.dir, "-c", n.conf, "-g", "daemon off;")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // fast shutdown of master and workers
		cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			if _, err := os.Stat(n.pidFile); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(n.errorLog)
			t.Fatalf("nginx did not start: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nginx -t through Refresh: a good include passes and stays, and a test failure
// carries nginx's own message. nginx resolves the upstream host when it loads the
// configuration, so the endpoint here is an address: this machine has no DNS.
func TestRefreshWithRealNginxTest(t *testing.T) {
	const testEndpoint = "https://127.0.0.1:5443"
	n := newTestNginx(t, 1)
	cfg := Config{TokenFile: n.include, TokenFileMode: 0o600, CallTimeout: time.Second, RetryMin: time.Millisecond, RetryMax: time.Millisecond, NginxTestCommand: n.testCommand()}
	api := &fakeECR{answers: []fakeAnswer{{data: []types.AuthorizationData{authData(testTokenValue(6400, 1), testEndpoint, time.Now().Add(time.Hour))}}}}
	if err := NewRefresher(api, nil, cfg, discardLogger()).Refresh(context.Background()); err != nil {
		t.Fatalf("got %v; want success", err)
	}
	good, _ := os.ReadFile(n.include)

	// Break nginx.conf itself: the next refresh must fail and keep the include.
	os.WriteFile(n.conf, []byte("events {}\nhttp { include ecr/ecr.conf; server { location / { proxy_set_header X $ecr_nope; } } }\n"), 0o644)
	api.answers = []fakeAnswer{{data: []types.AuthorizationData{authData(testTokenValue(6400, 2), testEndpoint, time.Now().Add(time.Hour))}}}
	err := NewRefresher(api, nil, cfg, discardLogger()).Refresh(context.Background())
	if !errors.Is(err, ErrNginxTest) || !strings.Contains(err.Error(), `unknown "ecr_nope" variable`) {
		t.Errorf("got %v; want ErrNginxTest with nginx's message", err)
	}
	if now, _ := os.ReadFile(n.include); string(now) != string(good) {
		t.Error("include changed after a failed nginx -t; want it unchanged")
	}
}
