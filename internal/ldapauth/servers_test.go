package ldapauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeClient has servers h1, h2, h3 (never dialled) and a clock the test moves.
func fakeClient(t *testing.T, change func(*Config)) (*Client, *time.Time) {
	t.Helper()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	urls, err := ParseURLs("ldaps://h1/dc=x ldaps://h2 ldaps://h3")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{URLs: urls, DialTimeout: 300 * time.Millisecond, Timeout: 2 * time.Second, Now: func() time.Time { return now }}
	if change != nil {
		change(&cfg)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, &now
}

func hosts(servers []*server) string {
	var h []string
	for _, s := range servers {
		h = append(h, s.url.Host)
	}
	return strings.Join(h, " ")
}

func TestBackoffOutlastsARequest(t *testing.T) {
	for _, tt := range []struct {
		dial time.Duration
		want []time.Duration
	}{
		{300 * time.Millisecond, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}},
		{8 * time.Second, []time.Duration{8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute}},
	} {
		c, now := fakeClient(t, func(c *Config) { c.DialTimeout = tt.dial })
		s := c.servers[0]
		for i, want := range tt.want {
			s.failed(errors.New("down"), *now)
			if got := s.status().BackoffUntil.Sub(*now); got != want {
				t.Errorf("dial timeout %v, failure %d: got back-off %v; want %v", tt.dial, i+1, got, want)
			}
		}
	}
}

func TestOrderWhenEveryServerBacksOff(t *testing.T) {
	c, now := fakeClient(t, nil)
	h1, h2, h3 := c.servers[0], c.servers[1], c.servers[2]
	h1.failed(errors.New("down"), *now)
	h1.failed(errors.New("down"), *now) // 10s
	h2.failed(errors.New("down"), *now) // 5s
	h3.failed(errors.New("down"), now.Add(-time.Second))
	h3.failed(errors.New("down"), now.Add(-time.Second)) // 9s
	got, allDown := c.order()
	if hosts(got) != "h2 h3 h1" || !allDown {
		t.Errorf("order: got %q, all down %v; want \"h2 h3 h1\", true (soonest end of back-off first)", hosts(got), allDown)
	}
	*now = now.Add(6 * time.Second)
	if got, allDown := c.order(); hosts(got) != "h2" || allDown {
		t.Errorf("order after h2's back-off: got %q, %v; want \"h2\", false", hosts(got), allDown)
	}
}

// A server whose back-off has ended is retried by one request; concurrent
// ones skip it meanwhile instead of all paying its dial timeout.
func TestRecoveringServerIsProbedByOneRequest(t *testing.T) {
	c, now := fakeClient(t, nil)
	h1 := c.servers[0]
	h1.failed(errors.New("down"), *now)
	*now = now.Add(6 * time.Second)
	if !h1.claim(*now) {
		t.Fatal("first claim after the back-off: got false; want true")
	}
	if h1.claim(*now) {
		t.Error("second claim while probing: got true; want false")
	}
	if got, _ := c.order(); hosts(got) != "h2 h3" {
		t.Errorf("order while h1 is probed: got %q; want \"h2 h3\"", hosts(got))
	}
	h1.failed(errors.New("still down"), *now)
	if h1.claim(*now) {
		t.Error("claim right after a failure: got true; want false (backing off)")
	}
	*now = now.Add(11 * time.Second)
	if !h1.claim(*now) {
		t.Error("claim after the second back-off: got false; want true")
	}
	h1.succeeded(*now)
	if !h1.claim(*now) || !h1.claim(*now) {
		t.Error("a healthy server is claimed by every request")
	}
}

