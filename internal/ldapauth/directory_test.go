package ldapauth

// Directory features on real slapd: paging (A13), the pool (A15), TLS, nested
// groups, memberOf, several required groups, presets. Skipped with -short.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/toanc/aws-ecr-ldap/internal/slapd"
	"github.com/toanc/aws-ecr-ldap/internal/testpki"
)

// ownDirectory starts a slapd for one test (one that stops it or adds to it).
func ownDirectory(t *testing.T, opts slapd.Options) *slapd.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("needs slapd; skipped with -short")
	}
	if err := slapd.Available(); err != nil {
		t.Fatal(err)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := slapd.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

func groupOfNames(dn string, members ...string) *ldap.AddRequest {
	r := ldap.NewAddRequest(dn, nil)
	cn, _, _ := strings.Cut(strings.TrimPrefix(dn, "cn="), ",")
	r.Attribute("objectClass", []string{"groupOfNames"})
	r.Attribute("cn", []string{cn})
	r.Attribute("member", members)
	return r
}

func TestA13PagedGroupSearch(t *testing.T) {
	srv := ownDirectory(t, slapd.Options{})
	carol, bob := user(t, "carol"), user(t, "bob")
	var reqs []*ldap.AddRequest
	for i := range 1100 {
		members := []string{carol.DN}
		if i < 60 {
			members = append(members, bob.DN)
		}
		reqs = append(reqs, groupOfNames(fmt.Sprintf("cn=bulk-%04d,%s", i, slapd.GroupsDN), members...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Add(ctx, reqs...); err != nil {
		t.Fatal(err)
	}
	last := fmt.Sprintf("cn=bulk-%04d,%s", 1099, slapd.GroupsDN)
	c := newClient(t, srv, func(c *Config) {
		c.RequireGroups = []string{last, fmt.Sprintf("cn=bulk-%04d,%s", 59, slapd.GroupsDN)}
	})
	tests := []struct {
		name       string
		u          slapd.User
		wantGroups int
		want       error
	}{
		// carol is in all 1100: more than slapd's 1000-entry size limit.
		{"carol in 1100 groups", carol, 1100, nil},
		// bob: 60 bulk groups and registry-users (registry-posix lists memberUid).
		{"bob in 60 groups", bob, 61, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			id, err := c.Authenticate(context.Background(), tt.u.Name, tt.u.Password)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("answered after %v; want well inside 15s", elapsed)
			}
			if err != nil {
				t.Fatalf("Authenticate(%s): %v", tt.u.Name, err)
			}
			if len(id.Groups) != tt.wantGroups {
				t.Errorf("groups: got %d; want %d", len(id.Groups), tt.wantGroups)
			}
		})
	}
}

func TestA15PoolSurvivesRestart(t *testing.T) {
	srv := ownDirectory(t, slapd.Options{})
	alice := user(t, "alice")
	c := newClient(t, srv, func(c *Config) { c.RequireGroups = []string{slapd.GroupOps} })
	defer c.Close()
	auth := func(step string) {
		t.Helper()
		if _, err := c.Authenticate(context.Background(), "alice", alice.Password); err != nil {
			t.Fatalf("%s: Authenticate: %v", step, err)
		}
	}
	auth("cold")
	before := srv.BindCount()
	auth("warm")
	auth("warm again")
	// Warm: one user bind per login, on pooled connections; no service re-bind, no dial.
	if got, want := srv.BindCount()-before, 2; got != want {
		t.Errorf("binds for two warm logins: got %d; want %d (user binds only)", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	auth("after restart")
	for _, s := range c.Servers() {
		if !s.Healthy {
			t.Errorf("server %s after a successful login: got unhealthy (%s); want healthy", s.URL, s.LastError)
		}
	}
}

// A connection that breaks between being taken from the pool and being used
// (the server's FIN not yet seen) is retried once on a new connection.
func TestPoolRetriesBrokenConnectionOnce(t *testing.T) {
	srv := directory(t)
	c := newClient(t, srv, nil)
	defer c.Close()
	if err := c.Ping(context.Background()); err != nil { // leaves one idle connection
		t.Fatal(err)
	}
	broken := ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection closed"))
	var calls []bool // reused flag per call
	err := c.search.do(context.Background(), func(conn *ldap.Conn) error {
		calls = append(calls, len(calls) == 0)
		if len(calls) == 1 {
			return broken
		}
		return readRootDSE(conn, 1)
	})
	if err != nil || len(calls) != 2 {
		t.Errorf("got %v after %d calls; want success after 2", err, len(calls))
	}
	// Twice broken: the error comes back, as ErrUnavailable.
	err = c.search.do(context.Background(), func(*ldap.Conn) error { return broken })
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("broken twice: got %v; want ErrUnavailable", err)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("ldapauth test CA")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(filepath.Join(dir, "pki"), "slapd", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("someone else")
	if err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(dir, "other-ca.crt")
	if err := other.WriteCACert(otherCA); err != nil {
		t.Fatal(err)
	}
	srv := ownDirectory(t, slapd.Options{Dir: filepath.Join(dir, "ldap"),
		TLS: &slapd.TLS{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}})
	alice := user(t, "alice")
	ldaps := srv.LDAPSURL() + slapd.SearchPath

	tests := []struct {
		name     string
		url      string
		startTLS bool
		opts     TLSOptions
		want     error
	}{
		{"ldaps with the CA", ldaps, false, TLSOptions{CAFile: files.CA}, nil},
		{"StartTLS with the CA", srv.SearchURL(), true, TLSOptions{CAFile: files.CA}, nil},
		{"ldaps with another CA", ldaps, false, TLSOptions{CAFile: otherCA}, ErrUnavailable},
		{"StartTLS with another CA never falls back", srv.SearchURL(), true, TLSOptions{CAFile: otherCA}, ErrUnavailable},
		{"ldaps, system roots", ldaps, false, TLSOptions{}, ErrUnavailable},
		{"skip verify when set", ldaps, false, TLSOptions{CAFile: otherCA, InsecureSkipVerify: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tlsCfg, err := NewTLSConfig(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			c := newClient(t, srv, func(c *Config) {
				c.URL, c.StartTLS, c.TLSConfig = mustURL(t, tt.url), tt.startTLS, tlsCfg
			})
			defer c.Close()
			before := srv.BindCount()
			_, err = c.Authenticate(context.Background(), "alice", alice.Password)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v; want %v", err, tt.want)
			}
			if tt.want != nil && srv.BindCount() != before {
				t.Errorf("a bind reached slapd over an unverified connection")
			}
			if tt.want == nil {
				probes := c.ProbeAll(context.Background())
				if len(probes) != 1 || probes[0].Err != nil || !strings.Contains(probes[0].TLS, "TLS 1.") {
					t.Errorf("ProbeAll: got %+v; want one TLS probe without error", probes)
				}
			}
		})
	}
}

func TestNewTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	if err := writeFile(notPEM, "hello"); err != nil {
		t.Fatal(err)
	}
	for _, o := range []TLSOptions{
		{CAFile: filepath.Join(dir, "missing.pem")},
		{CAFile: notPEM},
		{CertFile: notPEM},
		{CertFile: notPEM, KeyFile: notPEM},
	} {
		if _, err := NewTLSConfig(o); err == nil {
			t.Errorf("NewTLSConfig(%+v): got no error", o)
		}
	}
}

func TestGroups(t *testing.T) {
	srv := directory(t)
	alice, bob, carol, dave, erin, frank := user(t, "alice"), user(t, "bob"), user(t, "carol"), user(t, "dave"), user(t, "erin"), user(t, "frank")
	nestedAll := []string{slapd.GroupNestedLeaf, slapd.GroupNestedMid, slapd.GroupNestedTop, slapd.GroupCycleA, slapd.GroupCycleB}

	t.Run("several required groups, any of them, compared as DNs", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, func(c *Config) {
			c.RequireGroups = []string{
				"cn=nobody,ou=groups," + slapd.BaseDN, // missing groups do not matter when another exists
				`CN=Ops\2C Registry, OU=Groups, DC=Example, DC=Org`,
				slapd.GroupUnique,
			}
		}), []authCase{
			{"alice via ops", "alice", alice.Password, nil, &Identity{DN: alice.DN, Name: "alice",
				Groups: []string{slapd.GroupRegistryUsers, slapd.GroupOps}}},
			{"dave via ops", "dave", dave.Password, nil, nil},
			{"bob in neither", "bob", bob.Password, ErrForbidden, nil},
			{"carol in none", "carol", carol.Password, ErrForbidden, nil},
		})
	})
	t.Run("uniqueMember", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, func(c *Config) {
			c.RequireGroups, c.GroupMemberAttribute = []string{slapd.GroupUnique}, UniqueMemberAttribute
		}), []authCase{
			{"frank", "frank", frank.Password, nil, &Identity{DN: frank.DN, Name: "frank", Groups: []string{slapd.GroupUnique}}},
			{"alice", "alice", alice.Password, ErrForbidden, nil},
		})
	})
	t.Run("okta preset uses uniqueMember", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, func(c *Config) {
			c.Preset, c.RequireGroups = PresetOkta, []string{slapd.GroupUnique}
		}), []authCase{{"frank", "frank", frank.Password, nil, nil}})
	})
	t.Run("nested walk survives a cycle", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, func(c *Config) {
			c.NestedGroups, c.RequireGroups = true, []string{slapd.GroupNestedTop}
		}), []authCase{
			{"erin via leaf and mid", "erin", erin.Password, nil, &Identity{DN: erin.DN, Name: "erin", Groups: nestedAll}},
			{"alice is not nested in", "alice", alice.Password, ErrForbidden, nil},
		})
	})
	t.Run("without nesting only direct groups count", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, func(c *Config) { c.RequireGroups = []string{slapd.GroupNestedTop} }),
			[]authCase{{"erin", "erin", erin.Password, ErrForbidden, nil}})
	})
	t.Run("depth limit", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, func(c *Config) {
			c.NestedGroups, c.NestedDepth, c.GroupBaseDN = true, 1, slapd.GroupsDN
		}), []authCase{{"erin, one level up", "erin", erin.Password, nil, &Identity{DN: erin.DN, Name: "erin",
			Groups: []string{slapd.GroupNestedLeaf, slapd.GroupNestedMid, slapd.GroupCycleA}}}})
	})
	t.Run("group base outside the groups", func(t *testing.T) {
		// The group search finds nothing under ou=people, but the required group
		// lists alice directly: admitted, with a warning in the log.
		runAuthCases(t, newClient(t, srv, func(c *Config) {
			c.RequireGroups, c.GroupBaseDN = []string{slapd.GroupOps}, slapd.PeopleDN
		}), []authCase{
			{"alice", "alice", alice.Password, nil, nil},
			{"carol", "carol", carol.Password, ErrForbidden, nil},
		})
	})
	t.Run("no group configuration resolves no groups", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, nil), []authCase{
			{"alice", "alice", alice.Password, nil, &Identity{DN: alice.DN, Name: "alice"}},
		})
	})
}

