package tokenwriter

import (
	"flag"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestRenderGolden(t *testing.T) {
	expires := time.Date(2026, 3, 1, 18, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		tok  Token
	}{
		{"short", Token{Value: Secret(testTokenValue(64, 1)), Host: "123456789012.dkr.ecr.eu-west-3.amazonaws.com", Port: "443", ExpiresAt: expires}},
		{"16k", Token{Value: Secret(testTokenValue(16384, 2)), Host: "123456789012.dkr.ecr.eu-west-3.amazonaws.com", Port: "443", ExpiresAt: expires}},
		{"pinned_port", Token{Value: Secret(testTokenValue(64, 3)), Host: "127.0.0.1", Port: "5443", ExpiresAt: expires.In(time.FixedZone("CET", 3600))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, tc.name, Render(tc.tok))
		})
	}
}

// The golden files pin the text; these properties say why it is right.
func TestRenderProperties(t *testing.T) {
	for _, n := range []int{8, 2996, 3000, 3004, 6000, 6144, 8192, 16384} {
		value := testTokenValue(n, uint64(n))
		out := string(Render(Token{Value: Secret(value), Host: "h.example", Port: "443", ExpiresAt: time.Unix(2e9, 0)}))
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")

		for i, line := range lines {
			for _, field := range strings.Fields(line) {
				if len(field) > 4096 {
					t.Errorf("n=%d line %d: argument of %d bytes; want at most 4096", n, i, len(field))
				}
			}
		}
		chunk := regexp.MustCompile(`^map "" \$ecr_token_(\d+) \{ default "([A-Za-z0-9+/=]+)"; \}$`)
		var joined strings.Builder
		var refs []string
		for _, line := range lines {
			if m := chunk.FindStringSubmatch(line); m != nil {
				if len(m[2]) > chunkSize {
					t.Errorf("n=%d: chunk %s of %d chars; want at most %d", n, m[1], len(m[2]), chunkSize)
				}
				joined.WriteString(m[2])
				refs = append(refs, "$ecr_token_"+m[1])
			}
		}
		if joined.String() != value {
			t.Errorf("n=%d: chunks join to %d chars; want the %d-char token", n, joined.Len(), len(value))
		}
		wantLast := `map $host $ecr_authorization { default "Basic ` + strings.Join(refs, "") + `"; }`
		if last := lines[len(lines)-1]; last != wantLast {
			t.Errorf("n=%d: last line %.80q; want %.80q", n, last, wantLast)
		}
		if strings.Contains(lines[0], value[:8]) {
			t.Errorf("n=%d: header comment carries the token", n)
		}
	}
}

func TestRenderIPv6(t *testing.T) {
	out := string(Render(Token{Value: "QVdTOnA=", Host: "::1", Port: "8443", ExpiresAt: time.Unix(2e9, 0)}))
	for _, want := range []string{"server [::1]:8443;", `$ecr_registry_host { default "[::1]:8443"; }`, "registry=[::1]:8443 "} {
		if !strings.Contains(out, want) {
			t.Errorf("include lacks %q:\n%s", want, out)
		}
	}
}
