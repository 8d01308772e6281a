package authsvc

// Field cases over HTTP, with the real LDAP client against a real slapd holding the
// sample directory of internal/slapd. Skipped with -short.

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
	"github.com/toanc/aws-ecr-ldap/internal/slapd"
)

func startSlapd(t *testing.T) *slapd.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("needs slapd; skipped with -short")
	}
	if err := slapd.Available(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := slapd.Start(ctx, slapd.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

func sampleConfig(srv *slapd.Server) Config {
	return Config{
		LDAPURL:                  srv.SearchURL(),
		LDAPBindDN:               slapd.ServiceDN,
		LDAPBindPassword:         slapd.ServicePassword,
		LDAPRequireGroup:         slapd.GroupRegistryUsers,
		LDAPGroupMemberAttribute: "member",
		LDAPDialTimeout:          time.Second,
		LDAPTimeout:              5 * time.Second,
		Realm:                    testRealm,
		LogLevel:                 "debug",
	}
}

// realHandler is the /auth handler with the real LDAP client for cfg.
func realHandler(t *testing.T, cfg Config) http.Handler {
	t.Helper()
	lc, err := cfg.LDAPConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := ldapauth.New(lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewHandler(client, cfg.Realm, slog.New(slog.NewTextHandler(testLog{t}, nil)))
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type httpCase struct {
	name, authorization string
	wantStatus          int
	wantUser            string
}

func check(t *testing.T, client *http.Client, base string, cases []httpCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, client, base+"/auth", tt.authorization)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d; want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("WWW-Authenticate"); tt.wantStatus == 401 && got != wantChallenge {
				t.Errorf("WWW-Authenticate: got %q; want %q", got, wantChallenge)
			}
			if got := resp.Header.Get(UserHeader); got != tt.wantUser {
				t.Errorf("%s: got %q; want %q", UserHeader, got, tt.wantUser)
			}
		})
	}
}

func pw(t *testing.T, name string) string {
	t.Helper()
	u, ok := slapd.UserByName(name)
	if !ok {
		t.Fatalf("no sample user %q", name)
	}
	return u.Password
}

func TestFieldCasesOverHTTP(t *testing.T) {
	srv := startSlapd(t)
	base, client := serve(t, "127.0.0.1:0", realHandler(t, sampleConfig(srv)))

	t.Run("A1 filter metacharacters", func(t *testing.T) {
		check(t, client, base, []httpCase{
			{"bob)(uid=*", basic("bob)(uid=*:" + pw(t, "bob")), 401, ""},
			{"x))((cn=bob", basic("x))((cn=bob:" + pw(t, "bob")), 401, ""},
		})
	})
	t.Run("A2 wildcards", func(t *testing.T) {
		check(t, client, base, []httpCase{
			{"*", basic("*:" + pw(t, "alice")), 401, ""},
			{"al*", basic("al*:" + pw(t, "alice")), 401, ""},
		})
	})
	t.Run("A3 empty password", func(t *testing.T) {
		before := srv.BindCount()
		check(t, client, base, []httpCase{{"bob:", basic("bob:"), 401, ""}})
		if got := srv.BindCount(); got != before {
			t.Errorf("binds: got %d; want %d (no bind for an empty password)", got, before)
		}
	})
	t.Run("A4 colon in password", func(t *testing.T) {
		check(t, client, base, []httpCase{{"bob", basic("bob:p@ss:wörd"), 204, "bob"}})
	})
	t.Run("A5 metacharacters in password", func(t *testing.T) {
		check(t, client, base, []httpCase{{"dave", basic(`dave:Pa(ss)*\1`), 204, "dave"}})
	})
	t.Run("A6 UTF-8 name and DN", func(t *testing.T) {
		check(t, client, base, []httpCase{
			{"jürgen", basic("jürgen:" + pw(t, "jürgen")), 204, "jürgen"},
			{"Jürgen gives the directory's spelling", basic("Jürgen:" + pw(t, "jürgen")), 204, "jürgen"},
		})
	})
	t.Run("A7 malformed", func(t *testing.T) {
		check(t, client, base, []httpCase{
			{"broken base64", "Basic ###", 401, ""},
			{"no colon", basic("bob"), 401, ""},
			{"Bearer", "Bearer x.y.z", 401, ""},
			{"Digest", `Digest username="bob"`, 401, ""},
			{"20 KB", "Basic " + strings.Repeat("Q", 20<<10), 401, ""},
		})
	})
	t.Run("A8 wrong password", func(t *testing.T) {
		check(t, client, base, []httpCase{
			{"bob", basic("bob:p@ss"), 401, ""},
			{"unknown user", basic("mallory:x"), 401, ""},
		})
	})
	t.Run("A10 two entries", func(t *testing.T) {
		check(t, client, base, []httpCase{{"twin", basic("twin:" + pw(t, "twin")), 401, ""}})
	})
	t.Run("A11 not in the required group", func(t *testing.T) {
		check(t, client, base, []httpCase{{"carol", basic("carol:" + pw(t, "carol")), 403, "carol"}})
	})
}

func TestA11EscapedCommaGroupOverHTTP(t *testing.T) {
	srv := startSlapd(t)
	cfg := sampleConfig(srv)
	cfg.LDAPRequireGroup = slapd.GroupOps
	base, client := serve(t, "127.0.0.1:0", realHandler(t, cfg))
	check(t, client, base, []httpCase{
		{"alice is in ops", basic("alice:" + pw(t, "alice")), 204, "alice"},
		{"bob is not", basic("bob:" + pw(t, "bob")), 403, "bob"},
	})
}

func TestA9LDAPStoppedThenStarted(t *testing.T) {
	srv := startSlapd(t)
	base, client := serve(t, "127.0.0.1:0", realHandler(t, sampleConfig(srv)))
	alice := basic("alice:" + pw(t, "alice"))

	check(t, client, base, []httpCase{{"up", alice, 204, "alice"}})
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	check(t, client, base, []httpCase{
		{"down: right password", alice, 503, ""},
		{"down: wrong password", basic("alice:wrong"), 503, ""},
		{"down: no credentials is still 401", "", 401, ""}, // never needs LDAP
	})
	if resp := get(t, client, base+"/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("healthz while LDAP is down: got %d; want 200", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, client, base, []httpCase{{"up again, same authsvc", alice, 204, "alice"}})
}

// TestRun drives the whole service as cmd/authsvc does, on a unix socket.
func TestRun(t *testing.T) {
	srv := startSlapd(t)
	cfg := sampleConfig(srv)
	sock := filepath.Join(t.TempDir(), "authsvc.sock")
	cfg.ListenAddr = "unix:" + sock
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(testLog{t}, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Get("http://authsvc/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("authsvc did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	check(t, client, "http://authsvc", []httpCase{
		{"A4 bob", basic("bob:p@ss:wörd"), 204, "bob"},
		{"A8 bob wrong", basic("bob:p@ss"), 401, ""},
	})
	// SIGHUP ("reload", sent by the runner and by systemd) with no policy file
	// leaves the service running; without a handler it would end this process.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	check(t, client, "http://authsvc", []httpCase{{"after SIGHUP", basic("bob:p@ss:wörd"), 204, "bob"}})
}
