package authsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
	"github.com/toanc/aws-ecr-ldap/internal/policy"
	"github.com/toanc/aws-ecr-ldap/internal/slapd"
)

const (
	testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	teamBDevs  = "cn=team-b-devs,ou=groups,dc=example,dc=org"
	readersDN  = "cn=registry-users,ou=groups,dc=example,dc=org"

	testPolicy = `rules:
  - name: team-b
    repositories: ["team-b", "team-b/**"]
    actions: [pull, push]
    groups: [team-b-devs]
  - repositories: ["team-a/**"]
    actions: ["*"]
    groups: ["cn=team-a-devs,ou=groups,dc=example,dc=org"]
  - name: readers
    repositories: ["*", "team-b/**", "team-a/**"]
    actions: [pull]
    groups: [registry-users]
`
)

func mustPolicy(t testing.TB, src string) *policy.Store {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return policy.NewStore(p)
}

// policyAuth knows alice (a reader), bob (team-b), a user whose name needs
// escaping, and carol (outside the required group).
func policyAuth() *fakeAuth {
	return &fakeAuth{answers: map[string]fakeAnswer{
		"alice:alice-pw": {id: ldapauth.Identity{Name: "alice", DN: "uid=alice,dc=x", Groups: []string{readersDN}}},
		"bob:bob-pw":     {id: ldapauth.Identity{Name: "bob", DN: "uid=bob,dc=x", Groups: []string{teamBDevs, readersDN}}},
		"q:q-pw":         {id: ldapauth.Identity{Name: `Zoë "Q" \ x`, DN: "uid=q,dc=x"}},
		"carol:carol-pw": {err: fmt.Errorf("%w: not in group", ldapauth.ErrForbidden)},
	}}
}

type authCall struct {
	userpass, method, uri string
}

