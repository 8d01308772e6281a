package ldapauth

import (
	"fmt"
	"strings"
)

// Preset names a kind of directory whose usual layout fills the defaults.
type Preset string

// Presets; see the package documentation for what each fills in.
const (
	PresetNone            Preset = ""
	PresetActiveDirectory Preset = "activedirectory"
	PresetOkta            Preset = "okta"
	PresetOpenLDAP        Preset = "openldap"
)

// Membership says where group membership is read.
type Membership string

// Membership modes.
const (
	MembershipEntries  Membership = "entries"  // group entries list members (member, uniqueMember, memberUid)
	MembershipMemberOf Membership = "memberof" // the user entry lists groups (memberOf)
)

// NestedMode is how nested groups are resolved.
type NestedMode string

// Nested-group modes.
const (
	NestedWalk    NestedMode = "walk"    // breadth-first, one search per level, bounded depth, cycle-safe
	NestedInChain NestedMode = "inchain" // AD's LDAP_MATCHING_RULE_IN_CHAIN, one search
)

// inChainRule is Active Directory's LDAP_MATCHING_RULE_IN_CHAIN.
const inChainRule = "1.2.840.113556.1.4.1941"

type presetDefaults struct {
	attribute       string // the login attribute when LDAP_URL leaves it out
	filter          string // the user filter when LDAP_URL leaves it out
	memberAttr      string // when GroupMemberAttribute is empty
	membership      Membership
	nested          NestedMode
	activeDirectory bool
}

var presets = map[Preset]presetDefaults{
	PresetNone: {membership: MembershipEntries, nested: NestedWalk},
	PresetOpenLDAP: {
		filter: "(objectClass=inetOrgPerson)", memberAttr: MemberAttribute,
		membership: MembershipEntries, nested: NestedWalk,
	},
	PresetOkta: {
		filter: "(objectClass=inetOrgPerson)", memberAttr: UniqueMemberAttribute,
		membership: MembershipEntries, nested: NestedWalk,
	},
	PresetActiveDirectory: {
		attribute: "sAMAccountName", filter: "(&(objectCategory=person)(objectClass=user))",
		memberAttr: MemberAttribute, membership: MembershipEntries, nested: NestedInChain,
		activeDirectory: true,
	},
}

// ParsePreset reads a preset name, case-insensitively; "" is no preset.
func ParsePreset(s string) (Preset, error) {
	p := Preset(strings.ToLower(strings.TrimSpace(s)))
	if _, ok := presets[p]; !ok {
		return "", fmt.Errorf("preset must be activedirectory, okta or openldap, got %q", s)
	}
	return p, nil
}

func lookupPreset(p Preset) (presetDefaults, error) {
	if _, err := ParsePreset(string(p)); err != nil {
		return presetDefaults{}, err
	}
	return presets[Preset(strings.ToLower(string(p)))], nil
}

// applyURL gives u the preset's attribute and filter where the URLs left them
// out (omitted: the parts every URL left out). A part written in LDAP_URL
// always wins, even when it is the generic default: ?uid?sub?(objectClass=*)
// with the activedirectory preset searches uid with that filter.
func (p presetDefaults) applyURL(u URL, omitted urlParts) URL {
	if p.attribute != "" && omitted&partAttribute != 0 {
		u.Attribute = p.attribute
	}
	if p.filter != "" && omitted&partFilter != 0 {
		u.Filter = p.filter
	}
	return u
}

// ParseMembership reads a membership mode; "" means the preset's (entries).
func ParseMembership(s string) (Membership, error) {
	switch m := Membership(strings.ToLower(strings.TrimSpace(s))); m {
	case "", MembershipEntries, MembershipMemberOf:
		return m, nil
	}
	return "", fmt.Errorf("group membership must be entries or memberof, got %q", s)
}

// ParseNestedMode reads a nested-group mode; "" means the preset's.
func ParseNestedMode(s string) (NestedMode, error) {
	switch m := NestedMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", NestedWalk, NestedInChain:
		return m, nil
	}
	return "", fmt.Errorf("nested group mode must be walk or inchain, got %q", s)
}
