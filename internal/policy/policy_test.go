package policy

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
	"github.com/toanc/aws-ecr-ldap/internal/regpath"
)

const dig = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// docExample is the example policy of doc.go, read from the comment so that
// the documentation cannot drift from what loads.
func docExample(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(src), "// # The file\n//\n")
	var b strings.Builder
	for _, line := range strings.Split(after, "\n") {
		text, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			break
		}
		b.WriteString(text + "\n")
	}
	if b.Len() < 100 {
		t.Fatalf("no example found in doc.go: %q", b.String())
	}
	return []byte(b.String())
}

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func subject(name string, groups ...string) *Subject {
	return NewSubject(ldapauth.Identity{Name: name, DN: "uid=" + name + ",ou=people,dc=example,dc=org", Groups: groups})
}

const (
	teamADevs = "cn=team-a-devs,ou=groups,dc=example,dc=org"
	readers   = "cn=registry-users,ou=groups,dc=example,dc=org"
)

func TestDocExample(t *testing.T) {
	p, err := Parse("doc.go", docExample(t))
	if err != nil {
		t.Fatalf("the example in doc.go does not load: %v", err)
	}
	if len(p.Rules) != 5 || p.Default != 0 {
		t.Fatalf("got %d rules, default %v; want 5, none", len(p.Rules), p.Default)
	}
	r := p.Rules[2]
	if r.Index != 3 || r.Line != 12 || r.Label != "team-a owns its namespace" || r.Actions != Pull|Push|Delete {
		t.Errorf("rule 3: got index %d line %d label %q actions %v", r.Index, r.Line, r.Label, r.Actions)
	}
	if p.Rules[3].Label != "rule 4" {
		t.Errorf("unnamed rule label: got %q; want %q", p.Rules[3].Label, "rule 4")
	}
}

