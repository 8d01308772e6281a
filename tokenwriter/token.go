package tokenwriter

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// ErrInvalidToken reports an ECR answer that cannot go into the include.
var ErrInvalidToken = errors.New("invalid ecr authorization")

// maxTokenLen bounds what is written into nginx's configuration; ECR tokens are
// about 6.4 KB today.
const maxTokenLen = 256 << 10

// Secret is a string that never prints itself.
type Secret string

// String returns "***".
func (Secret) String() string { return "***" }

// GoString returns "***" quoted, for %#v.
func (Secret) GoString() string { return `"***"` }

// MarshalText keeps the secret out of JSON and other encodings.
func (Secret) MarshalText() ([]byte, error) { return []byte("***"), nil }

// LogValue keeps the secret out of slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue("***") }

// Token is a checked ECR authorization, ready to be rendered into the include.
type Token struct {
	// Value is the authorizationToken as ECR sent it: base64 of "AWS:<password>".
	Value Secret
	// Host is the registry host (Host header and TLS name), Port its port.
	Host string
	Port string
	// ExpiresAt is when ECR stops accepting Value.
	ExpiresAt time.Time
	// RegistryID is the registry's account id: the one asked for, or the one
	// the proxyEndpoint names; empty when neither says. Region is the region
	// of the ECR API that minted the token.
	RegistryID string
	Region     string
}

// tokenFrom picks and checks the authorizationData entry for reg.
func tokenFrom(data []types.AuthorizationData, reg Registry, now time.Time) (Token, error) {
	d, err := pickEntry(data, reg.AccountID)
	if err != nil {
		return Token{}, err
	}
	value := aws.ToString(d.AuthorizationToken)
	if err := checkTokenValue(value); err != nil {
		return Token{}, err
	}
	if d.ExpiresAt == nil {
		return Token{}, fmt.Errorf("%w: no expiresAt", ErrInvalidToken)
	}
	if !d.ExpiresAt.After(now) {
		return Token{}, fmt.Errorf("%w: expired at %s", ErrInvalidToken, d.ExpiresAt.UTC().Format(time.RFC3339))
	}
	host, port, err := parseEndpoint(aws.ToString(d.ProxyEndpoint))
	if err != nil {
		return Token{}, err
	}
	id := reg.AccountID
	if m := ecrHostPattern.FindStringSubmatch(host); m != nil && id == "" {
		id = m[1]
	}
	if reg.Endpoint != "" {
		if host, port, err = parseHostPort(reg.Endpoint); err != nil {
			return Token{}, fmt.Errorf("registry endpoint: %w", err)
		}
	}
	return Token{Value: Secret(value), Host: host, Port: port, ExpiresAt: *d.ExpiresAt, RegistryID: id, Region: reg.Region}, nil
}

func pickEntry(data []types.AuthorizationData, registryID string) (types.AuthorizationData, error) {
	switch {
	case len(data) == 1:
		return data[0], nil
	case len(data) == 0:
		return types.AuthorizationData{}, fmt.Errorf("%w: no authorizationData", ErrInvalidToken)
	case registryID == "":
		return types.AuthorizationData{}, fmt.Errorf("%w: %d authorizationData entries; set ECR_REGISTRY_ID to choose", ErrInvalidToken, len(data))
	}
	// ECR names no registry in an entry; its proxyEndpoint host starts with the account id.
	var found []types.AuthorizationData
	for _, d := range data {
		if u, err := url.Parse(aws.ToString(d.ProxyEndpoint)); err == nil && strings.HasPrefix(u.Hostname(), registryID+".") {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		return types.AuthorizationData{}, fmt.Errorf("%w: %d of %d authorizationData entries match registry id %s", ErrInvalidToken, len(found), len(data), registryID)
	}
	return found[0], nil
}

// checkTokenValue accepts padded standard base64 of "AWS:<non-empty password>".
// Base64 characters cannot end the quoted nginx string the token is written into.
func checkTokenValue(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty authorizationToken", ErrInvalidToken)
	}
	if len(s) > maxTokenLen {
		return fmt.Errorf("%w: authorizationToken of %d bytes", ErrInvalidToken, len(s))
	}
	for i := 0; i < len(s); i++ {
		if !isBase64Char(s[i]) {
			return fmt.Errorf("%w: authorizationToken has a byte outside base64 at offset %d", ErrInvalidToken, i)
		}
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return fmt.Errorf("%w: authorizationToken is not base64", ErrInvalidToken)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" || password == "" {
		return fmt.Errorf("%w: authorizationToken does not decode to AWS:<password>", ErrInvalidToken)
	}
	return nil
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '='
}

// parseEndpoint returns host and port of an https proxyEndpoint; port is 443 when absent.
func parseEndpoint(s string) (host, port string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("%w: proxyEndpoint %q does not parse", ErrInvalidToken, s)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%w: proxyEndpoint %q is not https://host[:port]", ErrInvalidToken, s)
	}
	if host, port, err = parseHostPort(u.Host); err != nil {
		return "", "", fmt.Errorf("%w: proxyEndpoint: %w", ErrInvalidToken, err)
	}
	return host, port, nil
}

// parseHostPort splits host[:port] (IPv6 in brackets) and rejects anything that
// is not a DNS name or an IP address, since both go into nginx's configuration.
func parseHostPort(s string) (host, port string, err error) {
	host, port = s, "443"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return "", "", fmt.Errorf("bad port in %q", s)
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if addr, err := netip.ParseAddr(host); err == nil && addr.Zone() == "" {
		return host, port, nil
	}
	if !isDNSName(host) {
		return "", "", fmt.Errorf("%q is not a host name or IP address", s)
	}
	return host, port, nil
}

func isDNSName(s string) bool {
	if s == "" || len(s) > 253 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(s, "..")
}
