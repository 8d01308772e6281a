package authsvc

import (
	"container/list"
	"strings"
	"sync"
	"time"
)

// Limits bound failed logins (wrong password or unknown user). Each limit is a
// number of failures that may happen at once and then drains evenly over
// Window; zero turns that limit off. See the package documentation for how
// they combine.
type Limits struct {
	PerUserAddr int           // AUTH_MAX_FAILURES: one username from one client address
	PerUser     int           // AUTH_MAX_FAILURES_PER_USER: one username from addresses where it has not logged in lately
	PerAddr     int           // AUTH_MAX_FAILURES_PER_IP: all usernames from one client address
	Window      time.Duration // AUTH_FAILURE_WINDOW: time for a full count to drain
}

func (l Limits) enabled() bool {
	return l.Window > 0 && (l.PerUserAddr > 0 || l.PerUser > 0 || l.PerAddr > 0)
}

// Limit scopes, the values of authsvc_limiter_trips_total{scope}.
const (
	scopeUserAddr = "user_ip"
	scopeUser     = "user"
	scopeAddr     = "ip"
)

const (
	// maxLimiterKeys bounds each table, so that a spray of random usernames or
	// addresses cannot grow memory without end. The least recently touched
	// counter goes first.
	maxLimiterKeys = 100_000
	// knownGoodFor is how long a successful login from an address keeps that
	// (user, address) pair exempt from the per-user limit.
	knownGoodFor = 24 * time.Hour
)

// limiter counts failed logins. A count is a leaky bucket kept as the time at
// which it will be empty again (GCRA): each failure adds Window/limit; the
// bucket is full, and further attempts refused without asking LDAP, while that
// time is more than Window-Window/limit away. Refused attempts add nothing, so
// a lockout always ends.
type limiter struct {
	limits Limits

	mu        sync.Mutex
	userAddr  *lru[string, time.Time] // user + "\x00" + addr → empty at
	user      *lru[string, time.Time]
	addr      *lru[string, time.Time]
	knownGood *lru[string, time.Time] // user + "\x00" + addr → last success
}

func newLimiter(l Limits) *limiter {
	return &limiter{
		limits:    l,
		userAddr:  newLRU[string, time.Time](maxLimiterKeys),
		user:      newLRU[string, time.Time](maxLimiterKeys),
		addr:      newLRU[string, time.Time](maxLimiterKeys),
		knownGood: newLRU[string, time.Time](maxLimiterKeys),
	}
}

// limiterUser folds the username given so that case and surrounding space
// variants share one count. It is the given name, not the directory's: a
// failure has no canonical name, and an unknown user must count exactly like
// a wrong password.
func limiterUser(user string) string {
	return strings.ToLower(strings.TrimSpace(user))
}

// allow reports whether an attempt for user from addr may go to LDAP, and if
// not, which limit refused it.
func (l *limiter) allow(user, addr string, now time.Time) (scope string, ok bool) {
	u := limiterUser(user)
	ua := u + "\x00" + addr
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.full(l.addr, addr, l.limits.PerAddr, now):
		return scopeAddr, false
	case l.full(l.userAddr, ua, l.limits.PerUserAddr, now):
		return scopeUserAddr, false
	case l.full(l.user, u, l.limits.PerUser, now) && !l.isKnownGood(ua, now):
		return scopeUser, false
	}
	return "", true
}

// failure counts a failed login and returns the scopes whose limit it
// reached.
func (l *limiter) failure(user, addr string, now time.Time) []string {
	u := limiterUser(user)
	l.mu.Lock()
	defer l.mu.Unlock()
	var tripped []string
	if l.add(l.addr, addr, l.limits.PerAddr, now) {
		tripped = append(tripped, scopeAddr)
	}
	if l.add(l.userAddr, u+"\x00"+addr, l.limits.PerUserAddr, now) {
		tripped = append(tripped, scopeUserAddr)
	}
	if l.add(l.user, u, l.limits.PerUser, now) {
		tripped = append(tripped, scopeUser)
	}
	return tripped
}

// success clears the count of user at addr and marks the pair as known good.
// The per-user and per-address counts stay: one valid account must not wipe
// the record of a password spray from the same address.
func (l *limiter) success(user, addr string, now time.Time) {
	ua := limiterUser(user) + "\x00" + addr
	l.mu.Lock()
	defer l.mu.Unlock()
	l.userAddr.remove(ua)
	if l.limits.PerUser > 0 {
		l.knownGood.put(ua, now)
	}
}

func (l *limiter) isKnownGood(ua string, now time.Time) bool {
	t, ok := l.knownGood.get(ua)
	if ok && now.Sub(t) >= knownGoodFor {
		l.knownGood.remove(ua)
		return false
	}
	return ok
}

func (l *limiter) cost(limit int) time.Duration { return l.limits.Window / time.Duration(limit) }

func (l *limiter) full(t *lru[string, time.Time], key string, limit int, now time.Time) bool {
	if limit <= 0 {
		return false
	}
	emptyAt, ok := t.get(key)
	if !ok {
		return false
	}
	if !emptyAt.After(now) {
		t.remove(key)
		return false
	}
	return emptyAt.Sub(now) > l.limits.Window-l.cost(limit)
}

// add counts one failure and reports whether it made the bucket full.
func (l *limiter) add(t *lru[string, time.Time], key string, limit int, now time.Time) bool {
	if limit <= 0 {
		return false
	}
	wasFull := l.full(t, key, limit, now)
	emptyAt, ok := t.get(key)
	if !ok || emptyAt.Before(now) {
		emptyAt = now
	}
	t.put(key, emptyAt.Add(l.cost(limit)))
	return !wasFull && l.full(t, key, limit, now)
}

// lru is a map bounded to size entries that forgets the least recently used.
// It is not safe for concurrent use.
type lru[K comparable, V any] struct {
	size  int
	m     map[K]*list.Element
	order *list.List // of *lruItem[K, V], most recent first
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](size int) *lru[K, V] {
	return &lru[K, V]{size: size, m: make(map[K]*list.Element), order: list.New()}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	el, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruItem[K, V]).val, true
}

func (c *lru[K, V]) put(k K, v V) {
	if el, ok := c.m[k]; ok {
		el.Value.(*lruItem[K, V]).val = v
		c.order.MoveToFront(el)
		return
	}
	for len(c.m) >= c.size {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.m, old.Value.(*lruItem[K, V]).key)
	}
	c.m[k] = c.order.PushFront(&lruItem[K, V]{key: k, val: v})
}

func (c *lru[K, V]) remove(k K) {
	if el, ok := c.m[k]; ok {
		c.order.Remove(el)
		delete(c.m, k)
	}
}

func (c *lru[K, V]) len() int { return len(c.m) }
