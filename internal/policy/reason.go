package policy

import (
	"slices"
	"strconv"
	"strings"
)

// Most subjects named in one denial; the rest are "…".
const maxNeeds = 4

// denial explains that s, granted has, lacks need on repo.
func (p *Policy) denial(s *Subject, has, need Actions, repo string) string {
	verb := need.String()
	may := (has & (Pull | Push | Delete)).Names()
	var b strings.Builder
	b.WriteString(s.Name)
	if len(may) == 0 {
		b.WriteString(" may not ")
	} else {
		b.WriteString(" may ")
		for i, n := range may {
			switch {
			case i == 0:
			case i == len(may)-1:
				b.WriteString(" and ")
			default:
				b.WriteString(", ")
			}
			b.WriteString(n)
		}
		b.WriteString(" but not ")
	}
	b.WriteString(verb)
	b.WriteByte(' ')
	b.WriteString(repo)
	b.WriteByte(' ')
	b.WriteString(p.needs(s, need, repo))
	return b.String()
}

// needs names, in parentheses, the subjects s is not in of the rules that
// grant a on repo (any repository when repo is ""): "(needs group
// team-b-devs or user ci-bot)". Only rules before the one that decides for s
// can help (the first match wins), so when a rule decided and no earlier rule
// grants a, it names the deciding rule; when no rule grants a there, it says
// so.
func (p *Policy) needs(s *Subject, a Actions, repo string) string {
	var decided *Rule
	if repo == "" {
		decided = p.CatalogGrant(s).Rule
	} else {
		decided = p.Grant(s, repo).Rule
	}
	var names []string
	more, granted, before := false, false, true
	for _, r := range p.Rules {
		if r == decided {
			before = false // later rules never get a say for s
		}
		if r.Actions&a == 0 || (repo != "" && !r.matches(repo)) {
			continue
		}
		granted = true
		if !before || r.Includes(s) {
			continue
		}
		for _, n := range r.subjectNames() {
			if slices.Contains(names, n) {
				continue
			}
			if len(names) == maxNeeds {
				more = true
				break
			}
			names = append(names, n)
		}
	}
	switch {
	case len(names) > 0:
		if more {
			names = append(names, "…")
		}
		return "(needs " + strings.Join(names, " or ") + ")"
	case granted && decided != nil:
		return "(" + describe(decided) + " decides first)"
	case repo == "":
		return "(no rule grants " + a.String() + ")"
	}
	return "(no rule grants " + a.String() + " on " + repo + ")"
}

func (r *Rule) subjectNames() []string {
	var out []string
	for _, g := range r.Groups {
		out = append(out, "group "+g)
	}
	for _, u := range r.Users {
		out = append(out, "user "+u)
	}
	return out
}

// describe names a rule in prose: rule "name", rule N, or the default.
func describe(r *Rule) string {
	switch {
	case r == nil:
		return "the default"
	case r.Name != "":
		return "rule " + strconv.Quote(r.Name)
	}
	return r.Label
}
