package ecremu_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

// upload is one blob upload in progress on the front, following the
// Location of each answer as a client must.
type upload struct {
	t        *testing.T
	e        *ecremu.Emulator
	auth     string
	location string
	offset   int64
	hash     hash.Hash // of the bytes accepted so far
}

func startUpload(t *testing.T, e *ecremu.Emulator, auth, repo string) *upload {
	t.Helper()
	resp := frontRequest(t, e, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", auth)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: got status %d; want 202", resp.StatusCode)
	}
	return &upload{t: t, e: e, auth: auth, location: resp.Header.Get("Location"), hash: sha256.New()}
}

// send sends body to the upload's current Location and returns the answer
// with its body read. A 2xx answer moves the upload on.
func (u *upload) send(method string, body []byte, query url.Values) (*http.Response, string) {
	u.t.Helper()
	loc, err := url.Parse(u.location)
	if err != nil {
		u.t.Fatal(err)
	}
	q := loc.Query()
	for k, v := range query {
		q[k] = v
	}
	loc.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(context.WithoutCancel(u.t.Context()), method, loc.String(), bytes.NewReader(body))
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Authorization", u.auth)
	req.Header.Set("Content-Type", "application/octet-stream")
	if method == http.MethodPatch && len(body) > 0 {
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", u.offset, u.offset+int64(len(body))-1))
	}
	resp, err := frontClient(u.e).Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, loc.Path, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		u.hash.Write(body)
		u.offset += int64(len(body))
		if l := resp.Header.Get("Location"); l != "" {
			u.location = l
		}
	}
	return resp, string(answer)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// ECR answers a PATCH with 201 Created, not distribution's 202, and keeps
// the absolute Location, Range and Docker-Upload-UUID.
func TestPatchAnswers201(t *testing.T) {
	reg := startRegistry(t)
	e := startEmulator(t, ecremu.Config{Backend: reg.URL()})
	if err := e.CreateRepository("team/app"); err != nil {
		t.Fatal(err)
	}
	u := startUpload(t, e, basic("AWS", fetchToken(t, e)), "team/app")
	resp, body := u.send(http.MethodPatch, randomBytes(t, 1024), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PATCH: got %d %q; want 201", resp.StatusCode, body)
	}
	if want := "https://" + e.RegistryHost() + "/v2/team/app/blobs/uploads/"; !strings.HasPrefix(resp.Header.Get("Location"), want) {
		t.Errorf("PATCH Location: got %q; want prefix %q", resp.Header.Get("Location"), want)
	}
	if got := resp.Header.Get("Range"); got != "0-1023" {
		t.Errorf("PATCH Range: got %q; want 0-1023", got)
	}
	if resp.Header.Get("Docker-Upload-UUID") == "" {
		t.Error("PATCH: got no Docker-Upload-UUID; want the backend's")
	}
	if got := resp.Header.Values("Docker-Distribution-Api-Version"); len(got) != 1 {
		t.Errorf("PATCH Docker-Distribution-Api-Version: got %q; want one", got)
	}
	digest := u.digestWith(nil)
	if resp, body := u.send(http.MethodPut, nil, url.Values{"digest": {digest}}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: got %d %q; want 201", resp.StatusCode, body)
	}
}

