package authsvc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

const testRealm = "aws-ecr-ldap"

var wantChallenge = `Basic realm="aws-ecr-ldap", charset="UTF-8"`

// fakeAuth answers from a table keyed by user:password and records its calls.
type fakeAuth struct {
	mu      sync.Mutex
	answers map[string]fakeAnswer
	calls   []string // user:password as received
}

type fakeAnswer struct {
	id  ldapauth.Identity
	err error
}

func (f *fakeAuth) Authenticate(_ context.Context, user, password string) (ldapauth.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, user+":"+password)
	a, ok := f.answers[user+":"+password]
	if !ok {
		return ldapauth.Identity{}, fmt.Errorf("%w: wrong password", ldapauth.ErrInvalidCredentials)
	}
	return a.id, a.err
}

var _ Authenticator = (*fakeAuth)(nil)

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func newTestHandler(auth Authenticator) (http.Handler, *logBuffer) {
	logs := &logBuffer{}
	return NewHandler(auth, testRealm, slog.New(slog.NewJSONHandler(logs, nil))), logs
}

func TestAuthHandler(t *testing.T) {
	fake := &fakeAuth{answers: map[string]fakeAnswer{
		"bob:p@ss:wörd":  {id: ldapauth.Identity{DN: "uid=bob,dc=x", Name: "bob"}},
		"BOB:p@ss:wörd":  {id: ldapauth.Identity{DN: "uid=bob,dc=x", Name: "bob"}},
		"carol:carol-pw": {err: fmt.Errorf("%w: not in group", ldapauth.ErrForbidden)},
		"alice:down":     {err: fmt.Errorf("%w: dial: connection refused", ldapauth.ErrUnavailable)},
		"alice:weird":    {err: errors.New("something unexpected")},
		"jürgen:grüße-7": {id: ldapauth.Identity{DN: "uid=jürgen,dc=x", Name: "jürgen"}},
		"both:pw-both":   {err: fmt.Errorf("%w: %w", ldapauth.ErrUnavailable, ldapauth.ErrInvalidCredentials)},
	}}
	tests := []struct {
		name       string
		headers    []string // Authorization values
		wantStatus int
		wantUser   string // X-Auth-Request-User on 204
		wantCall   string // what the authenticator must have received; "" = not called
		wantReason string
	}{
		{"success", []string{basic("bob:p@ss:wörd")}, 204, "bob", "bob:p@ss:wörd", ""},
		{"canonical name returned", []string{basic("BOB:p@ss:wörd")}, 204, "bob", "BOB:p@ss:wörd", ""},
		{"UTF-8 name", []string{basic("jürgen:grüße-7")}, 204, "jürgen", "jürgen:grüße-7", ""},
		{"A8 wrong password", []string{basic("bob:nope")}, 401, "", "bob:nope", "wrong password"},
		{"A3 empty password reaches the authenticator", []string{basic("bob:")}, 401, "", "bob:", ""},
		{"A11 forbidden", []string{basic("carol:carol-pw")}, 403, "carol", "carol:carol-pw", "not in group"},
		{"A9 unavailable", []string{basic("alice:down")}, 503, "", "alice:down", "connection refused"},
		{"unknown error", []string{basic("alice:weird")}, 503, "", "alice:weird", "something unexpected"},
		{"unavailable wins over invalid", []string{basic("both:pw-both")}, 503, "", "both:pw-both", ""},
		{"A7 missing", nil, 401, "", "", "no Authorization header"},
		{"A7 Bearer", []string{"Bearer abc.def.ghi"}, 401, "", "", "not Basic"},
		{"A7 Digest", []string{`Digest username="bob"`}, 401, "", "", "not Basic"},
		{"A7 broken base64", []string{"Basic %%%"}, 401, "", "", "base64"},
		{"A7 no colon", []string{basic("bob")}, 401, "", "", "no colon"},
		{"A7 20 KB", []string{basic("bob:" + strings.Repeat("x", 15000))}, 401, "", "", "too large"},
		{"two headers", []string{basic("bob:p@ss:wörd"), basic("carol:carol-pw")}, 401, "", "", "several"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.mu.Lock()
			fake.calls = nil
			fake.mu.Unlock()
			h, logs := newTestHandler(fake)
			req := httptest.NewRequest(http.MethodGet, "/auth", nil)
			for _, v := range tt.headers {
				req.Header.Add("Authorization", v)
			}
			req.Header.Set("X-Real-IP", "192.0.2.7")
			req.Header.Set("X-Original-Method", "PUT")
			req.Header.Set("X-Original-URI", "/v2/app/blobs/uploads/?digest=sha256%3Aabc")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d; want %d", rec.Code, tt.wantStatus)
			}
			gotChallenge := rec.Header().Get("WWW-Authenticate")
			if tt.wantStatus == 401 && gotChallenge != wantChallenge {
				t.Errorf("WWW-Authenticate: got %q; want %q", gotChallenge, wantChallenge)
			}
			if tt.wantStatus != 401 && gotChallenge != "" {
				t.Errorf("WWW-Authenticate on %d: got %q; want none", rec.Code, gotChallenge)
			}
			if got := rec.Header().Get(UserHeader); got != tt.wantUser {
				t.Errorf("%s: got %q; want %q", UserHeader, got, tt.wantUser)
			}
			fake.mu.Lock()
			calls := fake.calls
			fake.mu.Unlock()
			switch {
			case tt.wantCall == "" && len(calls) != 0:
				t.Errorf("authenticator called with %q; want no call", calls)
			case tt.wantCall != "" && (len(calls) != 1 || calls[0] != tt.wantCall):
				t.Errorf("authenticator calls: got %q; want [%q]", calls, tt.wantCall)
			}

			lines := logs.lines(t)
			if len(lines) != 1 {
				t.Fatalf("log lines: got %d; want 1:\n%s", len(lines), logs)
			}
			l := lines[0]
			for key, want := range map[string]any{
				"client_ip": "192.0.2.7", "method": "PUT", "uri": "/v2/app/blobs/uploads/?digest=sha256%3Aabc",
				"status": float64(tt.wantStatus),
			} {
				if l[key] != want {
					t.Errorf("log %s: got %v; want %v", key, l[key], want)
				}
			}
			if reason, _ := l["reason"].(string); !strings.Contains(reason, tt.wantReason) {
				t.Errorf("log reason: got %q; want it to contain %q", reason, tt.wantReason)
			}
			if tt.wantStatus == 503 && l["level"] != "ERROR" {
				t.Errorf("log level on 503: got %v; want ERROR", l["level"])
			}
			for _, h := range tt.headers {
				_, token, _ := strings.Cut(h, " ")
				_, password, _ := strings.Cut(tt.wantCall, ":")
				if strings.Contains(logs.String(), token) || (len(password) > 3 && strings.Contains(logs.String(), password)) {
					t.Errorf("log line contains the credentials: %s", logs)
				}
			}
		})
	}
}

