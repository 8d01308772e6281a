package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/slapd"
)

const challenge = `Basic realm="e2e registry", charset="UTF-8"`

func user(t *testing.T, name string) slapd.User {
	t.Helper()
	u, ok := slapd.UserByName(name)
	if !ok {
		t.Fatalf("no sample user %q", name)
	}
	return u
}

// G4: docker login must really check the password, so /v2/ without
// credentials is a challenge, not a 200.
func TestNoCredentialsGetsBasicChallenge(t *testing.T) {
	a := e.do(t, http.MethodGet, "/v2/", "")
	if a.status != http.StatusUnauthorized {
		t.Fatalf("GET /v2/ without credentials: got %d; want 401", a.status)
	}
	if got := a.header.Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate: got %q; want %q", got, challenge)
	}
	if got := a.header.Values("Docker-Distribution-Api-Version"); len(got) != 1 || got[0] != "registry/2.0" {
		t.Errorf("Docker-Distribution-Api-Version: got %q; want exactly one registry/2.0", got)
	}
	assertRegistryError(t, a, "UNAUTHORIZED")
}

// assertRegistryError checks that an answer is in the registry's JSON error
// format, which docker prints, with the given code.
func assertRegistryError(t *testing.T, a answer, code string) {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q; want application/json", ct)
	}
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != code || body.Errors[0].Message == "" {
		t.Errorf("body: got %q (%v); want {\"errors\":[{\"code\":%q,\"message\":...}]}", a.body, err, code)
	}
}

func TestLoginValidUser(t *testing.T) {
	alice := user(t, "alice")
	a := e.do(t, http.MethodGet, "/v2/", basic(alice.Name, alice.Password))
	if a.status != http.StatusOK {
		t.Fatalf("GET /v2/ as alice: got %d %q; want 200", a.status, a.body)
	}
	if got := a.header.Values("Docker-Distribution-Api-Version"); len(got) != 1 || got[0] != "registry/2.0" {
		t.Errorf("Docker-Distribution-Api-Version: got %q; want exactly one registry/2.0", got)
	}
	assertNoForeignCredentials(t)
}

// A4, A5, A6: passwords with ':', filter metacharacters and UTF-8 pass
// byte for byte; UTF-8 names and DNs work.
func TestUnusualButValidCredentials(t *testing.T) {
	for _, name := range []string{"bob", "dave", "jürgen"} {
		t.Run(name, func(t *testing.T) {
			u := user(t, name)
			if a := e.do(t, http.MethodGet, "/v2/", basic(u.Name, u.Password)); a.status != http.StatusOK {
				t.Errorf("GET /v2/ as %s: got %d; want 200", name, a.status)
			}
		})
	}
}

// A8, A1, A2, A10, A7: every kind of bad credential is a 401 with the
// challenge, never a 500.
func TestBadCredentialsAre401(t *testing.T) {
	bob := user(t, "bob")
	twin := user(t, "twin")
	cases := []struct{ name, authorization string }{
		{"wrong password", basic("alice", "not-her-password")},
		{"unknown user", basic("mallory", "whatever")},
		{"filter injection", basic("bob)(uid=*", bob.Password)},
		{"filter injection 2", basic("x))((cn=bob", bob.Password)},
		{"wildcard user", basic("*", bob.Password)},
		{"prefix wildcard", basic("al*", "alice-secret")},
		{"two entries", basic(twin.Name, twin.Password)},
		{"broken base64", "Basic !!!not-base64!!!"},
		{"no colon", "Basic YWxpY2U="},
		{"bearer", "Bearer abc.def.ghi"},
		{"digest", `Digest username="alice"`},
		{"20 KB header", basic("alice", strings.Repeat("x", 20<<10))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.do(t, http.MethodGet, "/v2/", c.authorization)
			if a.status != http.StatusUnauthorized {
				t.Fatalf("got %d; want 401", a.status)
			}
			if got := a.header.Get("WWW-Authenticate"); got != challenge {
				t.Errorf("WWW-Authenticate: got %q; want %q", got, challenge)
			}
			assertRegistryError(t, a, "UNAUTHORIZED")
		})
	}
	assertNoForeignCredentials(t)
}

// A3: an empty password never reaches LDAP (many servers treat it as an
// anonymous bind that succeeds).
func TestEmptyPasswordNeverBinds(t *testing.T) {
	before := e.ldap.BindCount()
	a := e.do(t, http.MethodGet, "/v2/", basic("alice", ""))
	if a.status != http.StatusUnauthorized {
		t.Fatalf("got %d; want 401", a.status)
	}
	if after := e.ldap.BindCount(); after != before {
		t.Errorf("LDAP binds: got %d more; want 0", after-before)
	}
}

// A11: a valid user outside LDAP_REQUIRE_GROUP is forbidden, not unauthorized.
func TestUserOutsideRequiredGroupIs403(t *testing.T) {
	carol := user(t, "carol")
	a := e.do(t, http.MethodGet, "/v2/", basic(carol.Name, carol.Password))
	if a.status != http.StatusForbidden {
		t.Fatalf("GET /v2/ as carol: got %d; want 403", a.status)
	}
	assertRegistryError(t, a, "DENIED")
}

// A9: LDAP down is a server error, never a 401 that looks like a wrong
// password; and it recovers without a restart. Credentials that are not in
// authsvc's cache (a wrong password, a 403 user) need LDAP for an answer.
func TestLDAPOutageIs5xxAndRecovers(t *testing.T) {
	carol := user(t, "carol")
	wrong := basic("alice", "not-her-password-during-outage")
	if err := e.ldap.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = e.ldap.Start(t.Context())
		}
	}()
	for name, authz := range map[string]string{"wrong password": wrong, "carol": basic(carol.Name, carol.Password)} {
		a := e.do(t, http.MethodGet, "/v2/", authz)
		if a.status < 500 {
			t.Errorf("%s with LDAP stopped: got %d; want 5xx", name, a.status)
		}
		assertRegistryError(t, a, "UNAVAILABLE")
	}
	if err := e.ldap.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	if a := e.do(t, http.MethodGet, "/v2/", wrong); a.status != http.StatusUnauthorized {
		t.Errorf("wrong password after LDAP came back: got %d; want 401", a.status)
	}
	if a := e.do(t, http.MethodGet, "/v2/", basic(carol.Name, carol.Password)); a.status != http.StatusForbidden {
		t.Errorf("carol after LDAP came back: got %d; want 403", a.status)
	}
}

// G11: liveness touches neither LDAP nor ECR.
func TestHealthzWithoutBackends(t *testing.T) {
	if err := e.ldap.Stop(); err != nil {
		t.Fatal(err)
	}
	defer e.ldap.Start(t.Context())
	a := e.do(t, http.MethodGet, "/healthz", "")
	if a.status != http.StatusOK {
		t.Errorf("GET /healthz with LDAP down: got %d; want 200", a.status)
	}
}
