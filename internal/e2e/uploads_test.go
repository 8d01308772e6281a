package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

// ECR's upload quirks pass through the gateway as ECR sends them, on both
// listeners (each on a non-default port): a PATCH answered 201 with its
// absolute Location sent back onto the gateway (G5), the chunk-minimum error
// unchanged, and a chunked upload that keeps to the minimum completes.
func TestUploadQuirksPassThrough(t *testing.T) {
	alice := user(t, "alice")
	auth := basic(alice.Name, alice.Password)
	for _, base := range []string{"http://" + e.httpAddr, "https://" + e.httpsAddr} {
		t.Run(base[:strings.Index(base, ":")], func(t *testing.T) {
			t.Run("PATCH answered 201", func(t *testing.T) {
				u := startGatewayUpload(t, base, auth)
				a := u.send(t, http.MethodPatch, randomBlob(t, 6<<20), nil)
				if a.status != http.StatusCreated {
					t.Fatalf("PATCH 6 MiB: got %d %q; want ECR's 201", a.status, a.body)
				}
				u.assertOnGateway(t, a.header.Get("Location"))
				if got := a.header.Get("Range"); got != fmt.Sprintf("0-%d", 6<<20-1) {
					t.Errorf("PATCH Range: got %q; want 0-%d", got, 6<<20-1)
				}
				if a.header.Get("Docker-Upload-UUID") == "" {
					t.Error("PATCH: got no Docker-Upload-UUID; want ECR's")
				}
			})

			t.Run("part below the minimum", func(t *testing.T) {
				u := startGatewayUpload(t, base, auth)
				if a := u.send(t, http.MethodPatch, randomBlob(t, 1<<20), nil); a.status != http.StatusCreated {
					t.Fatalf("PATCH 1 MiB: got %d %q; want 201 (a part is known too small only when the next arrives)", a.status, a.body)
				}
				a := u.send(t, http.MethodPatch, randomBlob(t, 1<<20), nil)
				want := fmt.Sprintf(`{"errors":[{"code":%q,"message":%q}]}`+"\n",
					ecremu.LayerPartTooSmallCode, ecremu.LayerPartTooSmallMessage)
				if a.status != http.StatusBadRequest || a.body != want {
					t.Errorf("PATCH after a 1 MiB part: got %d %q; want ECR's 400 %q", a.status, a.body, want)
				}
				if got := a.header.Get("Content-Type"); got != "application/json; charset=utf-8" {
					t.Errorf("Content-Type: got %q; want ECR's application/json; charset=utf-8", got)
				}
			})

			t.Run("chunked upload", func(t *testing.T) {
				u := startGatewayUpload(t, base, auth)
				for i, size := range []int{6 << 20, 6 << 20, 1 << 20} {
					a := u.send(t, http.MethodPatch, randomBlob(t, size), nil)
					if a.status != http.StatusCreated {
						t.Fatalf("PATCH %d (%d bytes): got %d %q; want 201", i, size, a.status, a.body)
					}
					u.assertOnGateway(t, a.header.Get("Location"))
				}
				digest := u.digest()
				a := u.send(t, http.MethodPut, nil, url.Values{"digest": {digest}})
				if a.status != http.StatusCreated || a.header.Get("Docker-Content-Digest") != digest {
					t.Fatalf("PUT ?digest=: got %d %q, digest %q; want 201, %s", a.status, a.body, a.header.Get("Docker-Content-Digest"), digest)
				}
				if got, n := downloadDigest(t, base, auth, digest); got != digest || n != u.offset {
					t.Errorf("blob download: got %s, %d bytes; want %s, %d bytes", got, n, digest, u.offset)
				}
			})
		})
	}
	assertNoForeignCredentials(t)
}

// gatewayUpload is a blob upload through the gateway, following each
// answer's Location as a client must (distribution's _state changes with
// every part).
type gatewayUpload struct {
	base, auth string
	client     *http.Client
	location   string
	offset     int64
	hash       hash.Hash
}

// startGatewayUpload starts an upload to repoName through the listener at
// base and checks that the Location points back at it.
func startGatewayUpload(t *testing.T, base, auth string) *gatewayUpload {
	t.Helper()
	// A fresh connection per request: a PATCH body cannot be resent if a
	// reload closes an idle kept-alive connection under it (BENCHMARKS.md).
	tr := e.client.Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	u := &gatewayUpload{base: base, auth: auth, hash: sha256.New(),
		client: &http.Client{Transport: tr, CheckRedirect: e.client.CheckRedirect, Timeout: e.client.Timeout}}
	t.Cleanup(tr.CloseIdleConnections)
	u.location = base + "/v2/" + repoName + "/blobs/uploads/"
	a := u.send(t, http.MethodPost, nil, nil)
	if a.status != http.StatusAccepted {
		t.Fatalf("POST upload: got %d %q; want 202", a.status, a.body)
	}
	u.assertOnGateway(t, a.header.Get("Location"))
	return u
}

// send sends body to the upload's current Location with query added; a 2xx
// answer moves the upload on.
func (u *gatewayUpload) send(t *testing.T, method string, body []byte, query url.Values) answer {
	t.Helper()
	loc, err := url.Parse(u.location)
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	for k, v := range query {
		q[k] = v
	}
	loc.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(t.Context(), method, loc.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", u.auth)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", u.offset, u.offset+int64(len(body))-1))
	}
	resp, err := u.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, loc.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		u.hash.Write(body)
		u.offset += int64(len(body))
		if l := resp.Header.Get("Location"); l != "" {
			u.location = l
		}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (u *gatewayUpload) digest() string { return fmt.Sprintf("sha256:%x", u.hash.Sum(nil)) }

// assertOnGateway checks that an upload Location is absolute on the
// listener the client used: its scheme, host and port (G5).
func (u *gatewayUpload) assertOnGateway(t *testing.T, location string) {
	t.Helper()
	want := u.base + "/v2/" + repoName + "/blobs/uploads/"
	if !strings.HasPrefix(location, want) {
		t.Errorf("Location: got %q; want it on the gateway, prefix %q", location, want)
	}
}

// downloadDigest fetches blob digest through the listener at base the way
// ECR serves it, a 307 to "S3" followed without credentials, and returns the
// digest and size of what arrived.
func downloadDigest(t *testing.T, base, auth, digest string) (string, int64) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v2/"+repoName+"/blobs/"+digest, nil)
	req.Header.Set("Authorization", auth)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("GET blob: got %d; want ECR's 307", resp.StatusCode)
	}
	s3, err := e.client.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, s3.Body)
	if err != nil || s3.StatusCode != http.StatusOK {
		t.Fatalf("GET from S3: got %d, %v; want 200", s3.StatusCode, err)
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), n
}

func randomBlob(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}
