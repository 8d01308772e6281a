package authsvc

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

// fakeClock is an injected clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingAuth knows a table of user → password and counts its calls. While
// down it answers ErrUnavailable; gate, if set, holds every call until closed.
type countingAuth struct {
	mu        sync.Mutex
	passwords map[string]string // user (as the directory spells it) → password
	forbidden map[string]bool
	down      bool
	gate      chan struct{}
	calls     atomic.Int64
}

func (a *countingAuth) Authenticate(_ context.Context, user, password string) (ldapauth.Identity, error) {
	a.calls.Add(1)
	if a.gate != nil {
		<-a.gate
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return ldapauth.Identity{}, fmt.Errorf("%w: dial: connection refused", ldapauth.ErrUnavailable)
	}
	want, ok := a.passwords[user]
	switch {
	case !ok:
		return ldapauth.Identity{}, fmt.Errorf("%w: no such user", ldapauth.ErrInvalidCredentials)
	case password != want:
		return ldapauth.Identity{}, fmt.Errorf("%w: wrong password", ldapauth.ErrInvalidCredentials)
	case a.forbidden[user]:
		return ldapauth.Identity{}, fmt.Errorf("%w: not in group", ldapauth.ErrForbidden)
	}
	return ldapauth.Identity{DN: "uid=" + user + ",dc=x", Name: user}, nil
}

func (a *countingAuth) setDown(down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.down = down
}

func (a *countingAuth) setPassword(user, password string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.passwords[user] = password
}

// testService is a handler with a fake clock, a log buffer and its own metrics.
type testService struct {
	h     http.Handler
	clock *fakeClock
	logs  *logBuffer
	reg   *prometheus.Registry
	m     *Metrics
}

func newTestService(auth Authenticator, opts Options) *testService {
	s := &testService{clock: newFakeClock(), logs: &logBuffer{}, reg: prometheus.NewRegistry()}
	s.m = NewMetrics(s.reg)
	opts.Realm = testRealm
	opts.Logger = slog.New(slog.NewJSONHandler(s.logs, nil))
	opts.Metrics = s.m
	opts.Now = s.clock.Now
	s.h = NewHandlerWith(auth, opts)
	return s
}