func TestMemberOf(t *testing.T) {
	srv := ownDirectory(t, slapd.Options{MemberOf: true})
	alice, carol, erin := user(t, "alice"), user(t, "carol"), user(t, "erin")
	runAuthCases(t, newClient(t, srv, func(c *Config) {
		c.GroupMembership, c.RequireGroups = MembershipMemberOf, []string{slapd.GroupOps}
	}), []authCase{
		{"alice", "alice", alice.Password, nil, &Identity{DN: alice.DN, Name: "alice",
			Groups: []string{slapd.GroupRegistryUsers, slapd.GroupOps}}},
		{"carol", "carol", carol.Password, ErrForbidden, nil},
	})
	runAuthCases(t, newClient(t, srv, func(c *Config) {
		c.GroupMembership, c.NestedGroups, c.RequireGroups = MembershipMemberOf, true, []string{slapd.GroupNestedTop}
	}), []authCase{
		{"erin nested through memberOf", "erin", erin.Password, nil, &Identity{DN: erin.DN, Name: "erin",
			Groups: []string{slapd.GroupNestedLeaf, slapd.GroupNestedMid, slapd.GroupNestedTop, slapd.GroupCycleA, slapd.GroupCycleB}}},
	})
}

func TestCanonicalName(t *testing.T) {
	srv := directory(t)
	alice := user(t, "alice")
	runAuthCases(t, newClient(t, srv, nil), []authCase{
		{"upper case", "ALICE", alice.Password, nil, &Identity{DN: alice.DN, Name: "alice"}},
		{"surrounding spaces", "  Alice ", alice.Password, nil, &Identity{DN: alice.DN, Name: "alice"}},
		{"no-break space", "alice\u00a0", alice.Password, nil, &Identity{DN: alice.DN, Name: "alice"}},
		{"inner space is another name", "al ice", alice.Password, ErrInvalidCredentials, nil},
	})
}