func TestGrant(t *testing.T) {
	p := mustParse(t, string(docExample(t)))
	alice := subject("alice", "CN=Team-A-Devs, OU=Groups, DC=Example, DC=Org", readers) // DN spelt differently
	bob := subject("bob", "cn=team-a-admins,ou=other,dc=example,dc=org")                // by cn, another branch
	carol := subject("carol", readers)
	ci := subject("CI-Bot", teamADevs) // canonical name in another case
	mallory := subject("mallory", teamADevs, readers)
	dave := subject("dave")
	noGroups := NewSubject(ldapauth.Identity{Name: "erin"})

	tests := []struct {
		s    *Subject
		repo string
		want Actions
		by   string
	}{
		{alice, "team-a/app", Pull | Push | Delete, "team-a owns its namespace"},
		{alice, "team-a", Pull | Push | Delete, "team-a owns its namespace"},
		{alice, "team-a/x/y", Pull | Push | Delete, "team-a owns its namespace"},
		{alice, "team-b/api", Pull | Catalog, "rule 4"},
		{alice, "base", Pull | Catalog, "rule 4"},
		{alice, "team-ab/app", Pull | Catalog, "rule 4"},
		{bob, "team-a/app", Pull | Push | Delete, "team-a owns its namespace"},
		{bob, "team-b/api", 0, "default"},
		{bob, "public/x", Pull, "rule 5"},
		{carol, "team-a/app", Pull | Catalog, "rule 4"},
		{carol, "a/b/c/d", Pull | Catalog, "rule 4"},
		{ci, "team-a/app", Pull | Push, "ci pushes everything"}, // first match: not delete
		{ci, "anything/else", Pull | Push, "ci pushes everything"},
		{mallory, "team-a/app", 0, "quarantine"},
		{mallory, "public/x", 0, "quarantine"},
		{dave, "public/x/y", Pull, "rule 5"},
		{dave, "public", 0, "default"},
		{dave, "team-a/app", 0, "default"},
		{noGroups, "team-a/app", 0, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.s.Name+" "+tt.repo, func(t *testing.T) {
			g := p.Grant(tt.s, tt.repo)
			if g.Actions != tt.want || g.By() != tt.by {
				t.Errorf("got %v by %s; want %v by %s", g.Actions, g.By(), tt.want, tt.by)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	p := mustParse(t, "default: [pull]\nrules:\n  - {repositories: [secret/**], actions: [], everyone: true}\n")
	s := subject("x")
	if g := p.Grant(s, "any"); g.Actions != Pull || g.Rule != nil {
		t.Errorf("got %v by %s; want pull by default", g.Actions, g.By())
	}
	if g := p.Grant(s, "secret/x"); g.Actions != 0 || g.Rule != p.Rules[0] {
		t.Errorf("got %v by %s; want none by rule 1", g.Actions, g.By())
	}
	if p := mustParse(t, "rules: []\n"); p.Grant(s, "any").Actions != 0 {
		t.Errorf("rules: [] granted something")
	}
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		{"**", []string{"a", "a/b", "a/b/c"}, nil},
		{"*", []string{"a", "team-a"}, []string{"a/b"}},
		{"*/**", []string{"a/b", "a/b/c"}, []string{"a"}},
		{"team-a/*", []string{"team-a/app"}, []string{"team-a", "team-a/x/y", "team-b/app"}},
		{"team-a/**", []string{"team-a/app", "team-a/x/y"}, []string{"team-a", "team-ab/x", "x/team-a/y"}},
		{"team-a", []string{"team-a"}, []string{"team-a/x", "team-ab"}},
		{"**/cache", []string{"a/cache", "a/b/cache"}, []string{"cache", "a/cache/x"}},
		{"a/**/z", []string{"a/b/z", "a/b/c/z"}, []string{"a/z", "a/b/y"}},
		{"a/*/z", []string{"a/b/z"}, []string{"a/z", "a/b/c/z"}},
		{"*/*", []string{"a/b"}, []string{"a", "a/b/c"}},
	}
	for _, tt := range tests {
		p, err := compile(tt.pattern)
		if err != nil {
			t.Fatalf("compile(%q): %v", tt.pattern, err)
		}
		for _, r := range tt.match {
			if !p.match(r) {
				t.Errorf("%q does not match %q; want a match", tt.pattern, r)
			}
		}
		for _, r := range tt.noMatch {
			if p.match(r) {
				t.Errorf("%q matches %q; want no match", tt.pattern, r)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // every line of the joined error, in order
	}{
		{"every kind at once", `default: [pull, fetch]
rules:
  - name: one
    repositories: ["team-a/**"]
    actions: [pull, pusj]
    groups: [team-a]
  - repositories: ["Team-B/*", "team-*", "a//b", "**/x/**", ""]
    actions: [pull]
    users: [bob]
  - name: one
    repositories: [x]
    actions: [push]
    user: [carol]
  - repositories: [x]
    actions: pull
    groups: ["cn=a,,dc=x"]
  - repositories: [x]
    actions: [pull]
    everyone: yes please
  - repositories: [x]
    actions: [pull]
    everyone: true
    users: [a]
  - repositories: [x]
    repositories: [y]
    actions: [pull]
    users: [a]
  - repositories: []
    actions: [pull]
    users: [" a"]
  - just a string
`, []string{
			`policy.yaml:1: unknown action "fetch" (want pull, push, delete, catalog or "*")`,
			`policy.yaml:5: rule 1: unknown action "pusj" (want pull, push, delete, catalog or "*")`,
			`policy.yaml:7: rule 2: repository pattern "Team-B/*": repository names are lower case`,
			`policy.yaml:7: rule 2: repository pattern "team-*": "*" and "**" stand for whole components, as in team-a/* (no partial wildcards)`,
			`policy.yaml:7: rule 2: repository pattern "a//b": empty component (leading, trailing or double '/')`,
			`policy.yaml:7: rule 2: repository pattern "**/x/**": at most one "**" per pattern`,
			`policy.yaml:7: rule 2: repository pattern "": empty repository pattern`,
			`policy.yaml:13: rule 3: unknown key "user" in a rule (known: name, repositories, actions, users, groups, everyone)`,
			`policy.yaml:10: rule 3: name "one" already used by rule 1`,
			`policy.yaml:10: rule 3: no subjects: give users, groups or everyone: true`,
			`policy.yaml:15: rule 4: actions must be a list such as [a, b], got "pull"`,
			`policy.yaml:16: rule 4: group "cn=a,,dc=x" contains '=' but is not a DN: `,
			`policy.yaml:19: rule 5: everyone must be true or false, got "yes please"`,
			`policy.yaml:17: rule 5: no subjects: give users, groups or everyone: true`,
			`policy.yaml:22: rule 6: everyone: true with users or groups: drop one or the other`,
			`policy.yaml:25: rule 7: repositories repeated in a rule (first on line 24)`,
			`policy.yaml:28: rule 8: repositories is empty: the rule would never match`,
			`policy.yaml:30: rule 8: user " a": empty or with surrounding spaces`,
			`policy.yaml:31: rule 9: a rule must be a mapping (key: value lines), got "just a string"`,
		}},
		{"user given as a DN", "rules:\n  - repositories: [x]\n    actions: [pull]\n    users: [\"uid=alice,ou=people,dc=example,dc=org\"]\n", []string{
			`policy.yaml:4: rule 1: user "uid=alice,ou=people,dc=example,dc=org" looks like a DN; users are login names as the directory spells them (put DNs of groups under groups)`,
		}},
		{"unknown top-level key", "rules: []\nrule: []\n", []string{`policy.yaml:2: unknown key "rule" in the policy (known: default, rules)`}},
		{"no rules key", "default: [pull]\n", []string{`policy.yaml:1: no rules: key (write rules: [] to grant only the default)`}},
		{"empty", "", []string{`policy.yaml: empty; a policy has at least a rules: key (rules: [] grants only the default)`}},
		{"comment only", "# nothing\n", []string{`policy.yaml: empty; a policy has at least a rules: key (rules: [] grants only the default)`}},
		{"not yaml", "rules: [\n", []string{`policy.yaml: line 1: did not find expected node content`}},
		{"two documents", "rules: []\n---\nrules: []\n", []string{`policy.yaml:2: more than one YAML document`}},
		{"rules not a list", "rules: {a: b}\n", []string{`policy.yaml:1: rules must be a list, got a mapping`}},
		{"missing fields", "rules:\n  - name: x\n", []string{
			`policy.yaml:2: rule 1: repositories missing (a list of patterns such as "team-a/**")`,
			`policy.yaml:2: rule 1: actions missing (a list of pull, push, delete, catalog or "*"; [] grants nothing)`,
			`policy.yaml:2: rule 1: no subjects: give users, groups or everyone: true`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("got a policy with %d rules; want errors", len(p.Rules))
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors; want %d:\n%s", len(got), len(tt.want), err)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d: got %q; want %q", i+1, got[i], tt.want[i])
				}
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Errorf("got %T; want it to hold a *policy.Error", err)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	if _, err := Load(t.TempDir() + "/missing.yaml"); err == nil || !strings.Contains(err.Error(), "missing.yaml: open") {
		t.Errorf("missing file: got %v; want an error naming the file", err)
	}
	path := t.TempDir() + "/p.yaml"
	if err := os.WriteFile(path, []byte("groups: &g [a, b]\nrules:\n  - {repositories: [x], actions: ['*'], groups: *g}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+`:1: unknown key "groups" in the policy`) {
		t.Errorf("got %v; want the unknown key named with the path and line", err)
	}
}

func TestAliases(t *testing.T) {
	p := mustParse(t, "rules:\n  - {repositories: [x], actions: &all ['*'], groups: &g [a, b]}\n  - {repositories: [y], actions: *all, groups: *g}\n")
	if p.Rules[1].Actions != All || len(p.Rules[1].Groups) != 2 {
		t.Errorf("got %v %v; want all actions and two groups", p.Rules[1].Actions, p.Rules[1].Groups)
	}
}

func TestAuthorize(t *testing.T) {
	p := mustParse(t, `rules:
  - name: team-b
    repositories: ["team-b/**"]
    actions: [pull, push]
    groups: [team-b-devs, "cn=team-b-leads,ou=groups,dc=example,dc=org"]
  - repositories: ["team-b/**"]
    actions: ["*"]
    users: [boss]
  - name: readers
    repositories: ["**"]
    actions: [pull]
    groups: [registry-users]
  - repositories: ["**"]
    actions: [pull, push]
    groups: [registry-users, other]
  - repositories: ["ops/**"]
    actions: [catalog]
    groups: [ops]
`)
	alice := subject("alice", readers)
	bob := subject("bob", "cn=team-b-devs,ou=groups,dc=example,dc=org")
	zed := subject("zed")
	req := func(method, uri string) regpath.Request {
		r, err := regpath.Parse(method, uri)
		if err != nil {
			t.Fatalf("Parse(%s %s): %v", method, uri, err)
		}
		return r
	}
	tests := []struct {
		name    string
		s       *Subject
		req     regpath.Request
		allowed bool
		rule    string
		reason  string
	}{
		{"login", zed, req("GET", "/v2/"), true, "login", ""},
		{"pull", alice, req("GET", "/v2/team-b/api/manifests/v1"), true, "readers", ""},
		{"push denied", alice, req("PUT", "/v2/team-b/api/manifests/v1"), false, "readers",
			"alice may pull but not push team-b/api (needs group team-b-devs or group cn=team-b-leads,ou=groups,dc=example,dc=org or user boss)"},
		{"delete denied", bob, req("DELETE", "/v2/team-b/api/manifests/"+dig), false, "team-b",
			`bob may pull and push but not delete team-b/api (rule "team-b" decides first)`},
		{"shadowed", alice, req("PUT", "/v2/other/manifests/v1"), false, "readers",
			`alice may pull but not push other (rule "readers" decides first)`},
		{"nothing at all", zed, req("HEAD", "/v2/x/blobs/"+dig), false, "default",
			"zed may not pull x (needs group registry-users or group other)"},
		{"no rule grants", bob, req("DELETE", "/v2/x/manifests/v1"), false, "default",
			"bob may not delete x (no rule grants delete on x)"},
		{"mount allowed", bob, req("POST", "/v2/team-b/app/blobs/uploads/?mount="+dig+"&from=team-b/base"), true, "team-b", ""},
		{"mount from denied", bob, req("POST", "/v2/team-b/app/blobs/uploads/?mount="+dig+"&from=team-c%2Fbase"), false, "default",
			"bob may not pull team-c/base to mount a blob from it into team-b/app (needs group registry-users or group other)"},
		{"mount target denied", alice, req("POST", "/v2/team-b/app/blobs/uploads/?mount="+dig+"&from=team-b/base"), false, "readers",
			"alice may pull but not push team-b/app (needs group team-b-devs or group cn=team-b-leads,ou=groups,dc=example,dc=org or user boss)"},
		{"catalog by first rule", alice, req("GET", "/v2/_catalog"), false, "readers", "alice may not list the catalog (needs user boss)"},
		{"catalog", subject("o", "cn=ops,dc=x"), req("GET", "/v2/_catalog"), true, "rule 5", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := p.Authorize(tt.s, tt.req)
			if v.Allowed != tt.allowed || v.Rule != tt.rule || v.Reason != tt.reason {
				t.Errorf("got %+v;\nwant {Allowed:%v Rule:%s Reason:%s}", v, tt.allowed, tt.rule, tt.reason)
			}
		})
	}
}

func TestNeedsIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for _, g := range []string{"a", "b", "c", "d", "e", "f"} {
		b.WriteString("  - {repositories: [x], actions: [push], groups: [" + g + "]}\n")
	}
	p := mustParse(t, b.String())
	v := p.Authorize(subject("z"), regpath.Request{Action: regpath.ActionPush, Repository: "x"})
	if want := "z may not push x (needs group a or group b or group c or group d or …)"; v.Reason != want {
		t.Errorf("got %q; want %q", v.Reason, want)
	}
}

func TestSubjectFolding(t *testing.T) {
	p := mustParse(t, `rules:
  - {repositories: [a], actions: [pull], users: [JÜRGEN]}
  - {repositories: [b], actions: [pull], groups: ["CN=Ops\\, Registry,OU=Groups,DC=corp"]}
  - {repositories: [c], actions: [pull], groups: ["ops, registry"]}
  - {repositories: [d], actions: [pull], groups: ["cn=x+uid=y,dc=corp"]}
`)
	s := subject("jürgen", `cn=ops\, registry,ou=groups,dc=corp`, "uid=y+cn=x,dc=corp", "not a dn")
	for _, repo := range []string{"a", "b", "c", "d"} {
		if g := p.Grant(s, repo); g.Actions != Pull {
			t.Errorf("%s: got %v by %s; want pull", repo, g.Actions, g.By())
		}
	}
	if g := p.Grant(subject("jurgen"), "a"); g.Actions != 0 {
		t.Errorf("jurgen matched JÜRGEN")
	}
}

func BenchmarkAuthorize(b *testing.B) {
	p, err := Parse("p", []byte(`rules:
  - {repositories: ["**"], actions: [], users: [mallory]}
  - {repositories: ["team-a", "team-a/**"], actions: ["*"], groups: ["cn=team-a-devs,ou=groups,dc=example,dc=org"]}
  - {repositories: ["team-b/**"], actions: [pull, push], groups: [team-b-devs]}
  - {repositories: ["*", "*/**"], actions: [pull], groups: [registry-users]}
`))
	if err != nil {
		b.Fatal(err)
	}
	groups := []string{readers}
	for i := range 60 {
		groups = append(groups, "cn=g"+string(rune('a'+i%26))+string(rune('a'+i/26))+",ou=groups,dc=example,dc=org")
	}
	s := subject("alice", groups...)
	req := regpath.Request{Action: regpath.ActionPull, Repository: "team-c/app"}
	b.ReportAllocs()
	for b.Loop() {
		if !p.Authorize(s, req).Allowed {
			b.Fatal("denied")
		}
	}
}

func TestFold(t *testing.T) {
	words := []string{"a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "ü", "Ü", "ß", "ẞ", "jürgen", "JÜRGEN", "Ops, Registry", "σ", "Σ", "ς"}
	for _, a := range words {
		for _, b := range words {
			if got, want := fold(a) == fold(b), strings.EqualFold(a, b); got != want {
				t.Errorf("fold(%q) == fold(%q): got %v; want %v (strings.EqualFold)", a, b, got, want)
			}
		}
	}
}