// do sends GET /auth with the given Authorization (if any) from ip.
func (s *testService) do(authorization, ip string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/auth", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if ip != "" {
		req.Header.Set("X-Real-IP", ip)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

func (s *testService) wantStatus(t *testing.T, what, authorization, ip string, want int) *httptest.ResponseRecorder {
	t.Helper()
	rec := s.do(authorization, ip)
	if rec.Code != want {
		t.Errorf("%s: got %d; want %d", what, rec.Code, want)
	}
	return rec
}

// value reads a counter or gauge (prometheus/testutil needs a module go.sum lacks).
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func TestCredKey(t *testing.T) {
	k := newKeyer()
	if k.key("a", "bc") == k.key("ab", "c") {
		t.Error(`key("a", "bc") == key("ab", "c"); the fields must be length-prefixed`)
	}
	if k.key("a:b", "c") == k.key("a", "b:c") {
		t.Error(`key("a:b", "c") == key("a", "b:c")`)
	}
	if k.key("bob", "pw") != k.key("bob", "pw") {
		t.Error("the same credentials gave two keys")
	}
	if k.key("bob", "pw") == k.key("bob", "pw2") {
		t.Error("a changed password gave the same key")
	}
	if k.key("bob", "pw") == k.key("Bob", "pw") {
		t.Error("the key folds the username; it must not (the directory decides)")
	}
	if newKeyer().key("bob", "pw") == k.key("bob", "pw") {
		t.Error("two keyers gave the same key; the HMAC key must be random per process")
	}
	// The scratch buffer is wiped after use.
	s := k.pool.Get().(*keyState)
	for _, c := range s.buf[:cap(s.buf)] {
		if c != 0 {
			t.Fatalf("pooled buffer keeps %q", s.buf[:cap(s.buf)])
		}
	}
}

func TestCredCacheTTLAndGrace(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	c := newCredCache(5*time.Minute, time.Hour, 10, m)
	k := newKeyer().key("bob", "pw")
	t0 := time.Now()
	c.put(k, ldapauth.Identity{Name: "bob"}, k, t0)

	for _, tt := range []struct {
		after            time.Duration
		wantHit, wantGrc bool
	}{
		{0, true, true},
		{5*time.Minute - time.Nanosecond, true, true},
		{5 * time.Minute, false, true},
		{time.Hour - time.Nanosecond, false, true},
		{time.Hour, false, false},
	} {
		_, hit := c.get(k, t0.Add(tt.after))
		if hit != tt.wantHit {
			t.Errorf("get after %s: got hit=%v; want %v", tt.after, hit, tt.wantHit)
		}
		_, grace := c.graceGet(k, t0.Add(tt.after))
		if grace != tt.wantGrc {
			t.Errorf("graceGet after %s: got %v; want %v", tt.after, grace, tt.wantGrc)
		}
	}
	if got := c.len(); got != 0 {
		t.Errorf("entries after the grace period: got %d; want 0 (dropped when found stale)", got)
	}
}

func TestCredCacheEvictsLeastRecentlyUsed(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	c := newCredCache(time.Minute, 0, 2, m)
	k := newKeyer()
	now := time.Now()
	a, b, d := k.key("a", "1"), k.key("b", "1"), k.key("d", "1")
	c.put(a, ldapauth.Identity{Name: "a"}, a, now)
	c.put(b, ldapauth.Identity{Name: "b"}, b, now)
	now = now.Add(time.Second) // entries move to the front at most once a second
	c.get(a, now)              // a is now the most recent
	c.put(d, ldapauth.Identity{Name: "d"}, d, now)
	if _, ok := c.get(b, now); ok {
		t.Error("b still cached; want it evicted as least recently used")
	}
	for _, key := range []credKey{a, d} {
		if _, ok := c.get(key, now); !ok {
			t.Error("a recently used entry was evicted")
		}
	}
	if got := value(m.cacheEvictions); got != 1 {
		t.Errorf("evictions: got %v; want 1", got)
	}
	if got := value(m.cacheEntries); got != 2 {
		t.Errorf("entries gauge: got %v; want 2", got)
	}
}

func TestCacheThroughHandler(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}, forbidden: map[string]bool{}}
	s := newTestService(auth, Options{CacheTTL: 5 * time.Minute, CacheSize: 100})

	s.wantStatus(t, "first", basic("bob:pw"), "", 204)
	rec := s.wantStatus(t, "second", basic("bob:pw"), "", 204)
	if got := rec.Header().Get(UserHeader); got != "bob" {
		t.Errorf("%s on a hit: got %q; want bob", UserHeader, got)
	}
	if got := auth.calls.Load(); got != 1 {
		t.Errorf("authenticator calls after two requests: got %d; want 1", got)
	}

	s.wantStatus(t, "wrong password", basic("bob:nope"), "", 401)
	s.wantStatus(t, "wrong password again", basic("bob:nope"), "", 401)
	if got := auth.calls.Load(); got != 2 {
		t.Errorf("calls after the same failure twice: got %d; want 2 (a repeat is answered from the failure memory)", got)
	}
	s.clock.Advance(failureMemoryTTL)
	s.wantStatus(t, "wrong password after the failure memory", basic("bob:nope"), "", 401)
	if got := auth.calls.Load(); got != 3 {
		t.Errorf("calls after the failure memory ran out: got %d; want 3 (failures are never cached as successes)", got)
	}

	// A changed password: the new one is a new key, so LDAP answers at once,
	// and its success evicts the old one from the cache.
	s.wantStatus(t, "old password still cached", basic("bob:pw"), "", 204)
	auth.setPassword("bob", "pw2")
	s.wantStatus(t, "new password at once", basic("bob:pw2"), "", 204)
	s.wantStatus(t, "old password once the new one worked", basic("bob:pw"), "", 401)

	lines := s.logs.lines(t)
	if got := lines[1]["cache"]; got != "hit" {
		t.Errorf("log cache of the second request: got %v; want hit", got)
	}
	if got := lines[0]["cache"]; got != "miss" {
		t.Errorf("log cache of the first request: got %v; want miss", got)
	}
	if got := value(s.m.cacheHits); got != 2 {
		t.Errorf("cache hits: got %v; want 2", got)
	}
	// Nothing secret or derived from a secret reaches the log.
	h := s.h.(router).auth
	logs := s.logs.String()
	for _, pw := range []string{"pw", "pw2", "nope"} {
		k := h.keys.key("bob", pw)
		for _, secret := range []string{`:"` + pw + `"`, basic("bob:" + pw)[6:], fmt.Sprintf("%x", k), fmt.Sprintf("%X", k), string(k[:8])} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log contains %q:\n%s", secret, logs)
			}
		}
	}
}

