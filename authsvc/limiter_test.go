package authsvc

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testLimits = Limits{PerUserAddr: 3, PerUser: 5, PerAddr: 8, Window: time.Minute}

func TestLimiterBucket(t *testing.T) {
	l := newLimiter(Limits{PerUserAddr: 3, Window: time.Minute})
	now := time.Now()
	for i := range 2 {
		if tripped := l.failure("bob", "a", now); len(tripped) != 0 {
			t.Fatalf("failure %d tripped %v; want nothing before the limit", i+1, tripped)
		}
	}
	if tripped := l.failure("bob", "a", now); !reflect.DeepEqual(tripped, []string{scopeUserAddr}) {
		t.Fatalf("third failure tripped %v; want [%s]", tripped, scopeUserAddr)
	}
	if scope, ok := l.allow("bob", "a", now); ok || scope != scopeUserAddr {
		t.Errorf("allow after 3 failures: got %q %v; want %q false", scope, ok, scopeUserAddr)
	}
	for _, u := range []string{"BOB", " bob "} {
		if _, ok := l.allow(u, "a", now); ok {
			t.Errorf("allow(%q): a case or space variant escapes the count", u)
		}
	}
	if _, ok := l.allow("bob", "b", now); !ok {
		t.Error("bob at another address is refused; the per-address count must stay at its address")
	}
	// The count drains by one every Window/limit: one more attempt after 20s.
	if _, ok := l.allow("bob", "a", now.Add(20*time.Second-time.Millisecond)); ok {
		t.Error("allowed before one failure drained")
	}
	if _, ok := l.allow("bob", "a", now.Add(20*time.Second)); !ok {
		t.Error("refused after one failure drained")
	}
	later := now.Add(20 * time.Second)
	if tripped := l.failure("bob", "a", later); len(tripped) != 1 {
		t.Errorf("failure after the drain: tripped %v; want the limit again", tripped)
	}
	if _, ok := l.allow("bob", "a", later.Add(time.Minute)); !ok {
		t.Error("still refused a whole window after the last failure; a lockout must end")
	}
	if got := l.userAddr.len(); got != 0 {
		t.Errorf("entries after the count drained: got %d; want 0 (a drained count is forgotten)", got)
	}
}

func TestLimiterSuccessClearsPair(t *testing.T) {
	l := newLimiter(Limits{PerUserAddr: 3, PerUser: 100, PerAddr: 100, Window: time.Minute})
	now := time.Now()
	l.failure("bob", "a", now)
	l.failure("bob", "a", now)
	l.success("bob", "a", now)
	l.failure("bob", "a", now)
	l.failure("bob", "a", now)
	if _, ok := l.allow("bob", "a", now); !ok {
		t.Error("refused after 2+2 failures around a success; a success must reset the pair")
	}
}

func TestLimiterBounded(t *testing.T) {
	c := newLRU[string, int](3)
	for i := range 10 {
		c.put(fmt.Sprint(i), i)
	}
	if got := c.len(); got != 3 {
		t.Errorf("len: got %d; want 3", got)
	}
	if _, ok := c.get("6"); ok {
		t.Error("an old key survived")
	}
	if v, ok := c.get("9"); !ok || v != 9 {
		t.Errorf("get(9): got %d %v; want 9 true", v, ok)
	}
}

// failAs sends n different wrong passwords for user from ip: guesses, each a
// new failure (a repeat of the same wrong password is answered from the
// failure memory and counts once).
func failAs(s *testService, user, ip string, n int) {
	for i := range n {
		s.do(basic(fmt.Sprintf("%s:wrong-%s-%d", user, ip, i)), ip)
	}
}

