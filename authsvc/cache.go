package authsvc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"sync"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
	"github.com/toanc/aws-ecr-ldap/internal/policy"
)

// credKey names one username and password pair without revealing either: an
// HMAC-SHA256 under a key drawn at process start and never stored or logged.
// It is used for the cache, the singleflight groups and nothing else; in
// particular it is never logged.
type credKey [sha256.Size]byte

// keyer computes credKeys. The HMAC states are pooled so that the warm path
// allocates nothing.
type keyer struct {
	pool sync.Pool // *keyState
}

type keyState struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newKeyer() *keyer {
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (it crashes the program instead)
	k := &keyer{}
	k.pool.New = func() any { return &keyState{mac: hmac.New(sha256.New, secret)} }
	return k
}

// key is HMAC(len(user) ‖ user ‖ len(password) ‖ password): the length prefixes
// keep "a" + "bc" and "ab" + "c" apart.
func (k *keyer) key(user, password string) credKey {
	s := k.pool.Get().(*keyState)
	b := binary.BigEndian.AppendUint32(s.buf[:0], uint32(len(user)))
	b = append(b, user...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(password)))
	b = append(b, password...)
	s.mac.Reset()
	s.mac.Write(b)
	var out credKey
	copy(out[:], s.mac.Sum(s.sum[:0]))
	clear(b) // the password does not linger in the pool
	s.buf = b[:0]
	k.pool.Put(s)
	return out
}

// credCache remembers verified credentials. An entry answers a normal lookup
// for ttl after its LDAP verification (a hit never extends it) and an outage
// lookup for grace; it is kept for the longer of the two. At most size entries
// are kept; the least recently used goes first.
type credCache struct {
	ttl, grace, keep time.Duration
	size             int
	metrics          *Metrics

	mu     sync.Mutex
	m      map[credKey]*cacheEntry
	byName map[string][]*cacheEntry // entries per canonical user name
	head   cacheEntry               // sentinel of the LRU ring: head.next is the most recent
}

type cacheEntry struct {
	key        credKey
	id         ldapauth.Identity
	userHeader []string        // []string{id.Name}, shared by every response: no allocation per hit
	subject    *policy.Subject // id folded for the policy, once per login
	idKey      credKey         // key(id.Name, password): the same for every spelling of the name
	verified   time.Time
	moved      time.Time // last move to the front of the LRU ring
	prev, next *cacheEntry
}

func newCredCache(ttl, grace time.Duration, size int, m *Metrics) *credCache {
	c := &credCache{ttl: ttl, grace: grace, keep: max(ttl, grace), size: max(size, 1), metrics: m,
		m: make(map[credKey]*cacheEntry), byName: make(map[string][]*cacheEntry)}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

// get returns the entry verified less than ttl ago. The result is shared:
// callers must not modify it.
func (c *credCache) get(k credKey, now time.Time) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	age := now.Sub(e.verified)
	if age >= c.keep {
		c.remove(e)
		return nil, false
	}
	if age >= c.ttl {
		return nil, false // kept only for an outage
	}
	// A busy entry is moved at most once a second: the order only needs to
	// be roughly right, and hits are the hot path.
	if now.Sub(e.moved) >= time.Second {
		e.moved = now
		c.moveToFront(e)
	}
	return e, true
}

// graceGet returns the entry verified less than grace ago, for use while LDAP
// is unavailable.
func (c *credCache) graceGet(k credKey, now time.Time) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || now.Sub(e.verified) >= c.grace {
		return nil, false
	}
	return e, true
}

// put records that LDAP has just verified k as id; idKey is the key of the
// canonical name with the same password. Every entry of the same user with
// another password goes: once a new password works, an old one still in the
// cache must not keep working until its TTL ends. Entries of other spellings
// of the name with the same password stay (they would evict each other in
// turn, and each turn would cost a bind).
func (c *credCache) put(k credKey, id ldapauth.Identity, idKey credKey, now time.Time) {
	subject := policy.NewSubject(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	// Replace, never update in place: a request that got an entry from get
	// reads its fields after the lock is released.
	if e, ok := c.m[k]; ok {
		c.remove(e)
	}
	for _, e := range slices.Clone(c.byName[id.Name]) {
		if e.idKey != idKey {
			c.remove(e)
		}
	}
	// Drop a couple of stale entries from the cold end so that the size gauge
	// does not count the dead for long.
	for range 2 {
		if old := c.head.prev; old != &c.head && now.Sub(old.verified) >= c.keep {
			c.remove(old)
		}
	}
	for len(c.m) >= c.size {
		c.remove(c.head.prev)
		c.metrics.cacheEvictions.Inc()
	}
	e := &cacheEntry{key: k, id: id, userHeader: []string{id.Name}, subject: subject, idKey: idKey, verified: now, moved: now}
	c.m[k] = e
	c.byName[id.Name] = append(c.byName[id.Name], e)
	c.pushFront(e)
	c.metrics.cacheEntries.Set(float64(len(c.m)))
}

func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *credCache) remove(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(c.m, e.key)
	same := c.byName[e.id.Name]
	for i, o := range same {
		if o == e {
			same = append(same[:i], same[i+1:]...)
			break
		}
	}
	if len(same) == 0 {
		delete(c.byName, e.id.Name)
	} else {
		c.byName[e.id.Name] = same
	}
	c.metrics.cacheEntries.Set(float64(len(c.m)))
}

func (c *credCache) pushFront(e *cacheEntry) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

func (c *credCache) moveToFront(e *cacheEntry) {
	if c.head.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	c.pushFront(e)
}

// failureMemory remembers credentials LDAP has just refused, so that a burst
// of requests with the same wrong password (a CI job with a stale secret, a
// docker client retrying) costs the directory one failed bind instead of one
// per request, and cannot trip a directory lockout policy by itself. The same
// credentials are refused without LDAP for failureMemoryTTL. A retry is not a
// new guess, so it does not count against the failed-login limits either.
type failureMemory struct {
	mu sync.Mutex
	m  map[credKey]time.Time // expiry
}

const (
	failureMemoryTTL  = 10 * time.Second
	failureMemorySize = 10000
)

func newFailureMemory() *failureMemory {
	return &failureMemory{m: make(map[credKey]time.Time)}
}

func (f *failureMemory) add(k credKey, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m) >= failureMemorySize {
		for key, exp := range f.m {
			if !now.Before(exp) {
				delete(f.m, key)
			}
		}
		if len(f.m) >= failureMemorySize {
			clear(f.m) // a spray of distinct failures: forgetting is safe
		}
	}
	f.m[k] = now.Add(failureMemoryTTL)
}

func (f *failureMemory) has(k credKey, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.m[k]
	if ok && !now.Before(exp) {
		delete(f.m, k)
		return false
	}
	return ok
}

// forget drops k: LDAP has just accepted it.
func (f *failureMemory) forget(k credKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, k)
}
