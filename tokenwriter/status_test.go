package tokenwriter

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeCredentials is the SDK credentials cache as tokenwriter sees it.
type fakeCredentials struct {
	creds aws.Credentials
	err   error
}

func (f fakeCredentials) Retrieve(context.Context) (aws.Credentials, error) { return f.creds, f.err }

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// refresherAt returns a Refresher on a fake clock whose ECR hands out tokens
// valid for tokenLife and whose credentials expire after credsLife (0: never).
func refresherAt(t *testing.T, clock *fakeClock, tokenLife, credsLife time.Duration) (*Refresher, *fakeECR) {
	t.Helper()
	cfg := testConfig(t, nginxOK)
	api := &fakeECR{answer: func() fakeAnswer {
		return fakeAnswer{data: []types.AuthorizationData{authData(testTokenValue(64, 1), testEndpoint, clock.now().Add(tokenLife))}}
	}}
	r := NewRefresher(api, nil, cfg, discardLogger())
	r.now = clock.now
	creds := aws.Credentials{AccessKeyID: "ASIAFAKE", SecretAccessKey: "s", SessionToken: "t"}
	if credsLife > 0 {
		creds.CanExpire, creds.Expires = true, clock.now().Add(credsLife)
	}
	r.creds = fakeCredentials{creds: creds}
	return r, api
}

func TestScheduleRespectsCredentialsExpiry(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name                 string
		tokenLife, credsLife time.Duration
		wantValid, wantNext  time.Duration // after start
	}{
		{"static credentials", 12 * time.Hour, 0, 12 * time.Hour, 6 * time.Hour},
		{"long session", 12 * time.Hour, 10 * time.Hour, 10 * time.Hour, 6 * time.Hour},
		{"session shorter than the interval", 12 * time.Hour, 3 * time.Hour, 3 * time.Hour, 2 * time.Hour},
		{"one-hour web identity session", 12 * time.Hour, time.Hour, time.Hour, 30 * time.Minute},
		{"token shorter than the session", 45 * time.Minute, 2 * time.Hour, 45 * time.Minute, 22*time.Minute + 30*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: start}
			r, _ := refresherAt(t, clock, tc.tokenLife, tc.credsLife)
			if err := r.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := r.state.validUntil().Sub(start); got != tc.wantValid {
				t.Errorf("valid for %s; want %s", got, tc.wantValid)
			}
			next := r.nextAfterSuccess(clock.now())
			if got := next.Sub(start); got != tc.wantNext {
				t.Errorf("next refresh at start+%s; want start+%s", got, tc.wantNext)
			}
			if !next.Before(r.state.validUntil()) {
				t.Errorf("next refresh %s is not before the token or its credentials run out (%s)", next, r.state.validUntil())
			}
		})
	}
}