func TestRealmIsQuoted(t *testing.T) {
	h := NewHandler(&fakeAuth{}, `my "odd" \realm`, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/auth", nil))
	if got, want := rec.Header().Get("WWW-Authenticate"), `Basic realm="my \"odd\" \\realm", charset="UTF-8"`; got != want {
		t.Errorf("WWW-Authenticate: got %q; want %q", got, want)
	}
}

// panicAuth fails the test if anything calls it.
type panicAuth struct{ t *testing.T }

func (p panicAuth) Authenticate(context.Context, string, string) (ldapauth.Identity, error) {
	p.t.Error("healthz called the authenticator")
	return ldapauth.Identity{}, ldapauth.ErrUnavailable
}

func TestHealthz(t *testing.T) {
	h, _ := newTestHandler(panicAuth{t})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/healthz", nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 {
			t.Errorf("%s /healthz: got %d; want 200", method, rec.Code)
		}
		if method == http.MethodGet && string(body) != "ok" {
			t.Errorf("GET /healthz body: got %q; want %q", body, "ok")
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/other", nil))
	if rec.Code != 404 {
		t.Errorf("GET /other: got %d; want 404", rec.Code)
	}
}

func TestAuthAnyMethod(t *testing.T) {
	fake := &fakeAuth{answers: map[string]fakeAnswer{"a:b": {id: ldapauth.Identity{Name: "a"}}}}
	h, _ := newTestHandler(fake)
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		req := httptest.NewRequest(method, "/auth", nil)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("a:b")))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 204 {
			t.Errorf("%s /auth: got %d; want 204", method, rec.Code)
		}
	}
}
