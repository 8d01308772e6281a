package tokenwriter

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

func TestTokenFrom(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later := now.Add(12 * time.Hour)
	good := testTokenValue(64, 1)
	const ep = "https://123456789012.dkr.ecr.eu-west-3.amazonaws.com"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	for _, tc := range []struct {
		name       string
		data       []types.AuthorizationData
		registryID string
		pinned     string
		wantHost   string
		wantPort   string
		wantErr    string // substring; empty: success
	}{
		{name: "one entry", data: []types.AuthorizationData{authData(good, ep, later)},
			wantHost: "123456789012.dkr.ecr.eu-west-3.amazonaws.com", wantPort: "443"},
		{name: "endpoint with port", data: []types.AuthorizationData{authData(good, "https://127.0.0.1:5443", later)},
			wantHost: "127.0.0.1", wantPort: "5443"},
		{name: "endpoint with slash", data: []types.AuthorizationData{authData(good, ep+"/", later)},
			wantHost: "123456789012.dkr.ecr.eu-west-3.amazonaws.com", wantPort: "443"},
		{name: "pinned host", data: []types.AuthorizationData{authData(good, ep, later)}, pinned: "ecr.internal:8443",
			wantHost: "ecr.internal", wantPort: "8443"},
		{name: "pinned host without port", data: []types.AuthorizationData{authData(good, "https://127.0.0.1:5443", later)}, pinned: "ecr.internal",
			wantHost: "ecr.internal", wantPort: "443"},
		{name: "pick by registry id", registryID: "210987654321", data: []types.AuthorizationData{
			authData(good, ep, later), authData(good, "https://210987654321.dkr.ecr.eu-west-3.amazonaws.com", later)},
			wantHost: "210987654321.dkr.ecr.eu-west-3.amazonaws.com", wantPort: "443"},

		{name: "no entries", wantErr: "no authorizationData"},
		{name: "two entries, no id", data: []types.AuthorizationData{authData(good, ep, later), authData(good, ep, later)},
			wantErr: "set ECR_REGISTRY_ID"},
		{name: "two entries, none match", registryID: "999999999999", data: []types.AuthorizationData{authData(good, ep, later), authData(good, ep, later)},
			wantErr: "0 of 2"},
		{name: "empty token", data: []types.AuthorizationData{authData("", ep, later)}, wantErr: "empty"},
		{name: "nil token", data: []types.AuthorizationData{{ProxyEndpoint: aws.String(ep), ExpiresAt: aws.Time(later)}}, wantErr: "empty"},
		{name: "quote in token", data: []types.AuthorizationData{authData(good[:8]+`";}`+good[11:], ep, later)}, wantErr: "outside base64"},
		{name: "dollar in token", data: []types.AuthorizationData{authData("$ecr_token_0", ep, later)}, wantErr: "outside base64"},
		{name: "newline in token", data: []types.AuthorizationData{authData(good[:8]+"\n"+good[9:], ep, later)}, wantErr: "outside base64"},
		{name: "not base64", data: []types.AuthorizationData{authData("QVdTOnA", ep, later)}, wantErr: "not base64"},
		{name: "padding inside", data: []types.AuthorizationData{authData("QV==QVdT", ep, later)}, wantErr: "not base64"},
		{name: "other user", data: []types.AuthorizationData{authData(b64("bob:secret"), ep, later)}, wantErr: "AWS:<password>"},
		{name: "empty password", data: []types.AuthorizationData{authData(b64("AWS:"), ep, later)}, wantErr: "AWS:<password>"},
		{name: "no colon", data: []types.AuthorizationData{authData(b64("AWSsecret"), ep, later)}, wantErr: "AWS:<password>"},
		{name: "expired", data: []types.AuthorizationData{authData(good, ep, now)}, wantErr: "expired"},
		{name: "no expiry", data: []types.AuthorizationData{{AuthorizationToken: aws.String(good), ProxyEndpoint: aws.String(ep)}}, wantErr: "no expiresAt"},
		{name: "http endpoint", data: []types.AuthorizationData{authData(good, "http://h.example", later)}, wantErr: "not https"},
		{name: "no endpoint", data: []types.AuthorizationData{{AuthorizationToken: aws.String(good), ExpiresAt: aws.Time(later)}}, wantErr: "not https"},
		{name: "endpoint with path", data: []types.AuthorizationData{authData(good, ep+"/v2/", later)}, wantErr: "not https"},
		{name: "endpoint with user", data: []types.AuthorizationData{authData(good, "https://u:p@h.example", later)}, wantErr: "not https"},
		{name: "endpoint host with quote", data: []types.AuthorizationData{authData(good, `https://h"x.example`, later)}, wantErr: "proxyEndpoint"},
		{name: "endpoint host with semicolon", data: []types.AuthorizationData{authData(good, `https://h;x.example`, later)}, wantErr: "proxyEndpoint"},
		{name: "endpoint bad port", data: []types.AuthorizationData{authData(good, "https://h.example:99999", later)}, wantErr: "proxyEndpoint"},
		{name: "pinned host bad", data: []types.AuthorizationData{authData(good, ep, later)}, pinned: "a b", wantErr: "registry endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tokenFrom(tc.data, Registry{AccountID: tc.registryID, Endpoint: tc.pinned}, now)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrInvalidToken) && !strings.Contains(tc.wantErr, "registry endpoint") {
					t.Errorf("got error %v; want one wrapping ErrInvalidToken", err)
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v; want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), good[:16]) {
					t.Errorf("error %q carries the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if tok.Host != tc.wantHost || tok.Port != tc.wantPort {
				t.Errorf("got %s port %s; want %s port %s", tok.Host, tok.Port, tc.wantHost, tc.wantPort)
			}
			if string(tok.Value) != good || !tok.ExpiresAt.Equal(later) {
				t.Errorf("got token of %d chars expiring %s; want the %d-char token expiring %s", len(tok.Value), tok.ExpiresAt, len(good), later)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	tok := Token{Value: "QVdTOnNlY3JldA==", Host: "h"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "token", tok, "value", tok.Value)
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok), tok.Value.String(), logged.String()} {
		if strings.Contains(s, "QVdTOnNlY3JldA") {
			t.Errorf("got %q; want the token hidden", s)
		}
	}
}

