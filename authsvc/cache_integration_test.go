package authsvc

// The cache, singleflight and grace against a real slapd (internal/slapd).
// Skipped with -short.

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
	"github.com/toanc/aws-ecr-ldap/internal/slapd"
)

// cachedService is the /auth handler with the real LDAP client for srv and
// the given cache options, served over HTTP.
func cachedService(t *testing.T, srv *slapd.Server, opts Options) (*testService, string, *http.Client) {
	t.Helper()
	lc, err := sampleConfig(srv).LDAPConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := ldapauth.New(lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestService(client, opts)
	base, hc := serve(t, "127.0.0.1:0", s.h)
	return s, base, hc
}

// userBinds counts the binds slapd received as dn.
func userBinds(srv *slapd.Server, dn string) int {
	n := 0
	for _, d := range srv.BindDNs() {
		if strings.EqualFold(d, dn) {
			n++
		}
	}
	return n
}

// waitForBindLog gives slapd's stats log a moment to catch up.
func waitForBindLog(srv *slapd.Server, want int) int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := srv.BindCount()
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A16: 50 parallel requests with the same, not yet cached credentials: one
// LDAP bind as the user.
func TestA16OneBindOnSlapd(t *testing.T) {
	srv := startSlapd(t)
	s, base, client := cachedService(t, srv, Options{CacheTTL: 5 * time.Minute, CacheSize: 100})
	alice, _ := slapd.UserByName("alice")
	authz := basic("alice:" + alice.Password)

	before := srv.BindCount()
	const n = 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, base+"/auth", nil)
			req.Header.Set("Authorization", authz)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("GET /auth: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 204 {
				t.Errorf("status: got %d; want 204", resp.StatusCode)
			}
		})
	}
	close(start)
	wg.Wait()
	total := waitForBindLog(srv, before+1) - before
	if got := userBinds(srv, alice.DN); got != 1 {
		t.Errorf("binds as %s: got %d; want 1", alice.DN, got)
	}
	// One authentication: the user bind plus at most one service-account bind.
	if total < 1 || total > 2 {
		t.Errorf("binds in all: got %d; want 1 or 2", total)
	}
	if got := value(s.m.ldapChecks); got != 1 {
		t.Errorf("authsvc_backend_checks_total: got %v; want 1", got)
	}
}

// A changed password: the new one works at once (a miss goes to LDAP), and
// its success evicts the old one from the cache. Until someone logs in with
// the new one, the old one keeps working from the cache for the TTL: the
// accepted cost of a cache.
func TestChangedPasswordOnSlapd(t *testing.T) {
	srv := startSlapd(t)
	s, base, client := cachedService(t, srv, Options{CacheTTL: 5 * time.Minute, CacheSize: 100})
	alice, _ := slapd.UserByName("alice")
	oldPW, newPW := alice.Password, "alice-new-secret"
	check(t, client, base, []httpCase{{"old password, first login", basic("alice:" + oldPW), 204, "alice"}})

	setPassword(t, srv, alice.DN, newPW)
	binds, before := userBinds(srv, alice.DN), srv.BindCount()
	check(t, client, base, []httpCase{
		{"old password before the new one is used (cached)", basic("alice:" + oldPW), 204, "alice"},
		{"new password at once", basic("alice:" + newPW), 204, "alice"},
		{"old password once the new one worked", basic("alice:" + oldPW), 401, ""},
	})
	waitForBindLog(srv, before+2)
	if got := userBinds(srv, alice.DN) - binds; got != 2 {
		t.Errorf("binds as alice for old(cached)+new+old: got %d; want 2 (the new password, then the evicted old one)", got)
	}
	s.clock.Advance(5 * time.Minute)
	check(t, client, base, []httpCase{
		{"new password after the TTL", basic("alice:" + newPW), 204, "alice"},
	})
}

// LDAP stopped: exact credentials verified within the grace period still
// work; everything else is a 503; recovery needs no restart.
func TestGraceOnSlapd(t *testing.T) {
	srv := startSlapd(t)
	_, base, client := cachedService(t, srv, Options{CacheTTL: time.Minute, CacheSize: 100, GracePeriod: time.Hour})
	alice, bob := basic("alice:"+pw(t, "alice")), basic("bob:"+pw(t, "bob"))
	check(t, client, base, []httpCase{{"alice verified", alice, 204, "alice"}})
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	check(t, client, base, []httpCase{
		{"alice during the outage", alice, 204, "alice"},
		{"alice, wrong password, during the outage", basic("alice:wrong"), 503, ""},
		{"bob, never verified, during the outage", bob, 503, ""},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, client, base, []httpCase{{"bob after recovery", bob, 204, "bob"}})
}

func setPassword(t *testing.T, srv *slapd.Server, dn, password string) {
	t.Helper()
	conn, err := ldap.DialURL(srv.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(slapd.AdminDN, slapd.AdminPassword); err != nil {
		t.Fatal(err)
	}
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("userPassword", []string{password})
	if err := conn.Modify(req); err != nil {
		t.Fatalf("change the password of %s: %v", dn, err)
	}
}
