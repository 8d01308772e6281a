package policy

import (
	"strings"

	"github.com/toanc/aws-ecr-ldap/internal/regpath"
)

// Actions is a set of policy actions.
type Actions uint8

// The actions a rule can grant. Login (GET /v2/) needs none.
const (
	Pull Actions = 1 << iota
	Push
	Delete
	Catalog

	All = Pull | Push | Delete | Catalog // "*" in the file
)

var actionNames = [...]struct {
	a    Actions
	name string
}{{Pull, "pull"}, {Push, "push"}, {Delete, "delete"}, {Catalog, "catalog"}}

// ParseAction reads one action name of the file: pull, push, delete,
// catalog, or "*" for all of them.
func ParseAction(s string) (Actions, bool) {
	if s == "*" {
		return All, true
	}
	for _, n := range actionNames {
		if s == n.name {
			return n.a, true
		}
	}
	return 0, false
}

// ForAction is the policy action a registry action needs; 0 for login,
// which any authenticated user may do.
func ForAction(a regpath.Action) Actions {
	switch a {
	case regpath.ActionPull:
		return Pull
	case regpath.ActionPush:
		return Push
	case regpath.ActionDelete:
		return Delete
	case regpath.ActionCatalog:
		return Catalog
	}
	return 0
}

// Names lists the actions in a, in the order pull, push, delete, catalog.
func (a Actions) Names() []string {
	var out []string
	for _, n := range actionNames {
		if a&n.a != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// String is the actions separated by ", ", or "none".
func (a Actions) String() string {
	if a == 0 {
		return "none"
	}
	return strings.Join(a.Names(), ", ")
}

// Policy is a loaded policy file. It is immutable once loaded, and safe for
// concurrent use.
type Policy struct {
	File    string  // the path it was read from, for messages
	Default Actions // for authenticated users that match no rule
	Rules   []*Rule // in file order: the first match wins
}

// Rule is one entry of rules:.
type Rule struct {
	Index        int    // 1-based position in rules:
	Line         int    // of the rule in the file
	Name         string // optional
	Label        string // Name, or "rule N"
	Repositories []string
	Actions      Actions
	Users        []string // as written
	Groups       []string // as written: a DN, or a group's cn
	Everyone     bool

	patterns []pattern
	matchAll bool                // a pattern is "**"
	users    map[string]struct{} // folded
	dns      []string            // dnKeys of the DN groups
	cns      []string            // folded cn groups
}

// matches reports whether one of r's patterns matches repo.
func (r *Rule) matches(repo string) bool {
	if r.matchAll {
		return true
	}
	for i := range r.patterns {
		if r.patterns[i].match(repo) {
			return true
		}
	}
	return false
}

// Includes reports whether s is one of r's subjects.
func (r *Rule) Includes(s *Subject) bool {
	if r.Everyone {
		return true
	}
	if _, ok := r.users[s.name]; ok {
		return true
	}
	for _, k := range r.dns {
		if _, ok := s.dns[k]; ok {
			return true
		}
	}
	for _, k := range r.cns {
		if _, ok := s.cns[k]; ok {
			return true
		}
	}
	return false
}

// UsesGroups reports whether any rule names a group, which needs the
// directory to resolve each user's groups.
func (p *Policy) UsesGroups() bool {
	for _, r := range p.Rules {
		if len(r.Groups) > 0 {
			return true
		}
	}
	return false
}

// Grant says which actions a user has on a repository and why.
type Grant struct {
	Actions Actions
	Rule    *Rule // the first matching rule; nil: the default
}

// By names what decided: the rule's label, or "default".
func (g Grant) By() string {
	if g.Rule == nil {
		return "default"
	}
	return g.Rule.Label
}

// Grant is s's actions on repo: those of the first rule whose repositories
// match repo and whose subjects include s, else the default.
func (p *Policy) Grant(s *Subject, repo string) Grant {
	for _, r := range p.Rules {
		if r.matches(repo) && r.Includes(s) {
			return Grant{Actions: r.Actions, Rule: r}
		}
	}
	return Grant{Actions: p.Default}
}

// CatalogGrant is s's grant for the catalog, which names no repository: the
// first rule whose subjects include s decides, whatever its repositories;
// else the default.
func (p *Policy) CatalogGrant(s *Subject) Grant {
	for _, r := range p.Rules {
		if r.Includes(s) {
			return Grant{Actions: r.Actions, Rule: r}
		}
	}
	return Grant{Actions: p.Default}
}

// Verdict is the policy's answer to one request.
type Verdict struct {
	Allowed bool
	// Rule names what decided: a rule's label, "default", or "login" for
	// GET /v2/. For a mount, the rule that denied, or on success the one
	// that granted the push.
	Rule string
	// Reason explains a denial to the user, e.g. "alice may pull but not
	// push team-b/api (needs group team-b-devs)"; "" when allowed.
	Reason string
}

// Authorize decides req for s. An allowed request costs no allocation.
func (p *Policy) Authorize(s *Subject, req regpath.Request) Verdict {
	switch req.Action {
	case regpath.ActionLogin:
		return Verdict{Allowed: true, Rule: "login"}
	case regpath.ActionCatalog:
		g := p.CatalogGrant(s)
		if g.Actions&Catalog != 0 {
			return Verdict{Allowed: true, Rule: g.By()}
		}
		return Verdict{Rule: g.By(), Reason: s.Name + " may not list the catalog " + p.needs(s, Catalog, "")}
	}
	need := ForAction(req.Action)
	if need == 0 {
		return Verdict{Rule: "default", Reason: "unsupported registry request"}
	}
	g := p.Grant(s, req.Repository)
	if g.Actions&need == 0 {
		return Verdict{Rule: g.By(), Reason: p.denial(s, g.Actions, need, req.Repository)}
	}
	if req.MountFrom != "" {
		from := p.Grant(s, req.MountFrom)
		if from.Actions&Pull == 0 {
			return Verdict{Rule: from.By(), Reason: s.Name + " may not pull " + req.MountFrom +
				" to mount a blob from it into " + req.Repository + " " + p.needs(s, Pull, req.MountFrom)}
		}
	}
	return Verdict{Allowed: true, Rule: g.By()}
}
