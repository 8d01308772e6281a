package e2e

import (
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends one request to the gateway's plain-HTTP listener. An empty
// authorization sends no Authorization header.
func (e *env) do(t *testing.T, method, path, authorization string) answer {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.httpAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func (e *env) remoteOpts(user, pass string) []remote.Option {
	return []remote.Option{
		remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})),
		remote.WithTransport(e.client.Transport),
	}
}

func (e *env) tokenFile() string { return filepath.Join(e.runDir, "conf", "ecr", "ecr.conf") }

var chunkRE = regexp.MustCompile(`\$ecr_token_\d+ \{ default "([A-Za-z0-9+/=]+)"; \}`)

// currentToken is the token in the include file, joined from its chunks.
func (e *env) currentToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(e.tokenFile())
	if err != nil {
		t.Fatal(err)
	}
	var tok strings.Builder
	for _, m := range chunkRE.FindAllStringSubmatch(string(b), -1) {
		tok.WriteString(m[1])
	}
	return tok.String()
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertNoForeignCredentials checks that nothing but ECR tokens reached the
// registry, and no credentials at all reached "S3".
func assertNoForeignCredentials(t *testing.T) {
	t.Helper()
	if got := e.emu.ForeignAuthorizations(); len(got) != 0 {
		t.Errorf("the registry received %d Authorization headers that are not ECR tokens; want 0", len(got))
	}
	if _, withAuth := e.emu.S3Requests(); withAuth != 0 {
		t.Errorf("S3 received %d requests with an Authorization header; want 0", withAuth)
	}
}