// In a chunked upload every part but the last must be at least 5 MiB; the
// front can only tell when the next part arrives. One part of any size, or a
// whole body in the PUT, stays valid.
func TestLayerPartMinimum(t *testing.T) {
	reg := startRegistry(t)
	e := startEmulator(t, ecremu.Config{Backend: reg.URL()})
	if err := e.CreateRepository("team/app"); err != nil {
		t.Fatal(err)
	}
	auth := basic("AWS", fetchToken(t, e))
	const min = ecremu.MinLayerPartSize
	tests := []struct {
		name    string
		patches []int // part sizes, sent in order
		putBody int   // bytes in the completing PUT
		refused int   // index of the request refused (len(patches) for the PUT); -1 none
	}{
		{"one small part", []int{1 << 10}, 0, -1},
		{"one large part", []int{12 << 20}, 0, -1},
		{"whole body in the PUT", nil, 3 << 20, -1},
		{"minimum parts and a small last", []int{min, min, 1 << 10}, 0, -1},
		{"small part then another", []int{1 << 20, 1 << 20}, 0, 1},
		{"one byte short then another", []int{min - 1, min}, 0, 1},
		{"small part in the middle", []int{6 << 20, 1 << 20, 1 << 10}, 0, 2},
		{"small part then a PUT with a body", []int{1 << 20}, 1 << 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := startUpload(t, e, auth, "team/app")
			for i, size := range tt.patches {
				resp, body := u.send(http.MethodPatch, randomBytes(t, size), nil)
				if i == tt.refused {
					assertPartTooSmall(t, resp, body)
					return
				}
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("PATCH %d (%d bytes): got %d %q; want 201", i, size, resp.StatusCode, body)
				}
			}
			last := randomBytes(t, tt.putBody)
			resp, body := u.send(http.MethodPut, last, url.Values{"digest": {u.digestWith(last)}})
			if tt.refused == len(tt.patches) {
				assertPartTooSmall(t, resp, body)
				return
			}
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT: got %d %q; want 201", resp.StatusCode, body)
			}
			want := resp.Header.Get("Docker-Content-Digest")
			head := frontRequest(t, e, http.MethodHead, "/v2/team/app/blobs/"+want, auth)
			if head.StatusCode != http.StatusOK || head.ContentLength != u.offset {
				t.Errorf("HEAD blob: got %d, %d bytes; want 200, %d bytes", head.StatusCode, head.ContentLength, u.offset)
			}
		})
	}
}

// digestWith is the digest of what u sent so far followed by more, without
// changing u.
func (u *upload) digestWith(more []byte) string {
	state, err := u.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		u.t.Fatal(err)
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		u.t.Fatal(err)
	}
	h.Write(more)
	return fmt.Sprintf("sha256:%x", h.Sum(nil))
}

func assertPartTooSmall(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	want := fmt.Sprintf(`{"errors":[{"code":%q,"message":%q}]}`+"\n", ecremu.LayerPartTooSmallCode, ecremu.LayerPartTooSmallMessage)
	if resp.StatusCode != http.StatusBadRequest || body != want {
		t.Errorf("part after a small one: got %d %q; want 400 %q", resp.StatusCode, body, want)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type: got %q; want application/json; charset=utf-8", got)
	}
}

// ServeBlobsDirectly switches blob downloads from ECR's 307 to "S3" to the
// front streaming the blob itself, and back.
func TestServeBlobsDirectly(t *testing.T) {
	reg := startRegistry(t)
	e := startEmulator(t, ecremu.Config{Backend: reg.URL()})
	if err := e.CreateRepository("team/app"); err != nil {
		t.Fatal(err)
	}
	auth := basic("AWS", fetchToken(t, e))
	blob := randomBytes(t, 256<<10)
	u := startUpload(t, e, auth, "team/app")
	u.send(http.MethodPatch, blob, nil)
	digest := u.digestWith(nil)
	if resp, body := u.send(http.MethodPut, nil, url.Values{"digest": {digest}}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: got %d %q; want 201", resp.StatusCode, body)
	}
	path := "/v2/team/app/blobs/" + digest

	for _, direct := range []bool{false, true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			e.ServeBlobsDirectly(direct)
			s3Before, _ := e.S3Requests()
			resp := frontRequest(t, e, http.MethodGet, path, auth)
			if !direct {
				if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(resp.Header.Get("Location"), e.S3URL()+"/") {
					t.Errorf("got %d Location %q; want 307 to %s", resp.StatusCode, resp.Header.Get("Location"), e.S3URL())
				}
				return
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || fmt.Sprintf("sha256:%x", sha256.Sum256(got)) != digest {
				t.Errorf("got %d, %d bytes with digest sha256:%x; want 200, %d bytes with digest %s",
					resp.StatusCode, len(got), sha256.Sum256(got), len(blob), digest)
			}
			if s3, _ := e.S3Requests(); s3 != s3Before {
				t.Errorf("S3 requests: got %d more; want none", s3-s3Before)
			}
		})
	}
}
