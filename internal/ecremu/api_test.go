package ecremu_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

func decodeToken(token string) (user, password string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

func TestGetAuthorizationTokenSizes(t *testing.T) {
	const ttl = 3 * time.Hour
	e := startEmulator(t, ecremu.Config{TokenTTL: ttl})
	client := ecrClient(t, e, testAccessKey, testSecret, testRegion)

	tests := []struct {
		name     string
		set      int
		wantSize int
	}{
		{"default", 0, ecremu.DefaultTokenSize},
		{"6 KB", 6 * 1024, 6 * 1024},
		{"8 KB", 8 * 1024, 8 * 1024},
		{"16 KB", 16 * 1024, 16 * 1024},
		{"rounded up to base64 quantum", 6001, 6004},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.SetTokenSize(tt.set)
			before := time.Now()
			out, err := client.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(out.AuthorizationData); got != 1 {
				t.Fatalf("got %d authorizationData; want 1", got)
			}
			data := out.AuthorizationData[0]
			token := aws.ToString(data.AuthorizationToken)
			if len(token) != tt.wantSize {
				t.Errorf("got token length %d; want %d", len(token), tt.wantSize)
			}
			user, password, ok := decodeToken(token)
			if !ok || user != "AWS" || len(password) < 16 {
				t.Errorf("got user %q, password length %d, ok %v; want AWS and a long password", user, len(password), ok)
			}
			if got, want := aws.ToTime(data.ExpiresAt), before.Add(ttl); got.Sub(want).Abs() > 5*time.Second {
				t.Errorf("got expiresAt %v; want about %v", got, want)
			}
			if got, want := aws.ToString(data.ProxyEndpoint), "https://"+e.RegistryHost(); got != want {
				t.Errorf("got proxyEndpoint %q; want %q", got, want)
			}
		})
	}
}

func TestTokensDiffer(t *testing.T) {
	e := startEmulator(t, ecremu.Config{})
	if a, b := fetchToken(t, e), fetchToken(t, e); a == b {
		t.Error("got the same password twice; want a fresh random one per call")
	}
}

func TestRegistryIDs(t *testing.T) {
	e := startEmulator(t, ecremu.Config{})
	client := ecrClient(t, e, testAccessKey, testSecret, testRegion)

	out, err := client.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{
		RegistryIds: []string{"123456789012", "210987654321"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(out.AuthorizationData); got != 2 {
		t.Errorf("got %d authorizationData; want 2", got)
	}
	_, err = client.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{"12345"}})
	if got := apiErrorCode(err); got != "InvalidParameterException" {
		t.Errorf("got error %v; want InvalidParameterException", err)
	}
}

func TestRejectsBadSignatures(t *testing.T) {
	e := startEmulator(t, ecremu.Config{})
	tests := []struct {
		name             string
		key, secret, reg string
		wantCode         string
	}{
		{"wrong secret", testAccessKey, "not-the-secret", testRegion, "InvalidSignatureException"},
		{"unknown access key", "AKIDUNKNOWN", testSecret, testRegion, "UnrecognizedClientException"},
		{"wrong region", testAccessKey, testSecret, "us-west-2", "InvalidSignatureException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := ecrClient(t, e, tt.key, tt.secret, tt.reg)
			_, err := client.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
			if got := apiErrorCode(err); got != tt.wantCode {
				t.Errorf("got error %v; want %s", err, tt.wantCode)
			}
		})
	}
	if got := e.TokenCalls(); got != 0 {
		t.Errorf("got %d token calls counted; want 0 (all rejected before the operation)", got)
	}
}

// rawAPICall signs a request with the SDK signer, lets tamper change it
// afterwards, sends it and returns status and error type.
func rawAPICall(t *testing.T, e *ecremu.Emulator, sign bool, tamper func(*http.Request)) (int, string) {
	t.Helper()
	body := []byte(`{}`)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.APIURL()+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")
	if sign {
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecr", testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Type string `json:"__type"`
	}
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out.Type
}