func TestCredentialsErrorFallsBackToTokenExpiry(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	r, _ := refresherAt(t, clock, 12*time.Hour, 0)
	r.creds = fakeCredentials{err: errors.New("imds unreachable")}
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.state.validUntil(), clock.now().Add(12*time.Hour); !got.Equal(want) {
		t.Errorf("got valid until %s; want the token's expiry %s", got, want)
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		tokenLife, credsLife time.Duration // 0 tokenLife: no token yet
		elapsed              time.Duration
		want                 int
		wantText             string
	}{
		{"no token yet", 0, 0, 0, http.StatusServiceUnavailable, "no ecr token yet"},
		{"fresh token", 12 * time.Hour, 0, 0, http.StatusOK, "ok: ecr token valid until"},
		{"token near its end", 12 * time.Hour, 0, 11*time.Hour + 31*time.Minute, http.StatusServiceUnavailable, "less than TOKEN_READY_MARGIN 30m0s"},
		{"exactly the margin left", 12 * time.Hour, 0, 11*time.Hour + 30*time.Minute, http.StatusOK, "ok"},
		{"credentials near their end", 12 * time.Hour, 40 * time.Minute, 11 * time.Minute, http.StatusServiceUnavailable, "29m0s left"},
		{"expired", time.Hour, 0, 2 * time.Hour, http.StatusServiceUnavailable, "less than TOKEN_READY_MARGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			r, _ := refresherAt(t, clock, tc.tokenLife, tc.credsLife)
			r.cfg.ReadyMargin = 30 * time.Minute
			if tc.tokenLife > 0 {
				if err := r.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			clock.advance(tc.elapsed)
			srv := newServer(r, prometheus.NewRegistry())
			code, body := get(t, srv, "/readyz")
			if code != tc.want || !strings.Contains(body, tc.wantText) {
				t.Errorf("got %d %q; want %d containing %q", code, body, tc.want, tc.wantText)
			}
			// Liveness never depends on the token.
			if code, _ := get(t, srv, "/healthz"); code != http.StatusOK {
				t.Errorf("/healthz: got %d; want 200", code)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	r, api := refresherAt(t, clock, 12*time.Hour, 2*time.Hour)
	reg := prometheus.NewRegistry()
	if err := r.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	srv := newServer(r, reg)
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	api.answer = func() fakeAnswer { return fakeAnswer{err: errors.New("ThrottlingException")} }
	for range 2 {
		if err := r.Refresh(context.Background()); err == nil {
			t.Fatal("got no error from a failing ECR; want one")
		}
	}
	_, body := get(t, srv, "/metrics")
	for _, want := range []string{
		`tokenwriter_token_expiry_timestamp_seconds{registry="default"} 1.8000432e+09`,
		`tokenwriter_credentials_expiry_timestamp_seconds{registry="default"} 1.8000072e+09`,
		`tokenwriter_last_success_timestamp_seconds{registry="default"} 1.8e+09`,
		`tokenwriter_refresh_failures_total{registry="default"} 2`,
		`tokenwriter_token_rejections_total{registry="default"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// fakeProber rejects every token whose value is in rejected.
type fakeProber struct {
	mu       sync.Mutex
	rejected map[Secret]bool
	probes   int
}

func (f *fakeProber) Probe(_ context.Context, tok Token) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes++
	if f.rejected[tok.Value] {
		return ErrTokenRejected
	}
	return nil
}

func (f *fakeProber) reject(v Secret) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejected[v] = true
}

// A token the registry rejects is replaced at once, long before its schedule,
// and a registry that rejects every token is asked at most once per gap.
func TestRejectedTokenIsReplacedAtOnceAndRateLimited(t *testing.T) {
	cfg := testConfig(t, nginxOK)
	cfg.ProbeInterval = 10 * time.Millisecond
	cfg.RejectedRefreshGap = 150 * time.Millisecond
	var seed uint64
	var mu sync.Mutex
	api := &fakeECR{answer: func() fakeAnswer {
		mu.Lock()
		defer mu.Unlock()
		seed++
		return fakeAnswer{data: []types.AuthorizationData{authData(testTokenValue(64, seed), testEndpoint, time.Now().Add(12*time.Hour))}}
	}}
	probe := &fakeProber{rejected: map[Secret]bool{}}
	r := NewRefresher(api, nil, cfg, discardLogger())
	r.probe = probe
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { r.Loop(ctx) })
	wg.Go(func() { r.ProbeLoop(ctx) })
	defer wg.Wait()
	defer cancel()

	waitUntil(t, time.Second, "the first token", func() bool { return r.state.current().Value != "" })
	first := r.state.current().Value
	probe.reject(first)
	waitUntil(t, 2*time.Second, "a new token after the rejection", func() bool { return r.state.current().Value != first })
	if n := api.calls(); n != 2 {
		t.Errorf("got %d GetAuthorizationToken calls; want 2 (the interval is 6h)", n)
	}

	// Now every token is rejected: refreshes come at most once per gap.
	before := api.calls()
	stop := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(stop) {
		probe.reject(r.state.current().Value)
		time.Sleep(5 * time.Millisecond)
	}
	if got := api.calls() - before; got < 2 || got > 5 {
		t.Errorf("got %d refreshes in 600ms of rejections with a 150ms gap; want 2 to 5", got)
	}
	if got := r.state.snapshot().rejections; got < 2 {
		t.Errorf("got %d rejections counted; want at least 2", got)
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRegistryProber(t *testing.T) {
	tok := Token{Value: Secret(testTokenValue(64, 3))}
	var status int
	var gotAuth, gotPath string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotPath = r.Header.Get("Authorization"), r.URL.Path
		w.WriteHeader(status)
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	der := srv.Certificate().Raw
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p, err := newRegistryProber(caFile)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "https://"), ":")
	tok.Host, tok.Port = host, port
	for _, tc := range []struct {
		status       int
		wantRejected bool
		wantErr      bool
	}{
		{http.StatusOK, false, false},
		{http.StatusUnauthorized, true, true},
		{http.StatusForbidden, true, true},
		{http.StatusInternalServerError, false, true},
		{http.StatusTooManyRequests, false, true},
	} {
		status = tc.status
		err := p.Probe(context.Background(), tok)
		if (err != nil) != tc.wantErr || errors.Is(err, ErrTokenRejected) != tc.wantRejected {
			t.Errorf("status %d: got %v; want error %v, rejected %v", tc.status, err, tc.wantErr, tc.wantRejected)
		}
	}
	if want := "Basic " + string(tok.Value); gotAuth != want || gotPath != "/v2/" {
		t.Errorf("got %s with Authorization of %d chars; want /v2/ with the token", gotPath, len(gotAuth))
	}
	if _, err := newRegistryProber(filepath.Join(t.TempDir(), "missing.pem")); err == nil || !strings.Contains(err.Error(), "ECR_CA_FILE") {
		t.Errorf("got %v for a missing CA file; want an error naming ECR_CA_FILE", err)
	}
}

// A token the registry rejected makes /readyz fail until a probe accepts it
// again or a new token replaces it: clients get ECR's refusals meanwhile.
func TestReadyzAfterRejection(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	r, api := refresherAt(t, clock, 12*time.Hour, 0)
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := newServer(r, prometheus.NewRegistry())
	first := r.state.tokens()[0].Value
	r.state.rejected(0, first, clock.now(), time.Second)
	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "rejected") {
		t.Errorf("after a rejection: got %d %q; want 503 naming the rejection", code, body)
	}
	r.state.accepted(0, first)
	if code, body := get(t, srv, "/readyz"); code != http.StatusOK {
		t.Errorf("after the registry accepted it again: got %d %q; want 200", code, body)
	}
	r.state.rejected(0, first, clock.now(), time.Second)
	api.answer = func() fakeAnswer {
		return fakeAnswer{data: []types.AuthorizationData{authData(testTokenValue(64, 2), testEndpoint, clock.now().Add(12*time.Hour))}}
	}
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.state.tokens()[0].Value == first {
		t.Fatal("the refresh kept the same token value; the test needs a new one")
	}
	if code, body := get(t, srv, "/readyz"); code != http.StatusOK {
		t.Errorf("after a new token replaced the rejected one: got %d %q; want 200", code, body)
	}
}

// A TOKEN_READY_MARGIN the tokens never outlive is said at the refresh, not
// left to a /readyz that is never ready.
func TestWarnsWhenReadyMarginExceedsTokenLife(t *testing.T) {
	for _, tc := range []struct {
		margin time.Duration
		warn   bool
	}{{2 * time.Hour, true}, {30 * time.Minute, false}} {
		clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		r, _ := refresherAt(t, clock, time.Hour, 0)
		var logs bytes.Buffer
		r.log = slog.New(slog.NewTextHandler(&logs, nil))
		r.cfg.ReadyMargin = tc.margin
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(logs.String(), "lower TOKEN_READY_MARGIN"); got != tc.warn {
			t.Errorf("TOKEN_READY_MARGIN %s with 1h tokens: warned %v; want %v\n%s", tc.margin, got, tc.warn, logs.String())
		}
	}
}

func (f *fakeProber) accept(v Secret) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rejected, v)
}

// While the registry rejects the token in place and no new one can be had,
// the include flags it ($ecr_token_rejected, nginx answers 503 "renewing");
// once the registry accepts it again the flag goes.
func TestRejectedTokenIsFlaggedInTheInclude(t *testing.T) {
	cfg := testConfig(t, nginxOK)
	cfg.ProbeInterval = 10 * time.Millisecond
	cfg.RejectedRefreshGap = time.Hour // no refresh: the flag is all that changes
	api := &fakeECR{answer: func() fakeAnswer {
		return fakeAnswer{data: []types.AuthorizationData{authData(testTokenValue(64, 1), testEndpoint, time.Now().Add(12*time.Hour))}}
	}}
	probe := &fakeProber{rejected: map[Secret]bool{}}
	r := NewRefresher(api, nil, cfg, discardLogger())
	r.probe = probe
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	flagged := func() bool {
		b, _ := os.ReadFile(cfg.TokenFile)
		return strings.Contains(string(b), `map $host $ecr_token_rejected { default "1"; }`)
	}
	if flagged() {
		t.Fatal("a fresh token is flagged rejected")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.ProbeLoop(ctx) })
	defer wg.Wait()
	defer cancel()

	tok := r.state.current().Value
	probe.reject(tok)
	waitUntil(t, time.Second, "the include to flag the rejected token", flagged)
	b, _ := os.ReadFile(cfg.TokenFile)
	if lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n"); !strings.Contains(lines[len(lines)-1], "$ecr_authorization") {
		t.Errorf("the last line is %q; want $ecr_authorization's map (fail-closed)", lines[len(lines)-1])
	}
	probe.accept(tok)
	waitUntil(t, time.Second, "the flag to go", func() bool { return !flagged() })
}
