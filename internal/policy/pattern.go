package policy

import (
	"errors"
	"strings"

	"github.com/toanc/aws-ecr-ldap/internal/regpath"
)

// pattern is a compiled repository pattern: components before a "**", and,
// when there is one, the components after it.
type pattern struct {
	text   string
	prefix []string // "*" matches any one component; anything else literally
	suffix []string
	double bool // has "**": one or more components between prefix and suffix
}

// compile checks and compiles a repository pattern: components joined by
// '/', each "*" (one component), "**" (one or more components; at most one
// per pattern) or a component of the distribution grammar.
func compile(text string) (pattern, error) {
	p := pattern{text: text}
	if text == "" {
		return p, errors.New("empty repository pattern")
	}
	if len(text) > regpath.MaxRepository {
		return p, errors.New("repository pattern longer than 255 bytes")
	}
	for _, c := range strings.Split(text, "/") {
		switch {
		case c == "**":
			if p.double {
				return p, errors.New(`at most one "**" per pattern`)
			}
			p.double = true
			continue
		case c == "*":
		case c == "":
			return p, errors.New("empty component (leading, trailing or double '/')")
		case strings.Contains(c, "*"):
			return p, errors.New(`"*" and "**" stand for whole components, as in team-a/* (no partial wildcards)`)
		case strings.ToLower(c) != c && regpath.ValidComponent(strings.ToLower(c)):
			return p, errors.New("repository names are lower case")
		case !regpath.ValidComponent(c):
			return p, errors.New("component " + quote(c) + " is not a valid repository name component ([a-z0-9] separated by '.', '_', '__' or '-')")
		}
		if p.double {
			p.suffix = append(p.suffix, c)
		} else {
			p.prefix = append(p.prefix, c)
		}
	}
	return p, nil
}

// match reports whether repo, a valid repository name, matches p. It does
// not allocate.
func (p *pattern) match(repo string) bool {
	rest := repo
	for i, c := range p.prefix {
		if rest == "" {
			return false
		}
		comp, after, more := strings.Cut(rest, "/")
		if c != "*" && c != comp {
			return false
		}
		rest = after
		if !more {
			// The whole name is used up: a match only if the pattern is too.
			return i == len(p.prefix)-1 && !p.double
		}
	}
	if !p.double {
		return false // name components left over
	}
	for i := len(p.suffix) - 1; i >= 0; i-- {
		j := strings.LastIndexByte(rest, '/')
		if j < 0 {
			return false // "**" needs at least one component of its own
		}
		if c := p.suffix[i]; c != "*" && c != rest[j+1:] {
			return false
		}
		rest = rest[:j]
	}
	return rest != ""
}
