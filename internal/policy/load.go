package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"gopkg.in/yaml.v3"
)

// Largest policy file read; a policy is a few kilobytes.
const maxFileBytes = 1 << 20

// Error is one problem in a policy file, at a line.
type Error struct {
	File string
	Line int // 0: the file as a whole
	Rule int // 1-based rule number; 0: not inside a rule
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Rule > 0 {
		b.WriteString("rule " + strconv.Itoa(e.Rule) + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and checks the policy file at path. The error joins every
// problem, each an *Error naming its line.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	if len(data) > maxFileBytes {
		return nil, &Error{File: path, Msg: "larger than 1 MiB"}
	}
	return Parse(path, data)
}

// Parse checks and compiles a policy file's contents; file names it in errors.
func Parse(file string, data []byte) (*Policy, error) {
	l := &loader{file: file, p: &Policy{File: file}}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch err := dec.Decode(&root); {
	case errors.Is(err, io.EOF):
		return nil, &Error{File: file, Msg: "empty; a policy has at least a rules: key (rules: [] grants only the default)"}
	case err != nil:
		return nil, &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = 0
		}
		return nil, &Error{File: file, Line: line, Msg: "more than one YAML document"}
	}
	l.document(&root)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return l.p, nil
}

type loader struct {
	file string
	p    *Policy
	errs []error
	rule int // the rule being read, for messages
}

func (l *loader) fail(n *yaml.Node, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Rule: l.rule, Msg: fmt.Sprintf(format, args...)})
}

// deref follows aliases (anchors may share lists of groups).
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return deref(n.Content[0])
	}
	return n
}