func TestOperability(t *testing.T) {
	srv := directory(t)
	reg := prometheus.NewRegistry()
	c := newClient(t, srv, func(c *Config) {
		c.RequireGroups, c.NestedGroups, c.Metrics = []string{slapd.GroupNestedTop}, true, NewMetrics(reg)
	})
	defer c.Close()
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	id, err := c.Lookup(context.Background(), " Erin")
	if err != nil || id.Name != "erin" || len(id.Groups) != 5 {
		t.Fatalf("Lookup: got %+v, %v; want erin in 5 groups", id, err)
	}
	if err := c.CheckGroups(context.Background(), id); err != nil {
		t.Errorf("CheckGroups(erin): %v", err)
	}
	if _, err := c.Lookup(context.Background(), "mallory"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Lookup(mallory): got %v; want ErrInvalidCredentials", err)
	}
	if _, err := c.Authenticate(context.Background(), "erin", user(t, "erin").Password); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	var up, idle float64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "authsvc_ldap_operation_duration_seconds":
				ops[labels["op"]+"/"+labels["result"]] = true
			case "authsvc_ldap_server_up":
				up = m.GetGauge().GetValue()
			case "authsvc_ldap_pool_connections":
				if labels["pool"] == "search" && labels["state"] == "idle" {
					idle = m.GetGauge().GetValue()
				}
			}
		}
	}
	for _, op := range []string{"connect/ok", "search_user/ok", "bind_user/ok", "search_groups/ok"} {
		if !ops[op] {
			t.Errorf("latency series %s missing; have %v", op, ops)
		}
	}
	if up != 1 || idle != 1 {
		t.Errorf("server_up %v, idle search connections %v; want 1 and 1", up, idle)
	}

	down := newClient(t, srv, func(c *Config) { c.URL = mustURL(t, "ldap://127.0.0.1:1/dc=example,dc=org") })
	if err := down.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping of a closed port: got %v; want ErrUnavailable", err)
	}
	st := down.Servers()
	if len(st) != 1 || st[0].Healthy || st[0].LastError == "" || !st[0].BackoffUntil.After(time.Now()) {
		t.Errorf("Servers after a failure: got %+v; want unhealthy, backing off", st)
	}
}

