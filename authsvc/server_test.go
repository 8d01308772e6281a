package authsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

// serve runs h behind a real http.Server from NewServer on addr and returns an
// HTTP client that reaches it (over the unix socket for "unix:" addresses).
func serve(t *testing.T, addr string, h http.Handler) (base string, client *http.Client) {
	t.Helper()
	ln, err := Listen(addr)
	if err != nil {
		t.Fatalf("Listen(%q): %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, NewServer(h, slog.New(slog.DiscardHandler)), ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	client = &http.Client{Timeout: 10 * time.Second}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}
		return "http://authsvc", client
	}
	return "http://" + ln.Addr().String(), client
}

func get(t *testing.T, client *http.Client, url, authorization string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp
}

func TestServerHugeHeaderGets401(t *testing.T) {
	fake := &fakeAuth{answers: map[string]fakeAnswer{"a:b": {id: ldapauth.Identity{Name: "a"}}}}
	base, client := serve(t, "127.0.0.1:0", NewHandler(fake, testRealm, nil))
	for _, size := range []int{20 << 10, 40 << 10} {
		resp := get(t, client, base+"/auth", "Basic "+strings.Repeat("A", size))
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != wantChallenge {
			t.Errorf("%d KB Authorization: got %d %q; want 401 %q", size>>10, resp.StatusCode,
				resp.Header.Get("WWW-Authenticate"), wantChallenge)
		}
	}
	if resp := get(t, client, base+"/auth", basic("a:b")); resp.StatusCode != 204 {
		t.Errorf("normal request after huge ones: got %d; want 204", resp.StatusCode)
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "authsvc.sock")
	// A stale socket left by a dead process: bound, never listened on.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	base, client := serve(t, "unix:"+sock, NewHandler(&fakeAuth{}, testRealm, nil))
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o666 {
		t.Errorf("socket mode: got %o; want 666", got)
	}
	if resp := get(t, client, base+"/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("GET /healthz over the socket: got %d; want 200", resp.StatusCode)
	}

	if _, err := Listen("unix:" + sock); err == nil || !strings.Contains(err.Error(), "another process is listening") {
		t.Errorf("Listen on a live socket: got %v; want an error saying another process listens", err)
	}
	regular := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(regular, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix:" + regular); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a regular file: got %v; want a refusal", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep me" {
		t.Errorf("regular file changed to %q", b)
	}
}

// slowAuth answers after a delay, to have a request in flight at shutdown.
type slowAuth struct {
	started chan struct{}
	delay   time.Duration
}

func (s slowAuth) Authenticate(ctx context.Context, user, _ string) (ldapauth.Identity, error) {
	close(s.started)
	select {
	case <-time.After(s.delay):
		return ldapauth.Identity{Name: user}, nil
	case <-ctx.Done():
		return ldapauth.Identity{}, fmt.Errorf("%w: %w", ldapauth.ErrUnavailable, ctx.Err())
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	auth := slowAuth{started: make(chan struct{}), delay: 300 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, NewServer(NewHandler(auth, testRealm, nil), slog.New(slog.DiscardHandler)), ln)
	}()

	status := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/auth", nil)
		req.Header.Set("Authorization", basic("a:b"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	<-auth.started
	cancel()
	if got := <-status; got != 204 {
		t.Errorf("request in flight at shutdown: got %d; want 204", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after shutdown: got %v; want nil (ErrServerClosed ignored)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("still listening after shutdown")
	}
}

func TestRunRefusesBadLDAPURL(t *testing.T) {
	err := Run(context.Background(), Config{LDAPURL: "http://x/dc=y"}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "LDAP_URL") {
		t.Errorf("Run with a bad URL: got %v; want an error naming LDAP_URL", err)
	}
	var p problem
	if !errors.As(err, &p) {
		t.Errorf("Run error %v is not a configuration problem", err)
	}
}
