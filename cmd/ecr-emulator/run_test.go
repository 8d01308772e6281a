package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

// freeAddr returns a loopback address no one listens on at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestRunFixedAddresses runs the command as the compose demo does: fixed
// listen addresses, the front named by a service name, blob redirects to a
// published port. The CA written by -ca-out verifies the front for that name
// and for -cert-host; proxyEndpoint and the redirects carry the hosts given.
func TestRunFixedAddresses(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK) // every blob exists
	}))
	t.Cleanup(backend.Close)
	apiAddr, frontAddr, s3Addr := freeAddr(t), freeAddr(t), freeAddr(t)
	caPath := filepath.Join(t.TempDir(), "ecr-ca.pem")
	// Left by an earlier run: must be replaced, never passed off as current.
	if err := os.WriteFile(caPath, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-backend", backend.URL, "-ca-out", caPath, "-repos", "demo/hello",
		"-api-addr", apiAddr, "-registry-addr", frontAddr, "-s3-addr", s3Addr,
		"-registry-host", "demo-ecr:5443", "-cert-host", "ecr.demo.test,10.9.8.7", "-s3-host", "localhost:5002"}

	pr := startRun(t, args)
	vars := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		vars[k] = v
		if k == "ECR_EMULATOR_BACKEND" {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	for k, want := range map[string]string{
		"AWS_ENDPOINT_URL_ECR": "http://" + apiAddr,
		"ECR_REGISTRY_HOST":    "demo-ecr:5443",
		"ECR_EMULATOR_S3_URL":  "http://localhost:5002",
	} {
		if vars[k] != want {
			t.Errorf("%s got %q; want %q", k, vars[k], want)
		}
	}

	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: got %q; want the CA certificate", caPath, pem)
	}
	for _, tt := range []struct {
		name string
		ok   bool
	}{{"demo-ecr", true}, {"ecr.demo.test", true}, {"10.9.8.7", true}, {"localhost", true}, {"demo-ecr.other", false}} {
		conn, err := tls.Dial("tcp", frontAddr, &tls.Config{RootCAs: pool, ServerName: tt.name})
		if err == nil {
			conn.Close()
		}
		if (err == nil) != tt.ok {
			t.Errorf("TLS to the front as %q: got %v; want ok %v", tt.name, err, tt.ok)
		}
	}

	client := ecr.New(ecr.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("demo", "demo-secret", ""),
		BaseEndpoint: aws.String(vars["AWS_ENDPOINT_URL_ECR"]),
	})
	out, err := client.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	data := out.AuthorizationData[0]
	if got := aws.ToString(data.ProxyEndpoint); got != "https://demo-ecr:5443" {
		t.Errorf("proxyEndpoint got %q; want https://demo-ecr:5443", got)
	}

	// A blob download, as nginx sends it: to the front's address, named demo-ecr.
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(data.AuthorizationToken))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+frontAddr+"/v2/demo/hello/blobs/sha256:"+strings.Repeat("b", 64), nil)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(raw))
	hc := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "demo-ecr"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusTemporaryRedirect || loc.Host != "localhost:5002" {
		t.Fatalf("blob download got %d Location %q; want 307 to http://localhost:5002/...", resp.StatusCode, loc)
	}
	// -s3-addr serves it; localhost:5002 is where a published port would be.
	s3, err := http.Get("http://" + s3Addr + loc.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	s3.Body.Close()
	if s3.StatusCode != http.StatusOK {
		t.Errorf("the redirect on -s3-addr %s: got %d; want 200", s3Addr, s3.StatusCode)
	}
}

// startRun runs the command with args until the test ends (then it must
// return nil within 10 s) and returns what it prints on stdout; the caller
// must keep reading it.
func startRun(t *testing.T, args []string) io.Reader {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("got run error %v; want nil after cancel", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	return pr
}
