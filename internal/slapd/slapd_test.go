package slapd

import (
	"context"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func startServer(t *testing.T) *Server {
	t.Helper()
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, s *Server) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL(), err)
	}
	c.SetTimeout(5 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSampleUsersCanBind(t *testing.T) {
	s := startServer(t)
	for _, u := range Users {
		t.Run(u.DN, func(t *testing.T) {
			c := dial(t, s)
			if err := c.Bind(u.DN, u.Password); err != nil {
				t.Errorf("bind as %s: got %v; want success", u.DN, err)
			}
			if err := c.Bind(u.DN, u.Password+"x"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
				t.Errorf("bind with a wrong password: got %v; want result 49", err)
			}
		})
	}
}

func TestACLs(t *testing.T) {
	s := startServer(t)
	search := func(c *ldap.Conn, base, filter string) []string {
		t.Helper()
		res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 0, false, filter, []string{"1.1"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			t.Fatalf("search %s %s: %v", base, filter, err)
		}
		var dns []string
		if res != nil {
			for _, e := range res.Entries {
				dns = append(dns, e.DN)
			}
		}
		return dns
	}

	anon := dial(t, s)
	if got := search(anon, BaseDN, "(uid=*)"); len(got) != 0 {
		t.Errorf("anonymous search found %v; want nothing", got)
	}

	svc := dial(t, s)
	if err := svc.Bind(ServiceDN, ServicePassword); err != nil {
		t.Fatalf("bind as service account %s: %v", ServiceDN, err)
	}
	if got := search(svc, BaseDN, "(uid=twin)"); len(got) != 2 {
		t.Errorf("service search for twin found %v; want 2 entries", got)
	}
	if got := search(svc, GroupOps, "(member=uid=alice,ou=people,dc=example,dc=org)"); len(got) != 1 {
		t.Errorf("alice in %s: found %v; want 1 entry", GroupOps, got)
	}
	if got := search(svc, GroupPosix, "(memberUid=bob)"); len(got) != 1 {
		t.Errorf("bob in %s: found %v; want 1 entry", GroupPosix, got)
	}
	res, err := svc.Search(ldap.NewSearchRequest(Users[0].DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"userPassword"}, nil))
	if err != nil {
		t.Fatalf("read alice: %v", err)
	}
	if len(res.Entries) != 1 {
		t.Fatalf("service account read of alice: got %d entries; want 1", len(res.Entries))
	}
	if pw := res.Entries[0].GetAttributeValues("userPassword"); len(pw) != 0 {
		t.Errorf("service account read alice's userPassword (%d values); want it hidden", len(pw))
	}
}

func TestBindCountAndRestart(t *testing.T) {
	s := startServer(t)
	if got := s.BindCount(); got != 0 {
		t.Errorf("BindCount after loading data as rootdn: got %d; want 0", got)
	}
	bob, _ := UserByName("bob")
	c := dial(t, s)
	if err := c.Bind(bob.DN, bob.Password); err != nil {
		t.Fatalf("bind as bob: %v", err)
	}
	if got := s.BindCount(); got != 1 {
		t.Errorf("BindCount after one bind: got %d; want 1", got)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port()), time.Second); err == nil {
		t.Fatalf("port %d still answers after Stop", s.Port())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start again: %v", err)
	}
	c2 := dial(t, s)
	if err := c2.Bind(bob.DN, bob.Password); err != nil {
		t.Fatalf("bind as bob after restart: %v", err)
	}
	if got, want := s.BindDNs(), []string{bob.DN, bob.DN}; !slices.Equal(got, want) {
		t.Errorf("BindDNs: got %q; want %q", got, want)
	}
}