// fields reads a mapping with known keys, reporting unknown and repeated
// ones. It returns each known key's value node and the key's node.
func (l *loader) fields(n *yaml.Node, what string, known ...string) map[string][2]*yaml.Node {
	out := map[string][2]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		l.fail(n, "%s must be a mapping (key: value lines), got %s", what, kind(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		switch {
		case k.Kind != yaml.ScalarNode:
			l.fail(k, "%s: keys must be plain words", what)
		case !slices.Contains(known, k.Value):
			l.fail(k, "unknown key %q in %s (known: %s)", k.Value, what, strings.Join(known, ", "))
		case out[k.Value][0] != nil:
			l.fail(k, "%s repeated in %s (first on line %d)", k.Value, what, out[k.Value][1].Line)
		default:
			out[k.Value] = [2]*yaml.Node{v, k}
		}
	}
	return out
}

func (l *loader) document(root *yaml.Node) {
	n := deref(root)
	f := l.fields(n, "the policy", "default", "rules")
	if n.Kind != yaml.MappingNode {
		return
	}
	if d := f["default"][0]; d != nil {
		l.p.Default = l.actions(d, "default")
	}
	rules := f["rules"][0]
	if rules == nil {
		l.fail(n, "no rules: key (write rules: [] to grant only the default)")
		return
	}
	if rules.Kind == yaml.ScalarNode && rules.Tag == "!!null" {
		return // "rules:" with nothing after it: no rules
	}
	if rules.Kind != yaml.SequenceNode {
		l.fail(rules, "rules must be a list, got %s", kind(rules))
		return
	}
	names := map[string]int{}
	for i, rn := range rules.Content {
		l.rule = i + 1
		if r := l.ruleAt(deref(rn), names); r != nil {
			l.p.Rules = append(l.p.Rules, r)
		}
	}
	l.rule = 0
}

func (l *loader) ruleAt(n *yaml.Node, names map[string]int) *Rule {
	f := l.fields(n, "a rule", "name", "repositories", "actions", "users", "groups", "everyone")
	if n.Kind != yaml.MappingNode {
		return nil
	}
	bad := len(l.errs)
	r := &Rule{Index: l.rule, Line: n.Line, Label: "rule " + strconv.Itoa(l.rule), users: map[string]struct{}{}}
	if v := f["name"][0]; v != nil {
		if v.Kind != yaml.ScalarNode || strings.TrimSpace(v.Value) == "" {
			l.fail(v, "name must be a non-empty string")
		} else if strings.ContainsFunc(v.Value, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			l.fail(v, "name must be one line without control characters")
		} else if first, dup := names[v.Value]; dup {
			l.fail(v, "name %q already used by rule %d", v.Value, first)
		} else {
			names[v.Value] = l.rule
			r.Name, r.Label = v.Value, v.Value
		}
	}

	if v := f["repositories"][0]; v == nil {
		l.fail(n, `repositories missing (a list of patterns such as "team-a/**")`)
	} else {
		for _, item := range l.strings(v, "repositories") {
			p, err := compile(item.Value)
			if err != nil {
				l.fail(item, "repository pattern %q: %v", item.Value, err)
				continue
			}
			r.Repositories = append(r.Repositories, item.Value)
			r.patterns = append(r.patterns, p)
			r.matchAll = r.matchAll || item.Value == "**"
		}
		if len(r.Repositories) == 0 && len(l.errs) == bad {
			l.fail(v, "repositories is empty: the rule would never match")
		}
	}

	if v := f["actions"][0]; v == nil {
		l.fail(n, "actions missing (a list of pull, push, delete, catalog or \"*\"; [] grants nothing)")
	} else {
		r.Actions = l.actions(v, "actions")
	}

	if v := f["users"][0]; v != nil {
		for _, item := range l.strings(v, "users") {
			if strings.TrimSpace(item.Value) != item.Value || item.Value == "" {
				l.fail(item, "user %q: empty or with surrounding spaces", item.Value)
				continue
			}
			if strings.Contains(item.Value, "=") {
				// It would never match: users are login names.
				l.fail(item, "user %q looks like a DN; users are login names as the directory spells them (put DNs of groups under groups)", item.Value)
				continue
			}
			r.Users = append(r.Users, item.Value)
			r.users[fold(item.Value)] = struct{}{}
		}
	}
	if v := f["groups"][0]; v != nil {
		for _, item := range l.strings(v, "groups") {
			g := strings.TrimSpace(item.Value)
			switch {
			case g == "":
				l.fail(item, "empty group")
				continue
			case strings.Contains(g, "="):
				dn, err := ldap.ParseDN(g)
				if err != nil || len(dn.RDNs) == 0 {
					l.fail(item, "group %q contains '=' but is not a DN: %v", g, err)
					continue
				}
				r.dns = append(r.dns, dnKey(dn))
			default:
				r.cns = append(r.cns, fold(g))
			}
			r.Groups = append(r.Groups, g)
		}
	}
	if v := f["everyone"][0]; v != nil {
		var b bool
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&b) != nil {
			l.fail(v, "everyone must be true or false, got %q", v.Value)
		}
		r.Everyone = b
		if b && (f["users"][0] != nil || f["groups"][0] != nil) {
			l.fail(v, "everyone: true with users or groups: drop one or the other")
		}
	}
	if !r.Everyone && f["users"][0] == nil && f["groups"][0] == nil {
		l.fail(n, "no subjects: give users, groups or everyone: true")
	}
	if len(l.errs) > bad {
		return nil
	}
	return r
}

// actions reads a list of action names.
func (l *loader) actions(n *yaml.Node, what string) Actions {
	var out Actions
	for _, item := range l.strings(n, what) {
		a, ok := ParseAction(item.Value)
		if !ok {
			l.fail(item, "unknown action %q (want pull, push, delete, catalog or \"*\")", item.Value)
			continue
		}
		out |= a
	}
	return out
}

// strings reads a list of scalars; a single scalar is refused so that
// "groups: a, b" is not read as one group named "a, b".
func (l *loader) strings(n *yaml.Node, what string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		l.fail(n, "%s must be a list such as [a, b], got %s", what, kind(n))
		return nil
	}
	var out []*yaml.Node
	for _, item := range n.Content {
		item = deref(item)
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			l.fail(item, "%s: each item must be a string, got %s", what, kind(item))
			continue
		}
		out = append(out, item)
	}
	return out
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func quote(s string) string { return strconv.Quote(s) }
