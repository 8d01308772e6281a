package tokenwriter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeECRAPI is an httptest server speaking enough of the ECR API (AWS JSON
// 1.1) for GetAuthorizationToken, recording each request.
type fakeECRAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
}

type recordedRequest struct {
	header http.Header
	body   string
}

func newFakeECRAPI(t *testing.T, token string) *fakeECRAPI {
	f := &fakeECRAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, recordedRequest{header: r.Header.Clone(), body: string(body)})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprintf(w, `{"authorizationData":[{"authorizationToken":%q,"expiresAt":%.3f,"proxyEndpoint":"https://123456789012.dkr.ecr.eu-west-3.amazonaws.com"}]}`,
			token, float64(time.Now().Add(12*time.Hour).UnixMilli())/1000)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeECRAPI) last(t *testing.T) recordedRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("the ECR API got no request")
	}
	return f.requests[len(f.requests)-1]
}

// isolateAWSEnv leaves the SDK nothing to find but what the test sets: no
// credentials or region in the environment, empty shared files, no IMDS.
func isolateAWSEnv(t *testing.T, endpoint string) {
	t.Helper()
	for _, name := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL",
	} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	dir := t.TempDir()
	for _, name := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(name, path)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL_ECR", endpoint)
}

// Case G12: the old image's REGION, AWS_KEY and AWS_SECRET sign the call; the
// SDK's default chain is used without them.
func TestRealSDKCredentials(t *testing.T) {
	token := testTokenValue(6400, 9)
	for _, tc := range []struct {
		name       string
		env        map[string]string
		wantKey    string
		wantRegion string
		wantIDs    bool
	}{
		{"old image's variables", map[string]string{"REGION": "eu-west-3", "AWS_KEY": "AKIDOLDIMAGE", "AWS_SECRET": "old-secret"}, "AKIDOLDIMAGE", "eu-west-3", false},
		{"registry id", map[string]string{"REGION": "eu-west-3", "AWS_KEY": "AKIDOLDIMAGE", "AWS_SECRET": "old-secret", "ECR_REGISTRY_ID": "123456789012"}, "AKIDOLDIMAGE", "eu-west-3", true},
		{"default chain", map[string]string{"AWS_REGION": "us-east-2", "REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "AKIDFROMCHAIN", "AWS_SECRET_ACCESS_KEY": "chain-secret"}, "AKIDFROMCHAIN", "us-east-2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeECRAPI(t, token)
			isolateAWSEnv(t, api.URL)
			dir := t.TempDir()
			env := map[string]string{"TOKEN_FILE": filepath.Join(dir, "ecr.conf"), "NGINX_TEST_COMMAND": "true"}
			for k, v := range tc.env {
				env[k] = v
			}
			setConfigEnv(t, env)
			for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
				if v, ok := tc.env[name]; ok {
					t.Setenv(name, v)
				}
			}

			cfg, err := Load()
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			client, err := NewECRClient(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := NewRefresher(client, nil, cfg, discardLogger())
			err = r.Refresh(ctx)
			tok := r.state.current()
			if err != nil {
				t.Fatalf("refresh through the SDK: %v", err)
			}
			if string(tok.Value) != token {
				t.Errorf("got a %d-char token; want the %d-char one the API sent", len(tok.Value), len(token))
			}

			req := api.last(t)
			if got, want := req.header.Get("X-Amz-Target"), "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"; got != want {
				t.Errorf("got X-Amz-Target %q; want %q", got, want)
			}
			scope := regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=` + tc.wantKey + `/\d{8}/` + tc.wantRegion + `/ecr/aws4_request,`)
			if auth := req.header.Get("Authorization"); !scope.MatchString(auth) {
				t.Errorf("got Authorization %q; want it signed by %s for %s/ecr", auth, tc.wantKey, tc.wantRegion)
			}
			var body struct {
				RegistryIDs []string `json:"registryIds"`
			}
			if err := json.Unmarshal([]byte(req.body), &body); err != nil {
				t.Fatalf("body %q: %v", req.body, err)
			}
			if tc.wantIDs != (strings.Join(body.RegistryIDs, ",") == "123456789012") {
				t.Errorf("got body %s; want registryIds [123456789012]: %v", req.body, tc.wantIDs)
			}
		})
	}
}

// Run and Once as cmd/tokenwriter calls them: logs name the registry, the expiry
// and the next refresh, never the token.
func TestRunAndOnceEntryPoints(t *testing.T) {
	token := testTokenValue(6400, 11)
	api := newFakeECRAPI(t, token)
	isolateAWSEnv(t, api.URL)
	dir := t.TempDir()
	setConfigEnv(t, map[string]string{
		"REGION": "eu-west-3", "AWS_KEY": "AKIDOLDIMAGE", "AWS_SECRET": "old-secret",
		"TOKEN_FILE": filepath.Join(dir, "ecr.conf"), "NGINX_TEST_COMMAND": "true",
		"NGINX_PID_FILE": filepath.Join(dir, "nginx.pid"), // nginx not started
	})
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))

	if err := Once(context.Background(), cfg, logger); err != nil {
		t.Fatalf("Once: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, logger) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "next_refresh") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v; want nil after cancel", err)
	}

	out := logs.String()
	for _, want := range []string{"reload skipped", `"registry":"123456789012.dkr.ecr.eu-west-3.amazonaws.com"`, `"expires":`, `"next_refresh":`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, token[:20]) || strings.Contains(out, "old-secret") {
		t.Errorf("logs carry a secret:\n%s", out)
	}
	if data, err := os.ReadFile(cfg.TokenFile); err != nil || !strings.Contains(string(data), token[:3000]) {
		t.Errorf("include not written with the token: %v", err)
	}
}