func doAuth(h http.Handler, c authCall) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/auth", nil)
	req.Header.Set("Authorization", basic(c.userpass))
	req.Header.Set("X-Real-IP", "192.0.2.9")
	req.Header.Set("X-Original-Method", c.method)
	req.Header.Set("X-Original-URI", c.uri)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPolicyHandler(t *testing.T) {
	mount := func(from string) string {
		return "/v2/team-b/app/blobs/uploads/?mount=" + testDigest + "&from=" + from
	}
	tests := []struct {
		name       string
		call       authCall
		wantStatus int
		wantReason string // X-Auth-Reason, exactly
		wantLog    map[string]any
	}{
		{"login needs no rule", authCall{"q:q-pw", "GET", "/v2/"}, 204, "",
			map[string]any{"action": "login", "rule": "login", "user": `Zoë "Q" \ x`}},
		{"pull allowed", authCall{"alice:alice-pw", "GET", "/v2/team-b/api/manifests/v1"}, 204, "",
			map[string]any{"action": "pull", "repository": "team-b/api", "reference": "v1", "rule": "readers", "decision": "allow"}},
		{"push denied", authCall{"alice:alice-pw", "PUT", "/v2/team-b/api/manifests/v1"}, 403,
			"alice may pull but not push team-b/api (needs group team-b-devs)",
			map[string]any{"action": "push", "repository": "team-b/api", "reference": "v1", "rule": "readers", "decision": "deny_403",
				"reason": "alice may pull but not push team-b/api (needs group team-b-devs)"}},
		{"push allowed", authCall{"bob:bob-pw", "PUT", "/v2/team-b/api/manifests/v1"}, 204, "",
			map[string]any{"rule": "team-b"}},
		{"delete denied", authCall{"bob:bob-pw", "DELETE", "/v2/team-b/api/manifests/" + testDigest}, 403,
			"bob may pull and push but not delete team-b/api (no rule grants delete on team-b/api)",
			map[string]any{"action": "delete", "reference": testDigest}},
		{"mount allowed", authCall{"bob:bob-pw", "POST", mount("team-b%2Fbase")}, 204, "",
			map[string]any{"mount_from": "team-b/base", "reference": testDigest, "repository": "team-b/app"}},
		{"mount from unpullable", authCall{"bob:bob-pw", "POST", mount("team-c%2Fbase")}, 403,
			"bob may not pull team-c/base to mount a blob from it into team-b/app (no rule grants pull on team-c/base)",
			map[string]any{"mount_from": "team-c/base", "rule": "default"}},
		{"mount into unpushable", authCall{"alice:alice-pw", "POST", mount("team-b/base")}, 403,
			"alice may pull but not push team-b/app (needs group team-b-devs)", nil},
		{"no rule", authCall{"q:q-pw", "HEAD", "/v2/x/blobs/" + testDigest}, 403,
			`Zo\u00eb \"Q\" \\ x may not pull x (needs group registry-users)`, nil},
		{"encoded slash", authCall{"bob:bob-pw", "GET", "/v2/team-a%2fapp/manifests/x"}, 403, "unsupported registry request",
			map[string]any{"decision": "deny_403", "uri": "/v2/team-a%2fapp/manifests/x"}},
		{"dot dot", authCall{"bob:bob-pw", "GET", "/v2/team-b/../team-a/app/manifests/x"}, 403, "unsupported registry request", nil},
		{"double slash", authCall{"bob:bob-pw", "GET", "/v2/team-b//app/manifests/x"}, 403, "unsupported registry request", nil},
		{"unknown route", authCall{"bob:bob-pw", "GET", "/v2/team-b/app/other"}, 403, "unsupported registry request", nil},
		{"catalog by the first rule", authCall{"bob:bob-pw", "GET", "/v2/_catalog"}, 403,
			`bob may not list the catalog (rule \"team-b\" decides first)`, nil},
		{"wrong password: no reason", authCall{"alice:nope", "PUT", "/v2/team-b/api/manifests/v1"}, 401, "", nil},
		{"required group", authCall{"carol:carol-pw", "GET", "/v2/"}, 403,
			"carol is not in a group allowed to use this registry", map[string]any{"rule": "required-group"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			h := NewHandlerWith(policyAuth(), Options{Realm: testRealm, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
				Policy: mustPolicy(t, testPolicy), CacheTTL: time.Minute, CacheSize: 10})
			rec := doAuth(h, tt.call)
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d; want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get(ReasonHeader); got != tt.wantReason {
				t.Errorf("%s:\n got %s\nwant %s", ReasonHeader, got, tt.wantReason)
			}
			// A 403 names the user too (the password is proven), for nginx's
			// access log; a 401 never does.
			if tt.wantStatus == 401 && rec.Header().Get(UserHeader) != "" {
				t.Errorf("%s on %d: got %q; want none", UserHeader, rec.Code, rec.Header().Get(UserHeader))
			}
			lines := logs.lines(t)
			if len(lines) != 1 {
				t.Fatalf("log lines: got %d; want 1:\n%s", len(lines), logs)
			}
			for k, want := range tt.wantLog {
				if got := lines[0][k]; got != want {
					t.Errorf("log %s: got %v; want %v", k, got, want)
				}
			}
			_, password, _ := strings.Cut(tt.call.userpass, ":")
			if strings.Contains(logs.String(), password) || strings.Contains(logs.String(), basic(tt.call.userpass)[6:]) {
				t.Errorf("log line contains the credentials: %s", logs)
			}
		})
	}
}

