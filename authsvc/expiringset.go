package authsvc

import (
	"sync"
	"time"
)

// expiringSet is a bounded set of keys, each forgotten ttl after it was added.
type expiringSet struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	until map[string]time.Time
}

func newExpiringSet(ttl time.Duration, max int) *expiringSet {
	return &expiringSet{ttl: ttl, max: max, until: map[string]time.Time{}}
}

func (s *expiringSet) has(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.until[key]
	if ok && !now.Before(until) {
		delete(s.until, key)
		return false
	}
	return ok
}

// add remembers key until now+ttl. A full set first drops what has expired,
// then, if still full, an arbitrary key: forgetting costs one lookup.
func (s *expiringSet) add(key string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.until[key]; !ok && len(s.until) >= s.max {
		for k, until := range s.until {
			if !now.Before(until) {
				delete(s.until, k)
			}
		}
		for k := range s.until {
			if len(s.until) < s.max {
				break
			}
			delete(s.until, k)
		}
	}
	s.until[key] = now.Add(s.ttl)
}

func (s *expiringSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.until)
}
