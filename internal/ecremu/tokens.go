package ecremu

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

const (
	// DefaultTokenSize is the length of a base64 authorizationToken, about
	// what ECR hands out today.
	DefaultTokenSize = 6400
	// MinTokenSize is the smallest token size accepted; smaller sizes are raised to it.
	MinTokenSize = 32
	// DefaultTokenTTL is how long ECR tokens stay valid.
	DefaultTokenTTL = 12 * time.Hour

	tokenUser = "AWS"
)

// normalizeTokenSize maps a requested base64 length onto one that padded
// base64 can produce: at least MinTokenSize, rounded up to a multiple of 4.
// Zero or less means DefaultTokenSize.
func normalizeTokenSize(n int) int {
	switch {
	case n <= 0:
		return DefaultTokenSize
	case n < MinTokenSize:
		n = MinTokenSize
	}
	return (n + 3) / 4 * 4
}

// newToken returns base64("AWS:"+password) of exactly size characters (size
// must be normalized) and the random password inside it.
func newToken(size int) (token, password string, err error) {
	raw := make([]byte, size/4*3-len(tokenUser)-1)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("ecremu: token: %w", err)
	}
	// Like ECR's, the password is printable and itself base64-looking.
	password = base64.RawStdEncoding.EncodeToString(raw)[:len(raw)]
	token = base64.StdEncoding.EncodeToString([]byte(tokenUser + ":" + password))
	return token, password, nil
}

// authResult is what the front makes of a request's Authorization header.
type authResult int

const (
	authMissing authResult = iota // no Authorization header: 401
	authValid                     // a live token from this emulator
	authStale                     // a token from this emulator, expired or revoked: 403
	authForeign                   // anything else, such as a user's own credentials: 403
)

type issuedToken struct {
	expires  time.Time
	revoked  bool
	accounts []string // the registries the call that minted it named
}

// tokenStore remembers every token issued, keyed by a hash of its password
// so the map holds no secret, and every foreign Authorization value seen.
type tokenStore struct {
	mu           sync.Mutex
	issued       map[[sha256.Size]byte]issuedToken
	foreign      []string
	crossAccount int // valid tokens used on a front of an account they were not minted for
}

func newTokenStore() *tokenStore {
	return &tokenStore{issued: make(map[[sha256.Size]byte]issuedToken)}
}

func (s *tokenStore) add(password string, expires time.Time) { s.addFor(password, expires, nil) }

// addFor records a token minted by a call that named accounts.
func (s *tokenStore) addFor(password string, expires time.Time, accounts []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued[sha256.Sum256([]byte(password))] = issuedToken{expires: expires, accounts: accounts}
}

// noteAccount counts r's token, already found valid, when it was minted for
// other accounts than account.
func (s *tokenStore) noteAccount(r *http.Request, account string) {
	_, password, _ := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.issued[sha256.Sum256([]byte(password))]; ok && t.accounts != nil && !slices.Contains(t.accounts, account) {
		s.crossAccount++
	}
}

func (s *tokenStore) crossAccountUses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.crossAccount
}

func (s *tokenStore) revokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.issued {
		t.revoked = true
		s.issued[k] = t
	}
}

// check classifies r's Authorization header and records it when foreign.
func (s *tokenStore) check(r *http.Request, now time.Time) authResult {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return authMissing
	}
	user, password, ok := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok && len(values) == 1 && user == tokenUser {
		if t, known := s.issued[sha256.Sum256([]byte(password))]; known {
			if t.revoked || !now.Before(t.expires) {
				return authStale
			}
			return authValid
		}
	}
	s.foreign = append(s.foreign, values...)
	return authForeign
}

func (s *tokenStore) foreignValues() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.foreign...)
}