func TestCacheOff(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}}
	s := newTestService(auth, Options{CacheTTL: 0, CacheSize: 100})
	s.wantStatus(t, "first", basic("bob:pw"), "", 204)
	s.wantStatus(t, "second", basic("bob:pw"), "", 204)
	if got := auth.calls.Load(); got != 2 {
		t.Errorf("calls with AUTH_CACHE_TTL=0: got %d; want 2", got)
	}
}

func TestForbiddenNotCached(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"carol": "pw"}, forbidden: map[string]bool{"carol": true}}
	s := newTestService(auth, Options{CacheTTL: time.Minute, CacheSize: 10})
	s.wantStatus(t, "forbidden", basic("carol:pw"), "", 403)
	auth.mu.Lock()
	auth.forbidden["carol"] = false // added to the group
	auth.mu.Unlock()
	s.wantStatus(t, "after joining the group", basic("carol:pw"), "", 204)
}

// A16 with a fake: 50 parallel requests with the same fresh credentials make
// one backend call; the others wait for it and share its answer.
func TestA16SingleflightFake(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}, gate: make(chan struct{})}
	s := newTestService(auth, Options{CacheTTL: 5 * time.Minute, CacheSize: 10})
	const n = 50
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { codes <- s.do(basic("bob:pw"), "192.0.2.1").Code })
	}
	// Let every request miss the cache before the backend answers.
	deadline := time.Now().Add(5 * time.Second)
	for value(s.m.cacheMisses) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(auth.gate)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 204 {
			t.Errorf("status: got %d; want 204", c)
		}
	}
	if got := auth.calls.Load(); got != 1 {
		t.Errorf("backend calls: got %d; want 1", got)
	}
	if got := value(s.m.ldapChecks); got != 1 {
		t.Errorf("authsvc_backend_checks_total: got %v; want 1", got)
	}
	if got := value(s.m.shared); got < 1 || got > n-1 {
		t.Errorf("shared: got %v; want 1 to %d", got, n-1)
	}
}

// A waiter whose client goes away gets its own answer at once; the flight
// goes on for the others.
func TestSingleflightWaiterCancelled(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}, gate: make(chan struct{})}
	s := newTestService(auth, Options{CacheTTL: time.Minute, CacheSize: 10})
	leader := make(chan int, 1)
	go func() { leader <- s.do(basic("bob:pw"), "").Code }()
	for auth.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/auth", nil)
	req.Header.Set("Authorization", basic("bob:pw"))
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { s.h.ServeHTTP(rec, req); close(done) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled waiter still waits for the flight")
	}
	if rec.Code != 503 {
		t.Errorf("cancelled waiter: got %d; want 503", rec.Code)
	}
	close(auth.gate)
	if got := <-leader; got != 204 {
		t.Errorf("leader: got %d; want 204", got)
	}
}

// authFunc adapts a function to Authenticator.
type authFunc func(user string) error

func (f authFunc) Authenticate(_ context.Context, user, _ string) (ldapauth.Identity, error) {
	if err := f(user); err != nil {
		return ldapauth.Identity{}, err
	}
	return ldapauth.Identity{Name: user}, nil
}

// Two spellings of one name with the same password share the user but not
// the key: both stay cached (evicting each other would cost a bind per
// turn); a different password of the same user evicts them.
func TestCredCacheSpellingsAndPasswords(t *testing.T) {
	c := newCredCache(time.Minute, 0, 10, NewMetrics(prometheus.NewRegistry()))
	k := newKeyer()
	now := time.Now()
	bob := ldapauth.Identity{Name: "bob"}
	lower, upper, newPW := k.key("bob", "pw"), k.key("BOB", "pw"), k.key("bob", "pw2")
	c.put(lower, bob, k.key("bob", "pw"), now)
	c.put(upper, bob, k.key("bob", "pw"), now)
	for name, key := range map[string]credKey{"bob": lower, "BOB": upper} {
		if _, ok := c.get(key, now); !ok {
			t.Errorf("%s:pw evicted by another spelling with the same password", name)
		}
	}
	c.put(newPW, bob, k.key("bob", "pw2"), now)
	for name, key := range map[string]credKey{"bob": lower, "BOB": upper} {
		if _, ok := c.get(key, now); ok {
			t.Errorf("%s:pw still cached after a new password worked", name)
		}
	}
	if _, ok := c.get(newPW, now); !ok {
		t.Error("the new password is not cached")
	}
}