// TestPolicyEveryRequest: the identity is cached, the policy is not; a
// policy swapped in applies to the next request of a cached login.
func TestPolicyEveryRequest(t *testing.T) {
	auth := policyAuth()
	store := mustPolicy(t, testPolicy)
	h := NewHandlerWith(auth, Options{Realm: testRealm, Policy: store, CacheTTL: time.Minute, CacheSize: 10})
	pull := authCall{"alice:alice-pw", "GET", "/v2/team-b/api/manifests/v1"}
	push := authCall{"alice:alice-pw", "PUT", "/v2/team-b/api/manifests/v1"}
	for i, c := range []struct {
		call authCall
		want int
	}{{pull, 204}, {push, 403}, {pull, 204}} {
		if got := doAuth(h, c.call).Code; got != c.want {
			t.Errorf("request %d: got %d; want %d", i+1, got, c.want)
		}
	}
	p, err := policy.Parse("new.yaml", []byte("rules:\n  - {repositories: [\"**\"], actions: [push], groups: [registry-users]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	store.Set(p)
	if got := doAuth(h, push).Code; got != 204 {
		t.Errorf("push after the new policy: got %d; want 204", got)
	}
	if got := doAuth(h, pull).Code; got != 403 {
		t.Errorf("pull after the new policy: got %d; want 403", got)
	}
	if len(auth.calls) != 1 {
		t.Errorf("authenticator calls: got %d; want 1 (the rest from the cache)", len(auth.calls))
	}
}

// TestNoPolicyUnchanged: without a policy, any path and method of a valid
// user is allowed, as before, and the audit fields appear when they parse.
func TestNoPolicyUnchanged(t *testing.T) {
	logs := &logBuffer{}
	h := NewHandlerWith(policyAuth(), Options{Realm: testRealm, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	for _, c := range []authCall{
		{"alice:alice-pw", "DELETE", "/v2/team-b/api/manifests/v1"},
		{"alice:alice-pw", "GET", "/v2/team-a%2fapp/manifests/x"},
	} {
		if rec := doAuth(h, c); rec.Code != 204 || rec.Header().Get(ReasonHeader) != "" {
			t.Errorf("%s %s: got %d %q; want 204 without a reason", c.method, c.uri, rec.Code, rec.Header().Get(ReasonHeader))
		}
	}
	lines := logs.lines(t)
	if lines[0]["action"] != "delete" || lines[0]["repository"] != "team-b/api" || lines[0]["rule"] != nil {
		t.Errorf("first line: got %v; want action delete, repository team-b/api, no rule", lines[0])
	}
	if _, ok := lines[1]["action"]; ok {
		t.Errorf("second line: got action %v; want none for a path that does not parse", lines[1]["action"])
	}
}

func TestReasonValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice may not push x (needs group a)", "alice may not push x (needs group a)"},
		{`say "hi" \ bye`, `say \"hi\" \\ bye`},
		{"line\nbreak\r\ttab\x00nul\x7f", "linebreaktabnul"},
		{"jürgen…", `j\u00fcrgen\u2026`},
		{"emoji 😀", `emoji \ud83d\ude00`},
		{"bad \xff byte", `bad \ufffd byte`},
		{"sep\u2028x\u0085y", "sepxy"},
	}
	for _, tt := range tests {
		got := reasonValue(tt.in)
		if got != tt.want {
			t.Errorf("reasonValue(%q): got %s; want %s", tt.in, got, tt.want)
		}
		var back string
		if err := json.Unmarshal([]byte(`"`+got+`"`), &back); err != nil {
			t.Errorf("reasonValue(%q) = %s is not a JSON string body: %v", tt.in, got, err)
		}
	}
	long := reasonValue(strings.Repeat(`"`, 2000))
	if len(long) > maxReasonBytes || !strings.HasSuffix(long, `\"\u2026`) {
		t.Errorf("long reason: got %d bytes ending %q; want at most %d ending in an ellipsis", len(long), long[len(long)-12:], maxReasonBytes)
	}
	for i := 0; i < 200; i++ { // every byte value, alone and in context
		s := "a" + string(rune(i)) + string([]byte{byte(i)}) + "b"
		var back string
		if err := json.Unmarshal([]byte(`"`+reasonValue(s)+`"`), &back); err != nil {
			t.Errorf("reasonValue(%q) is not a JSON string body: %v", s, err)
		}
	}
}

// TestPolicyReloadUnderLoad: requests keep being answered, each by the old or
// the new policy and never otherwise, while SIGHUP and file changes reload it;
// a broken file keeps the last good policy. Run with -race.
func TestPolicyReloadUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	pullOnly := "rules:\n  - {repositories: [\"**\"], actions: [pull], groups: [registry-users]}\n"
	pushToo := "rules:\n  - {repositories: [\"**\"], actions: [pull, push], groups: [registry-users]}\n"
	write := func(content string, age time.Duration) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		mod := time.Now().Add(-age).Round(time.Second)
		if err := os.Chtimes(tmp, mod, mod); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(pullOnly, time.Hour)
	reg := prometheus.NewRegistry()
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	pr, err := openPolicy(PolicyConfig{File: path, Poll: 10 * time.Millisecond}, reg, logger, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pr.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	h := NewHandlerWith(policyAuth(), Options{Realm: testRealm, Policy: pr.w.Store, CacheTTL: time.Minute, CacheSize: 10})
	gauge := func() float64 { return gaugeOf(t, reg, "authsvc_policy_reload_success") }
	if gauge() != 1 {
		t.Fatalf("reload_success at start: got %v; want 1", gauge())
	}

	push := authCall{"alice:alice-pw", "PUT", "/v2/x/manifests/v1"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code := doAuth(h, push).Code
				mu.Lock()
				counts[code]++
				mu.Unlock()
			}
		}()
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	pushes := func() int { return doAuth(h, push).Code }

	write(pushToo, 50*time.Minute)
	wait("the changed file", func() bool { return pushes() == 204 })
	write("rules:\n  - {repositories: [\"**\"], actions: [pusj], everyone: true}\n", 40*time.Minute)
	wait("the broken file to be refused", func() bool { return gauge() == 0 })
	if pushes() != 204 {
		t.Errorf("after a broken file: got %d; want 204 from the last good policy", pushes())
	}
	if !strings.Contains(logs.String(), `unknown action \"pusj\"`) {
		t.Errorf("the broken file's problem is not logged:\n%s", logs)
	}

	// SIGHUP: a file replaced by one of the same size and modification time
	// is not seen by polling, only on the signal.
	write(pullOnly, 30*time.Minute)
	wait("the fixed file", func() bool { return gauge() == 1 && pushes() == 403 })
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	pushOnly := strings.Replace(pullOnly, "[pull]", "[push]", 1)
	write(pushOnly, time.Since(fi.ModTime()))
	if fi2, err := os.Stat(path); err != nil || fi2.Size() != fi.Size() || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("the replacement changed size or mtime: %v", err)
	}
	time.Sleep(60 * time.Millisecond) // several polls
	if pushes() != 403 {
		t.Fatal("polling saw a file with the same size and mtime; the SIGHUP test proves nothing")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait("the SIGHUP reload", func() bool { return pushes() == 204 })

	close(stop)
	wg.Wait()
	for code, n := range counts {
		if code != 204 && code != 403 {
			t.Errorf("%d requests answered %d; want only 204 and 403", n, code)
		}
	}
	if counts[204] == 0 || counts[403] == 0 {
		t.Errorf("answers during the reloads: got %v; want both 204 and 403", counts)
	}
}

func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestPolicyConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	usersOnly := filepath.Join(dir, "users.yaml")
	for p, s := range map[string]string{
		good:      testPolicy,
		bad:       "rules:\n  - repositories: [x]\n    actions: [pusj]\n    users: [a]\n  - {repositories: [Y], actions: [pull], users: [a]}\n",
		usersOnly: "rules:\n  - {repositories: [x], actions: [pull], users: [a]}\n",
	} {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		vars map[string]string
		want []string // problems; none = valid
	}{
		{"no policy", nil, nil},
		{"good with groups resolved", map[string]string{"AUTH_POLICY_FILE": good, "LDAP_REQUIRE_GROUP": readersDN}, nil},
		{"good with a group base", map[string]string{"AUTH_POLICY_FILE": good, "LDAP_GROUP_BASE": "ou=groups,dc=x"}, nil},
		{"users only need no groups", map[string]string{"AUTH_POLICY_FILE": usersOnly}, nil},
		{"groups not resolved", map[string]string{"AUTH_POLICY_FILE": good},
			[]string{"AUTH_POLICY_FILE: " + good + ": rules name groups, but the directory resolves no groups"}},
		{"broken", map[string]string{"AUTH_POLICY_FILE": bad, "AUTH_POLICY_POLL": "soon"}, []string{
			"AUTH_POLICY_POLL: not a duration",
			"AUTH_POLICY_FILE: " + bad + `:3: rule 1: unknown action "pusj"`,
			"AUTH_POLICY_FILE: " + bad + `:5: rule 2: repository pattern "Y": repository names are lower case`,
		}},
		{"missing", map[string]string{"AUTH_POLICY_FILE": filepath.Join(dir, "none.yaml")},
			[]string{"AUTH_POLICY_FILE: " + filepath.Join(dir, "none.yaml") + ": open"}},
		{"negative poll", map[string]string{"AUTH_POLICY_FILE": usersOnly, "AUTH_POLICY_POLL": "-1s"},
			[]string{"AUTH_POLICY_POLL: must be 0 (SIGHUP only) or positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"LDAP_URL": goodURL, "AUTH_POLICY_FILE": "", "AUTH_POLICY_POLL": "", "LDAP_GROUP_BASE": ""}
			for k, v := range tt.vars {
				vars[k] = v
			}
			setEnv(t, vars)
			cfg, err := LoadConfig()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems; want %d:\n%v", len(got), len(tt.want), err)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d: got %q; want %q", i+1, got[i], tt.want[i])
				}
			}
			if err == nil && tt.vars["AUTH_POLICY_FILE"] != "" && (cfg.Policy.Loaded() == nil || cfg.Policy.Poll != 5*time.Second && tt.vars["AUTH_POLICY_POLL"] == "") {
				t.Errorf("policy config: got %+v; want the file loaded and a 5s poll", cfg.Policy)
			}
		})
	}
}

