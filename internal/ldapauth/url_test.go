package ldapauth

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want URL
	}{
		{"ldap://ldap.corp:389/ou=people,dc=corp,dc=com?uid?sub?(objectClass=inetOrgPerson)",
			URL{"ldap", "ldap.corp", 389, "ou=people,dc=corp,dc=com", "uid", ldap.ScopeWholeSubtree, "(objectClass=inetOrgPerson)", 0}},
		{"ldap://ldap.corp/dc=corp,dc=com",
			URL{"ldap", "ldap.corp", 389, "dc=corp,dc=com", "uid", ldap.ScopeWholeSubtree, "(objectClass=*)", partAttribute | partScope | partFilter}},
		{"ldaps://ldap.corp/dc=corp,dc=com?sAMAccountName",
			URL{"ldaps", "ldap.corp", 636, "dc=corp,dc=com", "sAMAccountName", ldap.ScopeWholeSubtree, "(objectClass=*)", partScope | partFilter}},
		{"LDAP://10.0.0.1:1389/dc=corp?cn,mail?ONE",
			URL{"ldap", "10.0.0.1", 1389, "dc=corp", "cn", ldap.ScopeSingleLevel, "(objectClass=*)", partFilter}},
		{"ldap://[::1]:3389/dc=corp??base?objectClass=person",
			URL{"ldap", "::1", 3389, "dc=corp", "uid", ldap.ScopeBaseObject, "(objectClass=person)", partAttribute}},
		{"ldap://h/ou=J%C3%BCrgen%5C%2C%20GmbH,dc=corp???(%26(objectClass=person)(!(cn=a%3Fb)))",
			URL{"ldap", "h", 389, `ou=Jürgen\, GmbH,dc=corp`, "uid", ldap.ScopeWholeSubtree, "(&(objectClass=person)(!(cn=a?b)))", partAttribute | partScope}},
		{`ldap://h/cn=ops\, registry,dc=corp?memberUid`,
			URL{"ldap", "h", 389, `cn=ops\, registry,dc=corp`, "memberUid", ldap.ScopeWholeSubtree, "(objectClass=*)", partScope | partFilter}},
		{"ldap://h/dc=corp?uid?sub?",
			URL{"ldap", "h", 389, "dc=corp", "uid", ldap.ScopeWholeSubtree, "(objectClass=*)", partFilter}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.in, err)
			}
			if *got != tt.want {
				t.Errorf("ParseURL(%q)\n got %+v\nwant %+v", tt.in, *got, tt.want)
			}
			again, err := ParseURL(got.String())
			if err != nil || *again != *got {
				t.Errorf("ParseURL(%q) = %+v, %v; want %+v", got.String(), again, err, *got)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"", "missing scheme"},
		{"ldap.corp/dc=corp", "missing scheme"},
		{"http://ldap.corp/dc=corp", `scheme must be ldap or ldaps, got "http"`},
		{"ldapi://%2Fvar%2Frun%2Fslapd/dc=corp", `got "ldapi"`},
		{"ldap:///dc=corp", "host is required"},
		{"ldap://ldap.corp", "base DN is required"},
		{"ldap://ldap.corp/", "base DN is required"},
		{"ldap://ldap.corp/?uid", "base DN is required"},
		{"ldap://ldap.corp:0/dc=corp", "port must be"},
		{"ldap://ldap.corp:65536/dc=corp", "port must be"},
		{"ldap://ldap.corp:+389/dc=corp", "port must be"},
		{"ldap://ldap.corp:/dc=corp", "empty port"},
		{"ldap://user@ldap.corp/dc=corp", "not a host name"},
		{"ldap://ldap.corp:389:1/dc=corp", "port must be"},
		{"ldap://[::1/dc=corp", "missing ']'"},
		{"ldap://[10.0.0.1]/dc=corp", "not an IPv6 address"},
		{"ldap://h/not a dn", "base DN"},
		{"ldap://h/dc=corp%zz", "bad percent-encoding"},
		{"ldap://h/dc=%ff", "not valid UTF-8"},
		{"ldap://h/dc=corp?u id", "not an attribute name"},
		{"ldap://h/dc=corp?uid,*", "not an attribute name"},
		{"ldap://h/dc=corp?uid?subtree", `scope must be base, one or sub, got "subtree"`},
		{"ldap://h/dc=corp?uid?sub?(objectClass=person", "filter"},
		{"ldap://h/dc=corp?uid?sub?(|(a=b)", "filter"},
		{"ldap://h/dc=corp?uid?sub?(a=b)?!StartTLS", "extensions are not supported"},
		{"ldap://h/dc=corp?uid?sub?(a=b)?x?y", "too many"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if err == nil {
				t.Fatalf("ParseURL(%q) = %+v; want an error containing %q", tt.in, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseURL(%q) error %q; want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"ldap://ldap.corp:389/ou=people,dc=corp,dc=com?uid?sub?(objectClass=inetOrgPerson)",
		"ldaps://[::1]/dc=x??one?cn=a%3Fb",
		`ldap://h/cn=ops\, registry,dc=corp?memberUid?base?(&(a=*)(!(b=\2a)))`,
		"ldap://h/dc=%C3%BC%20x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			return
		}
		if u.BaseDN == "" || u.Host == "" || u.Port < 1 || u.Port > 65535 || u.Attribute == "" {
			t.Fatalf("ParseURL(%q) = %+v: a required part is empty", s, *u)
		}
		if _, err := ldap.CompileFilter(u.Filter); err != nil {
			t.Fatalf("ParseURL(%q) accepted filter %q that does not compile: %v", s, u.Filter, err)
		}
		again, err := ParseURL(u.String())
		if err != nil {
			t.Fatalf("ParseURL(%q) (String of %q): %v", u.String(), s, err)
		}
		if *again != *u {
			t.Fatalf("round trip of %q via %q: got %+v; want %+v", s, u.String(), *again, *u)
		}
	})
}
