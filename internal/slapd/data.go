package slapd

import (
	"maps"
	"slices"

	"github.com/go-ldap/ldap/v3"
)

// The sample directory. Every password here is deliberate and public: this is a demo
// and test directory, never a real one. Each odd-looking value exists for one of the
// field cases in /work/shared/cases/README.md (A4, A5, A6, A10, A11, A12).
const (
	// BaseDN is the suffix of the directory.
	BaseDN = "dc=example,dc=org"
	// AdminDN is the rootdn; it loads the data and bypasses every ACL.
	AdminDN = "cn=admin,dc=example,dc=org"
	// AdminPassword is the rootdn's password.
	AdminPassword = "admin-secret"

	// PeopleDN holds the ordinary users.
	PeopleDN = "ou=people,dc=example,dc=org"
	// ContractorsDN holds the second "twin" entry (case A10).
	ContractorsDN = "ou=contractors,dc=example,dc=org"
	// ServicesDN holds the service account.
	ServicesDN = "ou=services,dc=example,dc=org"
	// GroupsDN holds the groups.
	GroupsDN = "ou=groups,dc=example,dc=org"

	// ServiceDN is the read-only service account the gateway searches with. Its RDN
	// value contains a comma, escaped as RFC 4514 requires (case A12).
	ServiceDN = `cn=gateway\, reader,ou=services,dc=example,dc=org`
	// ServicePassword is ServiceDN's password.
	ServicePassword = "reader-secret"

	// GroupRegistryUsers is a groupOfNames whose member values are user DNs.
	GroupRegistryUsers = "cn=registry-users,ou=groups,dc=example,dc=org"
	// GroupOps is a groupOfNames whose DN contains an escaped comma (case A11).
	GroupOps = `cn=ops\, registry,ou=groups,dc=example,dc=org`
	// GroupPosix is a posixGroup whose memberUid values are plain login names.
	GroupPosix = "cn=registry-posix,ou=groups,dc=example,dc=org"

	// GroupUnique is a groupOfUniqueNames, as Okta's LDAP interface serves groups.
	GroupUnique = "cn=registry-unique,ou=groups,dc=example,dc=org"

	// Nested groups: erin is a direct member of GroupNestedLeaf only. The leaf is
	// in GroupNestedMid, which is in GroupNestedTop; the leaf is also in
	// GroupCycleA, and GroupCycleA and GroupCycleB contain each other. So erin is
	// in five groups, through a cycle.
	GroupNestedLeaf = "cn=nested-leaf,ou=groups,dc=example,dc=org"
	GroupNestedMid  = "cn=nested-mid,ou=groups,dc=example,dc=org"
	GroupNestedTop  = "cn=nested-top,ou=groups,dc=example,dc=org"
	GroupCycleA     = "cn=cycle-a,ou=groups,dc=example,dc=org"
	GroupCycleB     = "cn=cycle-b,ou=groups,dc=example,dc=org"

	// SearchPath is the part of an RFC 4516 URL after host:port that finds the
	// sample users by uid, in the form the old nginx ldap_server blocks used; see
	// [Server.SearchURL].
	SearchPath = "/dc=example,dc=org?uid?sub?(objectClass=inetOrgPerson)"
)

// User is one sample login.
type User struct {
	Name     string   // the uid value, as stored
	Password string   // the password, in clear (it is a demo directory)
	DN       string   // the entry's DN
	Groups   []string // DNs of the groups that list the user (member or memberUid)
}

