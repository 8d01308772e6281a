package tokenwriter

import (
	"sync"
	"time"
)

// status is what tokenwriter knows about the token in place, shared by the
// refresh loop, the probe and the /readyz and /metrics handlers.
type status struct {
	mu           sync.Mutex
	token        Token     // in place; zero before the first success
	credsExpires time.Time // of the AWS credentials that minted it; zero if they do not expire
	lastSuccess  time.Time
	lastAttempt  time.Time
	failures     int // refreshes that failed, ever
	rejections   int // probes that found the token in place rejected, ever
}

func (s *status) attempted(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastAttempt = now
}

func (s *status) succeeded(tok Token, credsExpires, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.credsExpires, s.lastSuccess = tok, credsExpires, now
}

func (s *status) failed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
}

func (s *status) rejected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejections++
}

// current returns the token in place, zero before the first success.
func (s *status) current() Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// validUntil is when the token in place stops working: ECR's expiresAt, or the
// expiry of the credentials that minted it when that comes first (ECR does
// not honour a token past its credentials). Zero before the first success.
func (s *status) validUntil() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return validUntil(s.token.ExpiresAt, s.credsExpires)
}

func validUntil(tokenExpires, credsExpires time.Time) time.Time {
	if !credsExpires.IsZero() && credsExpires.Before(tokenExpires) {
		return credsExpires
	}
	return tokenExpires
}

func (s *status) lastAttemptAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAttempt
}

// snapshot is a copy for /metrics.
type snapshot struct {
	tokenExpires, credsExpires, lastSuccess time.Time
	failures, rejections                    int
}

func (s *status) snapshot() snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshot{s.token.ExpiresAt, s.credsExpires, s.lastSuccess, s.failures, s.rejections}
}
