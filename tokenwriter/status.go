package tokenwriter

import (
	"sync"
	"time"
)

// status is what tokenwriter knows about the tokens in place, one entry per
// registry (in the order of Config.Routes), shared by the refresh loop, the
// probe and the /readyz and /metrics handlers.
type status struct {
	mu   sync.Mutex
	regs []registryStatus
}

type registryStatus struct {
	name         string    // Registry.String()
	token        Token     // in place; zero before the first success
	credsExpires time.Time // of the AWS credentials that minted it; zero if they do not expire
	lastSuccess  time.Time
	lastAttempt  time.Time
	next         time.Time // when to refresh next; zero: at once
	failures     int       // refreshes that failed, ever
	failing      int       // refreshes that failed since the last success
	rejections   int       // probes that found the token in place rejected, ever
	rejected     Secret    // the token value the last probe found rejected; "" after an accepted probe
}

func newStatus(registries []Registry) *status {
	s := &status{regs: make([]registryStatus, len(registries))}
	for i, r := range registries {
		s.regs[i].name = r.String()
	}
	return s
}

func (s *status) attempted(due []int, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range due {
		s.regs[i].lastAttempt = now
	}
}

func (s *status) succeeded(i int, tok Token, credsExpires, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.regs[i]
	r.token, r.credsExpires, r.lastSuccess, r.failing = tok, credsExpires, now, 0
}

// seed takes tokens[i] as registry i's token in place where it has none.
func (s *status) seed(tokens []Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range tokens {
		if s.regs[i].token.Value == "" && t.Value != "" {
			s.regs[i].token = t
		}
	}
}

// failed counts a failed refresh of registry i and returns how many failed in a row.
func (s *status) failed(i int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regs[i].failures++
	s.regs[i].failing++
	return s.regs[i].failing
}

// rejected counts a rejection of registry i's token value. While value is
// still in place it brings the registry's next refresh forward to now, but
// no sooner than gap after its last attempt, and returns how long until then
// and true; it returns false when value was replaced meanwhile.
func (s *status) rejected(i int, value Secret, now time.Time, gap time.Duration) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.regs[i]
	r.rejections++
	if r.token.Value != value {
		return 0, false
	}
	r.rejected = value
	at := r.lastAttempt.Add(gap)
	if at.Before(now) {
		at = now
	}
	if !r.next.IsZero() && at.Before(r.next) { // zero: due already
		r.next = at
	}
	return max(r.next.Sub(now), 0), true
}

// accepted records that the registry took registry i's token value, and
// reports whether that token was flagged rejected until now.
func (s *status) accepted(i int, value Secret) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.regs[i].rejected == value && value != "" {
		s.regs[i].rejected = ""
		return s.regs[i].token.Value == value
	}
	return false
}

// isRejected reports whether registry i's token in place is flagged rejected.
func (s *status) isRejected(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.regs[i]
	return r.rejected != "" && r.rejected == r.token.Value
}

// rejectedFlags reports, for each of tokens, whether the registry rejected
// that very token value at its last probe.
func (s *status) rejectedFlags(tokens []Token) []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	flags := make([]bool, len(tokens))
	for i, t := range tokens {
		flags[i] = t.Value != "" && s.regs[i].rejected == t.Value
	}
	return flags
}

func (s *status) setNext(i int, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regs[i].next = next
}

// due returns the registries to refresh at now: those whose time has come,
// and those due within window of now, so that registries on the same
// schedule share one reload. It also returns the earliest next refresh.
func (s *status) due(now time.Time, window time.Duration) (due []int, earliest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.regs {
		if earliest.IsZero() || r.next.Before(earliest) {
			earliest = r.next
		}
	}
	if earliest.After(now) {
		return nil, earliest
	}
	for i, r := range s.regs {
		if !r.next.After(now.Add(window)) {
			due = append(due, i)
		}
	}
	return due, earliest
}

// tokens returns the tokens in place, zero for a registry without one yet.
func (s *status) tokens() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Token, len(s.regs))
	for i, r := range s.regs {
		out[i] = r.token
	}
	return out
}

// current returns the primary registry's token in place, zero before the first success.
func (s *status) current() Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.regs[0].token
}

// registryValidUntil is when registry i's token in place stops working: ECR's
// expiresAt, or the expiry of the credentials that minted it when that comes
// first (ECR does not honour a token past its credentials). Zero before the
// first success.
func (s *status) registryValidUntil(i int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return validUntil(s.regs[i].token.ExpiresAt, s.regs[i].credsExpires)
}

// validUntil is the earliest registryValidUntil; zero while any registry has
// no token yet.
func (s *status) validUntil() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var earliest time.Time
	for i, r := range s.regs {
		v := validUntil(r.token.ExpiresAt, r.credsExpires)
		if v.IsZero() {
			return time.Time{}
		}
		if i == 0 || v.Before(earliest) {
			earliest = v
		}
	}
	return earliest
}

func validUntil(tokenExpires, credsExpires time.Time) time.Time {
	if !credsExpires.IsZero() && credsExpires.Before(tokenExpires) {
		return credsExpires
	}
	return tokenExpires
}

// snapshot is a copy of one registry's status for /metrics and /readyz.
type snapshot struct {
	name                                    string
	tokenExpires, credsExpires, lastSuccess time.Time
	failures, rejections                    int
	// rejected: the last probe of the token in place found it rejected.
	rejected bool
}

func (s *status) snapshots() []snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]snapshot, len(s.regs))
	for i, r := range s.regs {
		out[i] = snapshot{r.name, r.token.ExpiresAt, r.credsExpires, r.lastSuccess, r.failures, r.rejections,
			r.rejected != "" && r.rejected == r.token.Value}
	}
	return out
}

// snapshot is the primary registry's snapshot.
func (s *status) snapshot() snapshot { return s.snapshots()[0] }