func TestShowPolicy(t *testing.T) {
	p, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	showPolicy(&out, p, policy.NewSubject(ldapauth.Identity{Name: "bob", Groups: []string{teamBDevs, readersDN}}), "team-b/api")
	t.Log("\n" + out.String())
	for _, want := range []string{
		"policy for bob (first matching rule wins):",
		`rule 1 "team-b":`, "line 2", "pull, push on team-b, team-b/**",
		`rule 3 "readers":`, "pull on *, team-b/**, team-a/**",
		"default:", "none on every other repository",
		"catalog: denied by team-b",
		"decisions on team-b/api:",
		"pull:   allowed by team-b",
		"push:   allowed by team-b",
		"delete: denied by team-b: bob may pull and push but not delete team-b/api (no rule grants delete on team-b/api)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "rule 2") {
		t.Errorf("output lists rule 2, which does not include bob")
	}
}

// BenchmarkWarmCacheWithPolicy is BenchmarkWarmCache with a policy of
// several rules evaluated on every request: a user in 61 groups whose pull is
// allowed by the last rule, after the request is parsed.
func BenchmarkWarmCacheWithPolicy(b *testing.B) {
	groups := []string{readersDN}
	for i := range 60 {
		groups = append(groups, fmt.Sprintf("cn=group-%d,ou=groups,dc=example,dc=org", i))
	}
	auth := authFuncID(func(user string) (ldapauth.Identity, error) {
		return ldapauth.Identity{Name: user, Groups: groups}, nil
	})
	json := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, quiet := range []bool{false, true} {
		name := "json-log"
		if quiet {
			name = "quiet-hits"
		}
		b.Run(name, func(b *testing.B) {
			h := NewHandlerWith(auth, Options{
				Realm: testRealm, Logger: json, Metrics: NewMetrics(prometheus.NewRegistry()),
				CacheTTL: time.Hour, CacheSize: 10000, Limits: Limits{PerUserAddr: 10, PerUser: 30, PerAddr: 50, Window: 5 * time.Minute},
				QuietHits: quiet, Policy: mustPolicy(b, testPolicy),
			})
			req := authRequest()
			req.Header.Set("X-Original-URI", "/v2/team-a/app/blobs/"+testDigest)
			w := &benchWriter{h: http.Header{}}
			h.ServeHTTP(w, req) // warm the cache
			if w.code != 204 {
				b.Fatalf("warm-up: got %d; want 204", w.code)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &benchWriter{h: http.Header{}}
				for pb.Next() {
					w.reset()
					h.ServeHTTP(w, req)
					if w.code != 204 {
						b.Errorf("status: got %d; want 204", w.code)
						return
					}
				}
			})
		})
	}
}

