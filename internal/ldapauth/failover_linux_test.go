package ldapauth

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/slapd"
)

// A14: the first server drops packets; the second answers within the dial
// timeout, and later requests skip the first while it backs off.
func TestA14FirstServerDropsPackets(t *testing.T) {
	srv := directory(t)
	const dialTimeout = 300 * time.Millisecond
	hole := "ldap://" + blackholeAddr(t) + "/dc=example,dc=org?uid?sub?(objectClass=inetOrgPerson)"
	urls, err := ParseURLs(hole + " " + srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, func(c *Config) { c.URLs, c.DialTimeout = urls, dialTimeout })
	defer c.Close()
	alice := user(t, "alice")

	start := time.Now()
	if _, err := c.Authenticate(context.Background(), "alice", alice.Password); err != nil {
		t.Fatalf("first login: %v", err)
	}
	if elapsed := time.Since(start); elapsed > dialTimeout+700*time.Millisecond {
		t.Errorf("first login took %v; want about the dial timeout %v", elapsed, dialTimeout)
	}
	st := c.Servers()
	if st[0].Healthy || st[0].BackoffUntil.IsZero() || !st[1].Healthy {
		t.Errorf("Servers: got %+v; want the first backing off, the second healthy", st)
	}
	// Warm pool, first server backing off: no dial timeout paid again, even for
	// the bind pool's first connection.
	start = time.Now()
	if _, err := c.Authenticate(context.Background(), "alice", alice.Password); err != nil {
		t.Fatalf("second login: %v", err)
	}
	if elapsed := time.Since(start); elapsed > dialTimeout/2 {
		t.Errorf("second login took %v; want well under the dial timeout", elapsed)
	}
}

// Dead servers ahead of a healthy one, with LDAP_TIMEOUT twice the dial
// timeout (the defaults 10s and 5s, in miniature): one accepts and never
// answers, one drops packets. Their dial timeouts use the whole budget of the
// first request, which must not mark the healthy third server failed; from the
// second request on, logins succeed, for longer than a short back-off would
// keep the dead servers out of the way, and the healthy server stays up.
func TestDeadServersAheadOfAHealthyOne(t *testing.T) {
	srv := directory(t)
	const dialTimeout, timeout = 300 * time.Millisecond, 600 * time.Millisecond
	urls, err := ParseURLs("ldap://" + silentAddr(t) + "/dc=example,dc=org?uid?sub?(objectClass=inetOrgPerson) ldap://" +
		blackholeAddr(t) + " " + srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	c, err := New(Config{URLs: urls, BindDN: slapd.ServiceDN, BindPassword: slapd.ServicePassword,
		DialTimeout: dialTimeout, Timeout: timeout}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	alice := user(t, "alice")
	for i := range 10 {
		start := time.Now()
		_, err := c.Authenticate(context.Background(), "alice", alice.Password)
		t.Logf("login %d: %v after %v", i+1, err, time.Since(start))
		if err != nil && i >= 2 {
			t.Errorf("login %d: got %v; want success once the dead servers are backing off", i+1, err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Log(logs.String())
	if healthy := urls[2].Addr(); strings.Contains(logs.String(), "server="+healthy) {
		t.Errorf("the healthy server %s was marked failed:\n%s", healthy, logs.String())
	}
	st := c.Servers()
	if !st[2].Healthy || st[2].Failures != 0 {
		t.Errorf("healthy server: got %+v; want healthy", st[2])
	}
	for _, s := range st[:2] {
		if s.Healthy || s.BackoffUntil.Before(time.Now().Add(dialTimeout)) {
			t.Errorf("dead server: got %+v; want unhealthy, backing off for longer than a request", s)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
