package authsvc

import (
	"strings"
	"testing"
	"time"
)

func TestGrace(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw", "alice": "apw"}}
	s := newTestService(auth, Options{CacheTTL: time.Minute, CacheSize: 100, GracePeriod: time.Hour})
	s.wantStatus(t, "bob verified", basic("bob:pw"), "", 204)
	s.clock.Advance(30 * time.Minute) // past the TTL, inside the grace period
	auth.setDown(true)

	rec := s.wantStatus(t, "bob, exact credentials, LDAP down", basic("bob:pw"), "", 204)
	if got := rec.Header().Get(UserHeader); got != "bob" {
		t.Errorf("%s: got %q; want bob", UserHeader, got)
	}
	s.wantStatus(t, "bob, another password, LDAP down", basic("bob:other"), "", 503)
	s.wantStatus(t, "alice never verified, LDAP down", basic("alice:apw"), "", 503)

	lines := s.logs.lines(t)
	grace := lines[1]
	if grace["level"] != "WARN" || grace["msg"] != "ldap unavailable; allowing from grace cache" || grace["cache"] != "grace" {
		t.Errorf("grace log line: got %v; want WARN %q with cache=grace", grace, "ldap unavailable; allowing from grace cache")
	}
	if got := value(s.m.graceAllows); got != 1 {
		t.Errorf("grace allows: got %v; want 1", got)
	}

	s.clock.Advance(30 * time.Minute) // the grace period has run out
	s.wantStatus(t, "bob after the grace period", basic("bob:pw"), "", 503)

	// Recovery is automatic, and the next success refreshes the entry.
	auth.setDown(false)
	s.wantStatus(t, "bob, LDAP back", basic("bob:pw"), "", 204)
	s.clock.Advance(59 * time.Minute)
	auth.setDown(true)
	s.wantStatus(t, "bob, second outage within grace of the refresh", basic("bob:pw"), "", 204)
}

func TestGraceOffMeans503(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}}
	s := newTestService(auth, Options{CacheTTL: time.Minute, CacheSize: 100})
	s.wantStatus(t, "bob verified", basic("bob:pw"), "", 204)
	s.clock.Advance(time.Minute)
	auth.setDown(true)
	s.wantStatus(t, "LDAP down, no grace", basic("bob:pw"), "", 503)
	if strings.Contains(s.logs.String(), "grace cache") {
		t.Error("grace logged with AUTH_GRACE_PERIOD=0")
	}
}

// With the cache off, the grace period still works: entries are kept only
// for an outage.
func TestGraceWithoutCache(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}}
	s := newTestService(auth, Options{CacheTTL: 0, CacheSize: 100, GracePeriod: time.Hour})
	s.wantStatus(t, "bob verified", basic("bob:pw"), "", 204)
	s.wantStatus(t, "bob again", basic("bob:pw"), "", 204)
	if got := auth.calls.Load(); got != 2 {
		t.Errorf("backend calls with TTL 0: got %d; want 2", got)
	}
	auth.setDown(true)
	s.wantStatus(t, "bob, LDAP down", basic("bob:pw"), "", 204)
}
