package policy

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

// Subject is an authenticated user as the policy matches it: the name and
// the groups, folded once so that matching a request allocates nothing.
// Build it once per login (authsvc keeps it with the cached identity).
type Subject struct {
	Name   string              // canonical name, for messages
	name   string              // folded
	dns    map[string]struct{} // dnKey of every group
	cns    map[string]struct{} // folded first RDN value of every group
	groups int
}

// NewSubject folds id's name and groups. Group DNs that do not parse are
// skipped, as ldapauth does when it checks required groups.
func NewSubject(id ldapauth.Identity) *Subject {
	s := &Subject{Name: id.Name, name: fold(id.Name), groups: len(id.Groups)}
	if len(id.Groups) == 0 {
		return s
	}
	s.dns = make(map[string]struct{}, len(id.Groups))
	s.cns = make(map[string]struct{}, len(id.Groups))
	for _, g := range id.Groups {
		dn, err := ldap.ParseDN(g)
		if err != nil || len(dn.RDNs) == 0 {
			continue
		}
		s.dns[dnKey(dn)] = struct{}{}
		if attrs := dn.RDNs[0].Attributes; len(attrs) > 0 {
			s.cns[fold(attrs[0].Value)] = struct{}{}
		}
	}
	return s
}

// dnKey is a string that two DNs share exactly when ldap's DN.EqualFold
// holds between them: types and values folded, the attributes of a
// multi-valued RDN sorted, the separators escaped.
func dnKey(dn *ldap.DN) string {
	var b strings.Builder
	for i, rdn := range dn.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		parts := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			parts[j] = escapeKey(fold(a.Type)) + "=" + escapeKey(fold(a.Value))
		}
		sort.Strings(parts)
		b.WriteString(strings.Join(parts, "+"))
	}
	return b.String()
}

func escapeKey(s string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `+`, `\+`, `=`, `\=`).Replace(s)
}

// fold maps s so that fold(a) == fold(b) exactly when strings.EqualFold(a, b):
// every rune becomes the lower case of the smallest rune of its simple
// case-folding orbit (so ASCII is simply lower-cased).
func fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		smallest := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			smallest = min(smallest, f)
		}
		b.WriteRune(unicode.ToLower(smallest))
	}
	return b.String()
}