// FuzzTokenFrom: whatever ECR sends, an accepted answer renders an include whose
// values cannot break out of their quotes or add directives.
func FuzzTokenFrom(f *testing.F) {
	f.Add(testTokenValue(64, 1), "https://123456789012.dkr.ecr.eu-west-3.amazonaws.com")
	f.Add("QVdTOnA=", "https://[::1]:8443")
	f.Add(`QVdTOnA="; }`, `https://h";x`)
	f.Add("QVdTOnA=", "https://h.example:0443/")
	now := time.Unix(1e9, 0)
	f.Fuzz(func(t *testing.T, token, endpoint string) {
		tok, err := tokenFrom([]types.AuthorizationData{authData(token, endpoint, now.Add(time.Hour))}, Registry{}, now)
		if err != nil {
			return
		}
		out := string(Render(tok))
		chunks := 1 + (len(token)-1)/chunkSize
		if got, want := strings.Count(out, "\n"), 10+chunks; got != want {
			t.Fatalf("include has %d lines; want %d:\n%s", got, want, out)
		}
		if got, want := strings.Count(out, `"`), 4*chunks+10; got != want {
			t.Fatalf("include has %d quotes; want %d:\n%s", got, want, out)
		}
		if strings.ContainsAny(tok.Host+tok.Port, "\"';{}$ \t\r\n\\#") {
			t.Fatalf("accepted host %q port %q", tok.Host, tok.Port)
		}
	})
}