// A user in no group, with groups resolved, has an empty but non-nil Groups:
// "resolved, none" is not "not configured".
func TestGroupsResolvedButNone(t *testing.T) {
	srv := directory(t)
	for _, nested := range []bool{false, true} {
		c := newClient(t, srv, func(c *Config) {
			c.RequireGroups, c.GroupBaseDN, c.NestedGroups = []string{slapd.GroupRegistryUsers}, slapd.GroupsDN, nested
		})
		id, err := c.Lookup(context.Background(), "carol")
		if err != nil {
			t.Fatal(err)
		}
		if id.Groups == nil || len(id.Groups) != 0 {
			t.Errorf("nested %v: Lookup(carol).Groups = %#v; want empty, not nil", nested, id.Groups)
		}
		c.Close()
	}
	c := newClient(t, srv, nil)
	defer c.Close()
	if id, err := c.Lookup(context.Background(), "alice"); err != nil || id.Groups != nil {
		t.Errorf("without group settings: got %#v, %v; want nil Groups", id.Groups, err)
	}
}

// ProbeAll tries each server once and records the outcome, so that a lookup
// right after it does not wait for a hung server a second time.
func TestProbeAllRecordsHealth(t *testing.T) {
	srv := directory(t)
	const dialTimeout = 300 * time.Millisecond
	urls, err := ParseURLs("ldap://" + silentAddr(t) + "/dc=example,dc=org?uid?sub?(objectClass=inetOrgPerson) " + srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, func(c *Config) { c.URL, c.URLs, c.DialTimeout = nil, urls, dialTimeout })
	defer c.Close()
	probes := c.ProbeAll(context.Background())
	if len(probes) != 2 || probes[0].Err == nil || probes[1].Err != nil {
		t.Fatalf("ProbeAll: got %+v; want the first failed, the second ok", probes)
	}
	if st := c.Servers(); st[0].Healthy || !st[1].Healthy {
		t.Errorf("Servers after ProbeAll: got %+v; want the hung one unhealthy", st)
	}
	start := time.Now()
	if _, err := c.Lookup(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > dialTimeout/2 {
		t.Errorf("Lookup after ProbeAll took %v; want well under the dial timeout %v (the hung server skipped)", elapsed, dialTimeout)
	}
}
