package ecremu_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

// TestProxyToBackend uses a fake backend to see exactly what reaches it.
func TestProxyToBackend(t *testing.T) {
	var mu sync.Mutex
	var backendAuth []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		backendAuth = append(backendAuth, r.Header.Values("Authorization")...)
		mu.Unlock()
		w.Header().Set("Location", strings.ReplaceAll(r.URL.Query().Get("loc"), "BACKEND", "http://"+r.Host))
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(backend.Close)
	e := startEmulator(t, ecremu.Config{Backend: backend.URL})
	if err := e.CreateRepository("team/app"); err != nil {
		t.Fatal(err)
	}
	auth := basic("AWS", fetchToken(t, e))
	front := "https://" + e.RegistryHost()

	tests := []struct {
		name, loc, want string
	}{
		{"relative", "/v2/team/app/blobs/uploads/u1?_state=x", front + "/v2/team/app/blobs/uploads/u1?_state=x"},
		{"absolute on backend", "BACKEND/v2/team/app/blobs/uploads/u2", front + "/v2/team/app/blobs/uploads/u2"},
		{"other host untouched", "https://elsewhere.example/x", "https://elsewhere.example/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := frontRequest(t, e, http.MethodPost, "/v2/team/app/blobs/uploads/?loc="+urlQueryEscape(tt.loc), auth)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("got status %d; want 202", resp.StatusCode)
			}
			if got := resp.Header.Get("Location"); got != tt.want {
				t.Errorf("got Location %q; want %q", got, tt.want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(backendAuth) != 0 {
		t.Errorf("got Authorization at the backend %d times; want never", len(backendAuth))
	}
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "?", "%3F", "=", "%3D", "#", "%23", "+", "%2B")
	return r.Replace(s)
}

// TestLogsCarryNoSecrets runs a token fetch, a foreign credential and a
// push with a logger attached and looks for any secret in the output.
func TestLogsCarryNoSecrets(t *testing.T) {
	reg := startRegistry(t)
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := startEmulator(t, ecremu.Config{Backend: reg.URL(), Logger: logger, CreateOnPush: true})

	password := fetchToken(t, e)
	token := strings.TrimPrefix(basic("AWS", password), "Basic ")
	foreign := basic("alice", "alice-ldap-password")
	frontRequest(t, e, http.MethodGet, "/v2/", foreign)
	frontRequest(t, e, http.MethodPost, "/v2/team/app/blobs/uploads/", basic("AWS", password))

	out := buf.String()
	if !strings.Contains(out, "issued token") {
		t.Fatalf("got logs without the token issue line; the test would not see secrets:\n%s", out)
	}
	for _, secret := range []string{password[:32], token[:32], "alice-ldap-password", strings.TrimPrefix(foreign, "Basic "), testSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("got a secret %q... in the logs", secret[:8])
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