// Users is the sample directory's logins. Both "twin" entries share a uid on purpose:
// a search by uid over the whole suffix finds two entries (case A10).
var Users = []User{
	{Name: "alice", Password: "alice-secret", DN: "uid=alice,ou=people,dc=example,dc=org",
		Groups: []string{GroupRegistryUsers, GroupOps, GroupPosix}},
	// A4: a colon in the password; only the first colon of user:pass separates.
	{Name: "bob", Password: "p@ss:wörd", DN: "uid=bob,ou=people,dc=example,dc=org",
		Groups: []string{GroupRegistryUsers, GroupPosix}},
	// A11: a valid user outside every group.
	{Name: "carol", Password: "carol-secret", DN: "uid=carol,ou=people,dc=example,dc=org"},
	// A5: LDAP filter and escape metacharacters in the password.
	{Name: "dave", Password: `Pa(ss)*\1`, DN: "uid=dave,ou=people,dc=example,dc=org",
		Groups: []string{GroupRegistryUsers, GroupOps}},
	// A6: a UTF-8 login name, a DN with an umlaut and a non-ASCII password.
	{Name: "jürgen", Password: "grüße-密码-7", DN: "uid=jürgen,ou=people,dc=example,dc=org",
		Groups: []string{GroupRegistryUsers}},
	// Nested groups: one direct group, four more through nesting and a cycle.
	{Name: "erin", Password: "erin-secret", DN: "uid=erin,ou=people,dc=example,dc=org",
		Groups: []string{GroupNestedLeaf}},
	// Okta-style membership: listed by uniqueMember only.
	{Name: "frank", Password: "frank-secret", DN: "uid=frank,ou=people,dc=example,dc=org",
		Groups: []string{GroupUnique}},
	// A10: two entries with the same uid in different OUs.
	{Name: "twin", Password: "twin-secret", DN: "uid=twin,ou=people,dc=example,dc=org",
		Groups: []string{GroupRegistryUsers}},
	{Name: "twin", Password: "twin-secret", DN: "uid=twin,ou=contractors,dc=example,dc=org",
		Groups: []string{GroupRegistryUsers}},
}

// UserByName returns the first sample user with that name.
func UserByName(name string) (User, bool) {
	for _, u := range Users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// entries returns the sample directory in an order that can be added top-down.
func entries() []*ldap.AddRequest {
	add := func(dn string, attrs map[string][]string) *ldap.AddRequest {
		r := ldap.NewAddRequest(dn, nil)
		for _, name := range slices.Sorted(maps.Keys(attrs)) {
			r.Attribute(name, attrs[name])
		}
		return r
	}
	ou := func(dn, name string) *ldap.AddRequest {
		return add(dn, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {name}})
	}
	reqs := []*ldap.AddRequest{
		add(BaseDN, map[string][]string{
			"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"},
		}),
		ou(PeopleDN, "people"),
		ou(ContractorsDN, "contractors"),
		ou(ServicesDN, "services"),
		ou(GroupsDN, "groups"),
		add(ServiceDN, map[string][]string{
			"objectClass":  {"organizationalRole", "simpleSecurityObject"},
			"cn":           {"gateway, reader"},
			"userPassword": {ServicePassword},
		}),
	}
	for _, u := range Users {
		reqs = append(reqs, add(u.DN, map[string][]string{
			"objectClass":  {"inetOrgPerson"},
			"uid":          {u.Name},
			"cn":           {u.Name},
			"sn":           {u.Name},
			"userPassword": {u.Password},
		}))
	}
	members := func(group string) (dns, names []string) {
		for _, u := range Users {
			for _, g := range u.Groups {
				if g == group {
					dns = append(dns, u.DN)
					names = append(names, u.Name)
				}
			}
		}
		return dns, names
	}
	regDNs, _ := members(GroupRegistryUsers)
	opsDNs, _ := members(GroupOps)
	_, posixNames := members(GroupPosix)
	leafDNs, _ := members(GroupNestedLeaf)
	uniqueDNs, _ := members(GroupUnique)
	groupOfNames := func(dn, cn string, members ...string) *ldap.AddRequest {
		return add(dn, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {cn}, "member": members})
	}
	reqs = append(reqs,
		add(GroupRegistryUsers, map[string][]string{
			"objectClass": {"groupOfNames"}, "cn": {"registry-users"}, "member": regDNs,
		}),
		add(GroupOps, map[string][]string{
			"objectClass": {"groupOfNames"}, "cn": {"ops, registry"}, "member": opsDNs,
		}),
		add(GroupPosix, map[string][]string{
			"objectClass": {"posixGroup"}, "cn": {"registry-posix"}, "gidNumber": {"5000"},
			"memberUid": posixNames,
		}),
		add(GroupUnique, map[string][]string{
			"objectClass": {"groupOfUniqueNames"}, "cn": {"registry-unique"}, "uniqueMember": uniqueDNs,
		}),
		// Top-down, so that the memberof overlay, when loaded, finds each member.
		groupOfNames(GroupNestedLeaf, "nested-leaf", leafDNs...),
		groupOfNames(GroupNestedMid, "nested-mid", GroupNestedLeaf),
		groupOfNames(GroupNestedTop, "nested-top", GroupNestedMid),
		// cycle-a names cycle-b before it exists: slapd has no referential integrity here.
		groupOfNames(GroupCycleA, "cycle-a", GroupNestedLeaf, GroupCycleB),
		groupOfNames(GroupCycleB, "cycle-b", GroupCycleA),
	)
	return reqs
}