type authFuncID func(user string) (ldapauth.Identity, error)

func (f authFuncID) Authenticate(_ context.Context, user, _ string) (ldapauth.Identity, error) {
	return f(user)
}

// TestCheckWithPolicy runs `authsvc check -repo` against slapd: alice is in
// cn=ops\, registry and cn=registry-users.
func TestCheckWithPolicy(t *testing.T) {
	srv := startSlapd(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	src := `rules:
  - name: ops
    repositories: ["ops/**"]
    actions: ["*"]
    groups: ["ops, registry"]
  - repositories: ["**"]
    actions: [pull]
    groups: ["` + slapd.GroupRegistryUsers + `"]
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sampleConfig(srv)
	cfg.Policy = PolicyConfig{File: path, Poll: time.Second, loaded: p}
	var out strings.Builder
	err = Check(context.Background(), cfg, CheckOptions{Username: "alice", Repository: "ops/app"}, &out, slog.New(slog.DiscardHandler))
	t.Log("\n" + out.String())
	if err != nil {
		t.Errorf("Check: %v", err)
	}
	for _, want := range []string{
		"policy " + path + ": ok (2 rules, default: none)",
		`rule 1 "ops":`, "pull, push, delete, catalog on ops/**",
		"rule 2:", "pull on **",
		"decisions on ops/app:", "delete: allowed by ops",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	out.Reset()
	_ = Check(context.Background(), cfg, CheckOptions{Username: "alice", Repository: "team-a/app"}, &out, slog.New(slog.DiscardHandler))
	if want := "push:   denied by rule 2: alice may pull but not push team-a/app (no rule grants push on team-a/app)"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}

// TestPolicyDuringGrace: an identity allowed from the grace cache is still
// judged by the policy, and a denial is logged as a denial.
func TestPolicyDuringGrace(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}}
	s := newTestService(auth, Options{CacheTTL: time.Minute, CacheSize: 10, GracePeriod: time.Hour,
		Policy: mustPolicy(t, "rules:\n  - {repositories: [\"**\"], actions: [pull], users: [BOB]}\n")})
	pull := authCall{"bob:pw", "GET", "/v2/x/manifests/v1"}
	push := authCall{"bob:pw", "PUT", "/v2/x/manifests/v1"}
	if got := doAuth(s.h, pull).Code; got != 204 {
		t.Fatalf("pull with LDAP up: got %d; want 204", got)
	}
	s.clock.Advance(30 * time.Minute)
	auth.setDown(true)
	if got := doAuth(s.h, pull).Code; got != 204 {
		t.Errorf("pull from the grace cache: got %d; want 204", got)
	}
	rec := doAuth(s.h, push)
	if want := "bob may pull but not push x (no rule grants push on x)"; rec.Code != 403 || rec.Header().Get(ReasonHeader) != want {
		t.Errorf("push from the grace cache: got %d %q; want 403 %q", rec.Code, rec.Header().Get(ReasonHeader), want)
	}
	lines := s.logs.lines(t)
	last := lines[len(lines)-1]
	if last["msg"] != "auth decision" || last["decision"] != "deny_403" || last["cache"] != "grace" || last["reason"] != "bob may pull but not push x (no rule grants push on x)" {
		t.Errorf("log of the denial: got %v", last)
	}
}