// A server that failed before gets only what leaves a full dial timeout to a
// healthy server after it; a healthy one gets the dial timeout, or the
// caller's remaining time, and then a timeout is not its fault.
func TestPlan(t *testing.T) {
	c, now := fakeClient(t, nil)
	h1, h2, h3 := c.servers[0], c.servers[1], c.servers[2]
	ctx, cancel := context.WithTimeout(context.Background(), 450*time.Millisecond)
	defer cancel()
	if a := c.plan(ctx, h1, []*server{h2, h3}); a.budget != c.dialTimeout || a.byCaller {
		t.Errorf("healthy server: got %+v; want the dial timeout, not bounded by the caller", a)
	}
	h1.failed(errors.New("down"), *now)
	if a := c.plan(ctx, h1, []*server{h2, h3}); a.budget > 150*time.Millisecond || a.budget < 100*time.Millisecond || a.byCaller {
		t.Errorf("recovering server before a healthy one: got %+v; want about 150ms, the rest kept for the healthy one", a)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if a := c.plan(short, h2, []*server{h3}); a.budget > 100*time.Millisecond || !a.byCaller {
		t.Errorf("healthy server, 100ms left: got %+v; want at most 100ms, bounded by the caller", a)
	}
}

func TestConfigWarnings(t *testing.T) {
	withCA := func(c *Config) {
		cfg, err := NewTLSConfig(TLSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.RootCAs = x509.NewCertPool()
		c.TLSConfig = cfg
	}
	tests := []struct {
		name   string
		urls   string
		change func(*Config)
		want   []string // substrings, one warning each; nil: no warning
	}{
		{"ldaps, time enough", "ldaps://h1/dc=x ldaps://h2", func(c *Config) { c.DialTimeout, c.Timeout = 5*time.Second, 10*time.Second }, nil},
		{"three servers, 2 x dial = timeout", "ldaps://h1/dc=x ldaps://h2 ldaps://h3", func(c *Config) { c.DialTimeout, c.Timeout = 5*time.Second, 10*time.Second },
			[]string{"LDAP_TIMEOUT 10s before the last is tried"}},
		{"StartTLS", "ldap://h1/dc=x", func(c *Config) { c.StartTLS = true }, nil},
		{"plain ldap", "ldap://h1/dc=x ldaps://h2", nil, []string{"ldap:// without StartTLS to h1:389: passwords cross the network in clear text"}},
		{"CA file without TLS", "ldap://h1/dc=x", withCA, []string{"clear text", "LDAP_CA_FILE (or a client certificate) is set but no TLS is used"}},
		{"no verification", "ldaps://h1/dc=x", func(c *Config) { c.TLSConfig = &tls.Config{InsecureSkipVerify: true} }, []string{"verification is disabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			urls, err := ParseURLs(tt.urls)
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{URLs: urls}
			if tt.change != nil {
				tt.change(&cfg)
			}
			c, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Settings().Warnings
			if len(got) != len(tt.want) {
				t.Fatalf("got warnings %q; want %d: %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d: got %q; want it to contain %q", i, got[i], w)
				}
			}
		})
	}
	urls, _ := ParseURLs("ldaps://h1/dc=x ldaps://h2")
	if _, err := New(Config{URLs: urls, StartTLS: true}, nil); err == nil ||
		!strings.Contains(err.Error(), "LDAP_START_TLS") || !strings.Contains(err.Error(), "LDAP_URL") {
		t.Errorf("StartTLS with ldaps:// only: got %v; want an error naming LDAP_START_TLS and LDAP_URL", err)
	}
	urls, _ = ParseURLs("ldap://h1/dc=x ldaps://h2")
	if _, err := New(Config{URLs: urls, StartTLS: true}, nil); err != nil {
		t.Errorf("StartTLS with an ldap:// URL among ldaps:// ones: got %v; want no error", err)
	}
}

func TestSettings(t *testing.T) {
	urls, err := ParseURLs("ldap://h1/dc=x?uid ldap://h2")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{URLs: urls, Preset: PresetActiveDirectory, StartTLS: true, NestedGroups: true,
		GroupMemberAttribute: "member", RequireGroups: []string{"cn=g,dc=x"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Settings()
	if got.LoginAttribute != "uid" || got.UserFilter != "(&(objectCategory=person)(objectClass=user))" || got.Scope != "sub" ||
		got.MemberAttribute != "member" || got.Membership != MembershipEntries || got.NestedGroups != NestedInChain ||
		got.GroupBase != "dc=x" || got.GroupFilter != DefaultFilter || !got.ResolveGroups || got.TLS != "StartTLS" ||
		got.Preset != PresetActiveDirectory || got.Backoff != 5*time.Second {
		t.Errorf("Settings: got %+v", got)
	}
}
