package slapd

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/toanc/aws-ecr-ldap/internal/testpki"
)

func TestTLSAndMemberOf(t *testing.T) {
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca, err := testpki.NewCA("slapd test CA")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(filepath.Join(dir, "pki"), "slapd", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Dir: filepath.Join(dir, "ldap"), MemberOf: true,
		TLS: &TLS{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Stop() })

	tlsCfg := ca.ClientTLSConfig()
	tlsCfg.ServerName = "127.0.0.1"
	ldaps, err := ldap.DialURL(s.LDAPSURL(), ldap.DialWithTLSConfig(tlsCfg))
	if err != nil {
		t.Fatalf("dial %s: %v", s.LDAPSURL(), err)
	}
	defer ldaps.Close()
	ldaps.SetTimeout(5 * time.Second)
	if err := ldaps.Bind(ServiceDN, ServicePassword); err != nil {
		t.Fatalf("bind over ldaps: %v", err)
	}
	res, err := ldaps.Search(ldap.NewSearchRequest("uid=erin,"+PeopleDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"memberOf"}, nil))
	if err != nil {
		t.Fatalf("read erin: %v", err)
	}
	if got := res.Entries[0].GetAttributeValues("memberOf"); !slices.Equal(got, []string{GroupNestedLeaf}) {
		t.Errorf("erin's memberOf: got %q; want [%s]", got, GroupNestedLeaf)
	}

	plain := dial(t, s)
	if err := plain.StartTLS(tlsCfg); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if _, ok := plain.TLSConnectionState(); !ok {
		t.Error("no TLS after StartTLS")
	}
	if err := plain.Bind(ServiceDN, ServicePassword); err != nil {
		t.Errorf("bind after StartTLS: %v", err)
	}

	// The control: a client that trusts another CA is refused.
	other, _ := testpki.NewCA("other")
	bad := other.ClientTLSConfig()
	bad.ServerName = "127.0.0.1"
	if c, err := ldap.DialURL(s.LDAPSURL(), ldap.DialWithTLSConfig(bad)); err == nil {
		c.Close()
		t.Error("ldaps with an untrusted CA: got a connection; want an error")
	}
}

func TestSizeLimitAndPaging(t *testing.T) {
	s := startServer(t)
	var reqs []*ldap.AddRequest
	for i := range 1005 {
		r := ldap.NewAddRequest(fmt.Sprintf("cn=bulk-%04d,%s", i, GroupsDN), nil)
		r.Attribute("objectClass", []string{"groupOfNames"})
		r.Attribute("cn", []string{fmt.Sprintf("bulk-%04d", i)})
		r.Attribute("member", []string{"uid=carol," + PeopleDN})
		reqs = append(reqs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Add(ctx, reqs...); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	if err := c.Bind(ServiceDN, ServicePassword); err != nil {
		t.Fatal(err)
	}
	req := func() *ldap.SearchRequest {
		return ldap.NewSearchRequest(GroupsDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 0, false, "(member=uid=carol,"+PeopleDN+")", []string{"1.1"}, nil)
	}
	if _, err := c.Search(req()); !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		t.Errorf("unpaged search for 1005 groups: got %v; want size limit exceeded", err)
	}
	res, err := c.SearchWithPaging(req(), 500)
	if err != nil || len(res.Entries) != 1005 {
		t.Errorf("paged search: got %d entries, %v; want 1005", len(res.Entries), err)
	}
}