func TestLimiterThroughHandler(t *testing.T) {
	newService := func() (*testService, *countingAuth) {
		auth := &countingAuth{passwords: map[string]string{"bob": "pw", "alice": "apw"}}
		return newTestService(auth, Options{CacheTTL: time.Minute, CacheSize: 100, Limits: testLimits}), auth
	}

	t.Run("lockout and cool-down", func(t *testing.T) {
		s, auth := newService()
		failAs(s, "bob", "192.0.2.1", 3)
		calls := auth.calls.Load()
		s.wantStatus(t, "right password while locked out", basic("bob:pw"), "192.0.2.1", 401)
		if got := auth.calls.Load(); got != calls {
			t.Errorf("a refused attempt reached the backend (%d calls; want %d)", got, calls)
		}
		s.clock.Advance(testLimits.Window / 3)
		s.wantStatus(t, "right password after one failure drained", basic("bob:pw"), "192.0.2.1", 204)

		lines := s.logs.lines(t)
		var warns, limited int
		for _, l := range lines {
			if l["level"] == "WARN" && strings.Contains(fmt.Sprint(l["msg"]), "limit reached") {
				warns++
				if l["scope"] != scopeUserAddr || l["user"] != "bob" || l["client_ip"] != "192.0.2.1" {
					t.Errorf("trip line: got %v; want scope user_ip, user bob, client_ip 192.0.2.1", l)
				}
			}
			if l["decision"] == resultLimited {
				limited++
			}
		}
		if warns != 1 || limited != 1 {
			t.Errorf("got %d trip lines and %d limited decisions; want 1 and 1", warns, limited)
		}
		if got := value(s.m.trips[scopeUserAddr]); got != 1 {
			t.Errorf("trips{user_ip}: got %v; want 1", got)
		}
		if got := value(s.m.decisions[resultLimited]); got != 1 {
			t.Errorf("decisions{limited}: got %v; want 1", got)
		}
	})

	t.Run("cached correct password passes while locked out", func(t *testing.T) {
		s, _ := newService()
		s.wantStatus(t, "login from B", basic("bob:pw"), "198.51.100.2", 204)
		failAs(s, "bob", "192.0.2.1", 20)    // the attacker at A, past every limit
		failAs(s, "bob", "203.0.113.9", 20)  // and at C
		failAs(s, "bob", "203.0.113.10", 20) // and at D
		s.wantStatus(t, "bob's cached password from B", basic("bob:pw"), "198.51.100.2", 204)
		s.wantStatus(t, "bob's cached password from A too", basic("bob:pw"), "192.0.2.1", 204)
	})

	t.Run("attacker at A does not lock out bob at B", func(t *testing.T) {
		s, _ := newService()
		failAs(s, "bob", "192.0.2.1", 50)
		s.wantStatus(t, "bob at B, cold cache", basic("bob:pw"), "198.51.100.2", 204)
	})

	t.Run("known-good address survives a distributed attack", func(t *testing.T) {
		s, _ := newService()
		s.wantStatus(t, "bob logs in from B", basic("bob:pw"), "198.51.100.2", 204)
		s.clock.Advance(2 * time.Minute) // the cache entry has expired
		for i := range 5 {               // several addresses, per-user limit 5: full
			failAs(s, "bob", fmt.Sprintf("203.0.113.%d", i), 3)
		}
		s.wantStatus(t, "bob from a new address", basic("bob:pw"), "192.0.2.200", 401)
		s.wantStatus(t, "bob from B, where he logged in before", basic("bob:pw"), "198.51.100.2", 204)
		s.clock.Advance(testLimits.Window)
		s.wantStatus(t, "bob from the new address once the count drained", basic("bob:pw"), "192.0.2.200", 204)
	})

	t.Run("per address", func(t *testing.T) {
		s, _ := newService()
		for i := range 8 { // a spray of usernames
			failAs(s, fmt.Sprintf("user%d", i), "192.0.2.1", 1)
		}
		s.wantStatus(t, "alice from the spraying address", basic("alice:apw"), "192.0.2.1", 401)
		s.wantStatus(t, "alice elsewhere", basic("alice:apw"), "192.0.2.2", 204)
	})
}

// Unknown user, wrong password and a limited attempt look the same to the
// client: status, headers and body.
func TestIdenticalDenials(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}}
	s := newTestService(auth, Options{CacheTTL: time.Minute, CacheSize: 10, Limits: testLimits})
	unknown := s.do(basic("nosuchuser:pw"), "192.0.2.1")
	wrong := s.do(basic("bob:wrong"), "192.0.2.1")
	failAs(s, "bob", "192.0.2.1", 5)
	limited := s.do(basic("bob:pw"), "192.0.2.1")
	if got := limited.Code; got != 401 {
		t.Fatalf("limited: got %d; want 401", got)
	}
	for name, rec := range map[string]*httptest.ResponseRecorder{"wrong password": wrong, "limited": limited} {
		if rec.Code != unknown.Code {
			t.Errorf("%s: status %d; unknown user %d", name, rec.Code, unknown.Code)
		}
		if !reflect.DeepEqual(rec.Header(), unknown.Header()) {
			t.Errorf("%s: headers %v; unknown user %v", name, rec.Header(), unknown.Header())
		}
		if rec.Body.String() != unknown.Body.String() {
			t.Errorf("%s: body %q; unknown user %q", name, rec.Body, unknown.Body)
		}
	}
	if got := unknown.Header().Get("WWW-Authenticate"); got != wantChallenge {
		t.Errorf("WWW-Authenticate: got %q; want %q", got, wantChallenge)
	}
	// An unknown user is limited exactly like a known one.
	failAs(s, "nosuchuser", "192.0.2.3", 3)
	if rec := s.do(basic("nosuchuser:x"), "192.0.2.3"); rec.Code != 401 ||
		s.logs.lines(t)[len(s.logs.lines(t))-1]["decision"] != resultLimited {
		t.Error("an unknown user is not limited like a known one")
	}
}

func TestLimiterOff(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}}
	s := newTestService(auth, Options{Limits: Limits{}})
	failAs(s, "bob", "192.0.2.1", 100)
	s.wantStatus(t, "no limits", basic("bob:pw"), "192.0.2.1", http.StatusNoContent)
}
