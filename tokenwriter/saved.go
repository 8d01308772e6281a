package tokenwriter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"
)

// savedFile is where tokenwriter keeps the tokens of the include it last
// installed, next to it and with its mode: the daemon starts with what
// `tokenwriter -once` (or its own previous run) put in place, so that one
// registry whose calls fail after a restart does not hold back the others
// (the include needs a token for every registry).
func savedFile(tokenFile string) string { return tokenFile + ".tokens.json" }

type savedToken struct {
	Registry   string    `json:"registry"` // Registry.String() with its endpoint
	Value      string    `json:"token"`
	Host       string    `json:"host"`
	Port       string    `json:"port"`
	ExpiresAt  time.Time `json:"expires_at"`
	RegistryID string    `json:"registry_id,omitempty"`
	Region     string    `json:"region,omitempty"`
}

func savedName(r Registry) string { return r.String() + "@" + r.Endpoint }

// saveTokens writes tokens (one per registry) to path atomically.
func saveTokens(path string, regs []Registry, tokens []Token, mode os.FileMode) error {
	out := make([]savedToken, len(tokens))
	for i, t := range tokens {
		out[i] = savedToken{savedName(regs[i]), string(t.Value), t.Host, t.Port, t.ExpiresAt, t.RegistryID, t.Region}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return writeAtomic(path, b, mode)
}

// loadTokens reads what saveTokens wrote, for the registries regs: a zero
// Token where the file has none for a registry, or one that fails the checks
// an ECR answer must pass (its fields go into nginx's configuration). A
// missing file is no error.
func loadTokens(path string, regs []Registry) ([]Token, error) {
	tokens := make([]Token, len(regs))
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tokens, nil
	}
	if err != nil {
		return tokens, err
	}
	var saved []savedToken
	if err := json.Unmarshal(b, &saved); err != nil {
		return tokens, fmt.Errorf("%s: %w", path, err)
	}
	byName := map[string]savedToken{}
	for _, s := range saved {
		byName[s.Registry] = s
	}
	for i, r := range regs {
		s, ok := byName[savedName(r)]
		if !ok || s.ExpiresAt.IsZero() || checkTokenValue(s.Value) != nil {
			continue
		}
		if _, _, err := parseHostPort(net.JoinHostPort(s.Host, s.Port)); err != nil {
			continue
		}
		tokens[i] = Token{Value: Secret(s.Value), Host: s.Host, Port: s.Port, ExpiresAt: s.ExpiresAt, RegistryID: s.RegistryID, Region: s.Region}
	}
	return tokens, nil
}
