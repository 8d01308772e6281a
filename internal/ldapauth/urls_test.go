package ldapauth

import (
	"strings"
	"testing"
)

func TestParseURLs(t *testing.T) {
	const first = "ldaps://dc1.corp:636/dc=corp,dc=com?sAMAccountName?sub?(objectClass=user)"
	good := []struct {
		name  string
		in    string
		addrs []string
	}{
		{"one", first, []string{"dc1.corp:636"}},
		{"bare second inherits", first + "  ldap://dc2.corp", []string{"dc1.corp:636", "dc2.corp:389"}},
		{"bare second with slash", first + " ldaps://dc2.corp/", []string{"dc1.corp:636", "dc2.corp:636"}},
		{"repeated in another spelling", first + "\tldaps://dc2.corp/DC=Corp,DC=Com?samaccountname?sub?(objectClass=user)", []string{"dc1.corp:636", "dc2.corp:636"}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			urls, err := ParseURLs(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var addrs []string
			for _, u := range urls {
				addrs = append(addrs, u.Addr())
				if u.Attribute != "sAMAccountName" && !strings.EqualFold(u.Attribute, "sAMAccountName") || u.Filter != "(objectClass=user)" {
					t.Errorf("URL %s does not search like the first", u)
				}
			}
			if strings.Join(addrs, " ") != strings.Join(tt.addrs, " ") {
				t.Errorf("got %v; want %v", addrs, tt.addrs)
			}
		})
	}
	bad := []struct{ name, in, want string }{
		{"empty", "  ", "no URL"},
		{"first bare", "ldap://dc1", "base DN is required"},
		{"other base", first + " ldap://dc2/dc=other", "URL 2"},
		{"other filter", first + " ldap://dc2/dc=corp,dc=com?sAMAccountName?sub?(cn=*)", "must have the first URL's"},
		{"bad second", first + " http://dc2", `URL 2 (http://dc2): scheme must be ldap or ldaps, got "http"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseURLs(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPresets(t *testing.T) {
	tests := []struct {
		name             string
		url              string
		preset           Preset
		memberAttr       string
		wantAttr, filter string
		wantMember       string
		wantNested       NestedMode
		ad               bool
	}{
		{"none", "ldap://h/dc=x", PresetNone, "", "uid", DefaultFilter, MemberAttribute, NestedWalk, false},
		{"AD fills attribute and filter", "ldaps://h/dc=x", PresetActiveDirectory, "", "sAMAccountName", "(&(objectCategory=person)(objectClass=user))", MemberAttribute, NestedInChain, true},
		{"AD keeps an explicit attribute", "ldaps://h/dc=x?userPrincipalName?sub?(objectClass=user)", PresetActiveDirectory, "", "userPrincipalName", "(objectClass=user)", MemberAttribute, NestedInChain, true},
		{"okta fills uniqueMember when unset", "ldaps://h/ou=users,dc=o,dc=okta,dc=com", PresetOkta, "", "uid", "(objectClass=inetOrgPerson)", UniqueMemberAttribute, NestedWalk, false},
		{"okta keeps an explicit member", "ldaps://h/ou=users,dc=o,dc=okta,dc=com", PresetOkta, "member", "uid", "(objectClass=inetOrgPerson)", MemberAttribute, NestedWalk, false},
		{"okta keeps an explicit generic filter", "ldaps://h/dc=x??sub?(objectClass=*)", PresetOkta, "", "uid", DefaultFilter, UniqueMemberAttribute, NestedWalk, false},
		{"AD keeps an explicit uid and generic filter", "ldaps://h/dc=x?uid?sub?(objectClass=*)", PresetActiveDirectory, "", "uid", DefaultFilter, MemberAttribute, NestedInChain, true},
		{"AD fills only what is left out", "ldaps://h/dc=x?uid", PresetActiveDirectory, "", "uid", "(&(objectCategory=person)(objectClass=user))", MemberAttribute, NestedInChain, true},
		{"AD: an attribute written in any URL counts", "ldaps://h/dc=x ldaps://h2/dc=x?uid", PresetActiveDirectory, "", "uid", "(&(objectCategory=person)(objectClass=user))", MemberAttribute, NestedInChain, true},
		{"AD: a bare second URL inherits left-out parts", "ldaps://h/dc=x ldaps://h2", PresetActiveDirectory, "", "sAMAccountName", "(&(objectCategory=person)(objectClass=user))", MemberAttribute, NestedInChain, true},
		{"okta keeps an explicit memberUid", "ldaps://h/dc=x", PresetOkta, "memberUid", "uid", "(objectClass=inetOrgPerson)", MemberUIDAttribute, NestedWalk, false},
		{"openldap", "ldap://h/dc=x", "OpenLDAP", "", "uid", "(objectClass=inetOrgPerson)", MemberAttribute, NestedWalk, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			urls, err := ParseURLs(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(Config{URLs: urls, Preset: tt.preset, GroupMemberAttribute: tt.memberAttr, NestedGroups: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.url.Attribute != tt.wantAttr || c.url.Filter != tt.filter || c.groups.memberAttr != tt.wantMember ||
				c.groups.nested != tt.wantNested || c.ad != tt.ad {
				t.Errorf("got attr %q filter %q member %q nested %q ad %v; want %q %q %q %q %v",
					c.url.Attribute, c.url.Filter, c.groups.memberAttr, c.groups.nested, c.ad,
					tt.wantAttr, tt.filter, tt.wantMember, tt.wantNested, tt.ad)
			}
		})
	}
	for _, bad := range []Config{
		{Preset: "freeipa"},
		{ADDomain: "CORP"},
		{GroupMembership: "both"},
		{NestedGroups: true, NestedMode: "deep"},
		{NestedGroups: true, NestedMode: NestedInChain, GroupMemberAttribute: "memberUid"},
		{GroupBaseDN: "nonsense"},
		{GroupFilter: "(cn="},
	} {
		bad.URL = mustURL(t, "ldap://h/dc=x")
		if _, err := New(bad, nil); err == nil {
			t.Errorf("New(%+v): got no error", bad)
		}
	}
}