func TestRawSignatureChecks(t *testing.T) {
	e := startEmulator(t, ecremu.Config{})
	tests := []struct {
		name       string
		sign       bool
		tamper     func(*http.Request)
		wantStatus int
		wantType   string
	}{
		{"signed", true, nil, http.StatusOK, ""},
		{"unsigned", false, nil, http.StatusBadRequest, "MissingAuthenticationTokenException"},
		{"unsigned header added later", true, func(r *http.Request) { r.Header.Set("X-Forwarded-For", "10.0.0.1") }, http.StatusOK, ""},
		{"body changed after signing", true, func(r *http.Request) {
			b := []byte(`{"registryIds":["123456789012"]}`)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}, http.StatusForbidden, "InvalidSignatureException"},
		{"signed header changed", true, func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories")
		}, http.StatusForbidden, "InvalidSignatureException"},
		{"date changed", true, func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().UTC().Add(-time.Minute).Format("20060102T150405Z"))
		}, http.StatusForbidden, "InvalidSignatureException"},
		{"signature expired", true, func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().UTC().Add(-time.Hour).Format("20060102T150405Z"))
		}, http.StatusForbidden, "InvalidSignatureException"},
		{"not sigv4", true, func(r *http.Request) { r.Header.Set("Authorization", "Basic QVdTOnNlY3JldA==") }, http.StatusBadRequest, "IncompleteSignatureException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, typ := rawAPICall(t, e, tt.sign, tt.tamper)
			if status != tt.wantStatus || typ != tt.wantType {
				t.Errorf("got %d %q; want %d %q", status, typ, tt.wantStatus, tt.wantType)
			}
		})
	}
}

func TestFailTokenCalls(t *testing.T) {
	tests := []struct {
		name      string
		kind      ecremu.FailKind
		failures  int
		wantCode  string // "" means the SDK call succeeds after retries
		wantCalls int
	}{
		{"server error outlasts retries", ecremu.InternalError, 3, "ServerException", 3},
		{"throttling outlasts retries", ecremu.Throttle, 5, "ThrottlingException", 3},
		{"one server error is retried", ecremu.InternalError, 1, "", 2},
		{"two throttles are retried", ecremu.Throttle, 2, "", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEmulator(t, ecremu.Config{})
			e.FailTokenCalls(tt.failures, tt.kind)
			out, err := ecrClient(t, e, testAccessKey, testSecret, testRegion).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
			if got := apiErrorCode(err); got != tt.wantCode {
				t.Errorf("got error %v; want code %q", err, tt.wantCode)
			}
			if err == nil && len(out.AuthorizationData) != 1 {
				t.Errorf("got %d authorizationData; want 1", len(out.AuthorizationData))
			}
			if got := e.TokenCalls(); got != tt.wantCalls {
				t.Errorf("got %d token calls; want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestRepositoryOperations(t *testing.T) {
	e := startEmulator(t, ecremu.Config{})
	client := ecrClient(t, e, testAccessKey, testSecret, testRegion)

	out, err := client.CreateRepository(t.Context(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.Repository.RepositoryUri), e.RegistryHost()+"/team/app"; got != want {
		t.Errorf("got repositoryUri %q; want %q", got, want)
	}
	_, err = client.CreateRepository(t.Context(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")})
	if got := apiErrorCode(err); got != "RepositoryAlreadyExistsException" {
		t.Errorf("got error %v on second create; want RepositoryAlreadyExistsException", err)
	}
	_, err = client.CreateRepository(t.Context(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("Team/App")})
	if got := apiErrorCode(err); got != "InvalidParameterException" {
		t.Errorf("got error %v for an upper-case name; want InvalidParameterException", err)
	}

	desc, err := client.DescribeRepositories(t.Context(), &ecr.DescribeRepositoriesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Repositories) != 1 || aws.ToString(desc.Repositories[0].RepositoryName) != "team/app" {
		t.Errorf("got repositories %+v; want just team/app", desc.Repositories)
	}
	_, err = client.DescribeRepositories(t.Context(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"missing"}})
	if got := apiErrorCode(err); got != "RepositoryNotFoundException" {
		t.Errorf("got error %v; want RepositoryNotFoundException", err)
	}
	if got := e.Repositories(); len(got) != 1 || got[0] != "team/app" {
		t.Errorf("got Repositories() %v; want [team/app]", got)
	}
}

func TestConfigValidate(t *testing.T) {
	err := ecremu.Config{Backend: "ftp://x", AccountID: "12"}.Validate()
	if err == nil {
		t.Fatal("got nil; want errors")
	}
	for _, want := range []string{"Backend", "AccessKeyID", "SecretAccessKey", "AccountID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q; want a problem naming %s", err, want)
		}
	}
}
