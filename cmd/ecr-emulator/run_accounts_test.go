package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

var accountLine = regexp.MustCompile(`^# account ([0-9]{12}): registry https://(\S+), s3 (\S+), backend (\S+), repositories: (.*)$`)

type printedAccount struct{ host, s3, backend, repos string }

// TestRunTwoAccounts starts the command with a second account, its front
// pinned, each over its own docker-registry: what it prints names both
// fronts and their repositories, each front serves only its own
// repositories and stores in its own registry, and one
// GetAuthorizationToken naming both returns both fronts.
func TestRunTwoAccounts(t *testing.T) {
	if _, err := os.Stat("/usr/bin/docker-registry"); err != nil {
		t.Skipf("docker-registry not installed: %v", err)
	}
	const a, b = "111111111111", "222222222222"
	pinned := freeAddr(t)
	dir := t.TempDir()
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	args := []string{"-dir", dir, "-ca-out", caPath, "-account", a, "-accounts", b + "=" + pinned,
		"-repos", "team/a,team/shared," + b + ":team/b," + b + ":team/shared"}

	pr := startRun(t, args)
	vars, accounts := map[string]string{}, map[string]printedAccount{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := accountLine.FindStringSubmatch(sc.Text()); m != nil {
			accounts[m[1]] = printedAccount{m[2], m[3], m[4], m[5]}
		}
		k, v, _ := strings.Cut(sc.Text(), "=")
		vars[k] = v
		if k == "ECR_REGISTRIES" {
			break
		}
	}
	go io.Copy(io.Discard, pr)

	frontA, frontB := accounts[a], accounts[b]
	if frontA.host != vars["ECR_REGISTRY_HOST"] || frontA.repos != "team/a team/shared" || frontA.backend != vars["ECR_EMULATOR_BACKEND"] {
		t.Errorf("account %s got %+v; want front %s, repositories team/a team/shared, backend %s",
			a, frontA, vars["ECR_REGISTRY_HOST"], vars["ECR_EMULATOR_BACKEND"])
	}
	_, port, _ := net.SplitHostPort(pinned)
	if frontB.host != "localhost:"+port || frontB.repos != "team/b team/shared" || frontB.backend == frontA.backend || frontB.s3 == frontA.s3 {
		t.Errorf("account %s got %+v; want front localhost:%s, repositories team/b team/shared, its own backend and S3", b, frontB, port)
	}
	if _, err := os.Stat(filepath.Join(dir, "registry-"+b, "config.yml")); err != nil {
		t.Errorf("got %v; want account %s's docker-registry in its own directory", err, b)
	}
	if want := "localhost=" + a + "@" + frontA.host + "," + b + ".localhost=" + b + "@" + frontB.host; vars["ECR_REGISTRIES"] != want {
		t.Errorf("ECR_REGISTRIES got %q; want %q", vars["ECR_REGISTRIES"], want)
	}

	client := ecr.New(ecr.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("demo", "demo-secret", ""),
		BaseEndpoint: aws.String(vars["AWS_ENDPOINT_URL_ECR"]),
	})
	out, err := client.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, d := range out.AuthorizationData {
		endpoints = append(endpoints, aws.ToString(d.ProxyEndpoint))
	}
	if want := []string{"https://" + frontA.host, "https://" + frontB.host}; !slices.Equal(endpoints, want) {
		t.Fatalf("proxyEndpoints got %q; want %q", endpoints, want)
	}

	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: got %q; want the CA certificate", caPath, pem)
	}
	hc := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	t.Cleanup(hc.CloseIdleConnections)
	token := aws.ToString(out.AuthorizationData[0].AuthorizationToken)
	send := func(method, url string, body []byte) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Basic "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	do := func(method, host, path string, body []byte) int {
		t.Helper()
		return send(method, "https://"+host+path, body).StatusCode
	}

	for _, tt := range []struct {
		account, host, repo string
		want                int
	}{
		{a, frontA.host, "team/a", http.StatusAccepted},
		{a, frontA.host, "team/b", http.StatusNotFound},
		{b, frontB.host, "team/b", http.StatusAccepted},
		{b, frontB.host, "team/a", http.StatusNotFound},
	} {
		if got := do(http.MethodPost, tt.host, "/v2/"+tt.repo+"/blobs/uploads/", nil); got != tt.want {
			t.Errorf("account %s: upload to %s got %d; want %d", tt.account, tt.repo, got, tt.want)
		}
	}

	// team/shared exists in both accounts, in two registries: a blob pushed
	// to one is not in the other.
	blob := []byte("account " + a + " only")
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	start := send(http.MethodPost, "https://"+frontA.host+"/v2/team/shared/blobs/uploads/", nil)
	loc, err := url.Parse(start.Header.Get("Location"))
	if start.StatusCode != http.StatusAccepted || err != nil || loc.Host != frontA.host {
		t.Fatalf("upload start on account %s got %d Location %q; want 202 on %s", a, start.StatusCode, loc, frontA.host)
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	if got := send(http.MethodPut, loc.String(), blob).StatusCode; got != http.StatusCreated {
		t.Fatalf("upload to account %s got %d; want 201", a, got)
	}
	for _, tt := range []struct {
		account, host string
		want          int
	}{{a, frontA.host, http.StatusOK}, {b, frontB.host, http.StatusNotFound}} {
		if got := do(http.MethodHead, tt.host, "/v2/team/shared/blobs/"+digest, nil); got != tt.want {
			t.Errorf("account %s: HEAD of the blob got %d; want %d", tt.account, got, tt.want)
		}
	}
}
