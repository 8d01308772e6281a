package ldapauth

import (
	"context"
	"testing"
	"time"
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
