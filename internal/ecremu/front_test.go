package ecremu_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func remoteOptions(t *testing.T, e *ecremu.Emulator, password string) []remote.Option {
	return []remote.Option{
		remote.WithContext(t.Context()),
		remote.WithAuth(&authn.Basic{Username: "AWS", Password: password}),
		remote.WithTransport(&http.Transport{TLSClientConfig: e.CA().ClientTLSConfig()}),
	}
}

func TestPushPullThroughFront(t *testing.T) {
	reg := startRegistry(t)
	e := startEmulator(t, ecremu.Config{Backend: reg.URL()})
	if err := e.CreateRepository("team/app"); err != nil {
		t.Fatal(err)
	}
	opts := remoteOptions(t, e, fetchToken(t, e))
	ref, err := name.ParseReference(e.RegistryHost() + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64*1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push: %v", err)
	}

	pulled, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	wantDigest, _ := img.Digest()
	if got, _ := pulled.Digest(); got != wantDigest {
		t.Errorf("got manifest digest %v; want %v", got, wantDigest)
	}
	layers, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Fatalf("got %d layers; want 3", len(layers))
	}
	for _, l := range layers {
		rc, err := l.Compressed() // verifies the digest while reading
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Errorf("read layer: %v", err)
		}
		rc.Close()
	}

	total, withAuth := e.S3Requests()
	if total < 3 || withAuth != 0 {
		t.Errorf("got %d S3 requests, %d with Authorization; want at least 3 (one per layer), none with Authorization", total, withAuth)
	}
	if got := e.ForeignAuthorizations(); len(got) != 0 {
		t.Errorf("got %d foreign authorizations; want none", len(got))
	}
}

func TestFrontAuthorization(t *testing.T) {
	e := startEmulator(t, ecremu.Config{})
	short := startEmulator(t, ecremu.Config{TokenTTL: time.Nanosecond})
	expiredPassword := fetchToken(t, short)

	t.Run("no credentials", func(t *testing.T) {
		resp := frontRequest(t, e, http.MethodGet, "/v2/", "")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("got status %d; want 401", resp.StatusCode)
		}
		want := `Basic realm="https://` + e.RegistryHost() + `/",service="ecr.amazonaws.com"`
		if got := resp.Header.Get("WWW-Authenticate"); got != want {
			t.Errorf("got challenge %q; want %q", got, want)
		}
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/plain") {
			t.Errorf("got content type %q; want text/plain", got)
		}
		if got := strings.TrimSpace(string(body)); got != "Not Authorized" {
			t.Errorf("got body %q; want Not Authorized", got)
		}
	})

	t.Run("valid token", func(t *testing.T) {
		resp := frontRequest(t, e, http.MethodGet, "/v2/", basic("AWS", fetchToken(t, e)))
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "{}" {
			t.Errorf("got %d %q; want 200 {}", resp.StatusCode, body)
		}
	})

	denied := []struct {
		name        string
		emu         *ecremu.Emulator
		auth        func() string
		wantForeign bool
	}{
		{"user's ldap credentials", e, func() string { return basic("alice", "ldap-password") }, true},
		{"unknown AWS password", e, func() string { return basic("AWS", "made-up") }, true},
		{"bearer token", e, func() string { return "Bearer abc" }, true},
		{"expired token", short, func() string { return basic("AWS", expiredPassword) }, false},
		{"revoked token", e, func() string {
			pw := fetchToken(t, e)
			e.RevokeTokens()
			return basic("AWS", pw)
		}, false},
	}
	for _, tt := range denied {
		t.Run(tt.name, func(t *testing.T) {
			auth := tt.auth()
			before := len(tt.emu.ForeignAuthorizations())
			resp := frontRequest(t, tt.emu, http.MethodGet, "/v2/team/app/manifests/latest", auth)
			var body struct {
				Errors []struct{ Code, Message string }
			}
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != http.StatusForbidden || len(body.Errors) != 1 || body.Errors[0].Code != "DENIED" ||
				!strings.Contains(body.Errors[0].Message, "authorization token has expired") {
				t.Errorf("got %d %+v; want 403 DENIED token expired", resp.StatusCode, body)
			}
			foreign := tt.emu.ForeignAuthorizations()
			gotForeign := len(foreign) > before && slices.Contains(foreign, auth)
			if gotForeign != tt.wantForeign {
				t.Errorf("got recorded as foreign %v; want %v", gotForeign, tt.wantForeign)
			}
		})
	}
}

func TestMissingRepository(t *testing.T) {
	reg := startRegistry(t)
	tests := []struct {
		name         string
		createOnPush bool
		method, path string
		wantStatus   int
	}{
		{"pull", false, http.MethodGet, "/v2/nope/manifests/latest", http.StatusNotFound},
		{"push", false, http.MethodPost, "/v2/nope/blobs/uploads/", http.StatusNotFound},
		{"pull with create on push", true, http.MethodGet, "/v2/nope/manifests/latest", http.StatusNotFound},
		{"push with create on push", true, http.MethodPost, "/v2/nope/blobs/uploads/", http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEmulator(t, ecremu.Config{Backend: reg.URL(), CreateOnPush: tt.createOnPush, AccountID: "111122223333"})
			resp := frontRequest(t, e, tt.method, tt.path, basic("AWS", fetchToken(t, e)))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d; want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusNotFound {
				if got := e.Repositories(); !slices.Equal(got, []string{"nope"}) {
					t.Errorf("got repositories %v; want [nope]", got)
				}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			want := `{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name 'nope' does not exist in the registry with id '111122223333'"}]}`
			if got := strings.TrimSpace(string(body)); got != want {
				t.Errorf("got body %s; want %s", got, want)
			}
		})
	}
}

func TestUploadLocationIsAbsoluteOnFront(t *testing.T) {
	reg := startRegistry(t)
	e := startEmulator(t, ecremu.Config{Backend: reg.URL()})
	if err := e.CreateRepository("team/app"); err != nil {
		t.Fatal(err)
	}
	resp := frontRequest(t, e, http.MethodPost, "/v2/team/app/blobs/uploads/", basic("AWS", fetchToken(t, e)))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("got status %d; want 202", resp.StatusCode)
	}
	if got := resp.Header.Values("Docker-Distribution-Api-Version"); len(got) != 1 || got[0] != "registry/2.0" {
		t.Errorf("got Docker-Distribution-Api-Version %q; want one registry/2.0", got)
	}
	loc := resp.Header.Get("Location")
	if want := "https://" + e.RegistryHost() + "/v2/team/app/blobs/uploads/"; !strings.HasPrefix(loc, want) {
		t.Errorf("got Location %q; want prefix %q", loc, want)
	}
	if u, err := url.Parse(loc); err != nil || u.Query().Get("_state") == "" {
		t.Errorf("got Location %q; want the backend's _state query kept", loc)
	}
}

// TestBlobDownloadRedirect follows one blob download by hand: 307 from the
// front, then the "S3" URL with and without a stray Authorization header.
func TestBlobDownloadRedirect(t *testing.T) {
	reg := startRegistry(t)
	clock := &fakeClock{t: time.Now()}
	e := startEmulator(t, ecremu.Config{Backend: reg.URL(), Now: clock.Now})
	if err := e.CreateRepository("team/app"); err != nil {
		t.Fatal(err)
	}
	password := fetchToken(t, e)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(e.RegistryHost() + "/team/app:v1")
	if err := remote.Write(ref, img, remoteOptions(t, e, password)...); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	digest, _ := layers[0].Digest()
	size, _ := layers[0].Size()

	resp := frontRequest(t, e, http.MethodGet, "/v2/team/app/blobs/"+digest.String(), basic("AWS", password))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, e.S3URL()+"/") {
		t.Fatalf("got %d Location %q; want 307 to %s", resp.StatusCode, loc, e.S3URL())
	}
	if u, _ := url.Parse(loc); u.Query().Get("X-Amz-Signature") == "" || u.Query().Get("X-Amz-Expires") != "600" {
		t.Errorf("got Location %q; want a pre-signed URL valid 600 s", loc)
	}
	if resp := frontRequest(t, e, http.MethodGet, "/v2/team/app/blobs/sha256:"+strings.Repeat("0", 64), basic("AWS", password)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("got status %d for a missing blob; want the backend's 404", resp.StatusCode)
	}

	get := func(t *testing.T, rawURL, authorization string) (int, []byte) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	tampered := strings.Replace(loc, "/team/app/", "/team/other/", 1)

	tests := []struct {
		name          string
		url, auth     string
		advance       time.Duration
		wantStatus    int
		wantErrorCode string
	}{
		{"pre-signed", loc, "", 0, http.StatusOK, ""},
		{"with Authorization", loc, basic("AWS", password), 0, http.StatusBadRequest, "InvalidArgument"},
		{"tampered path", tampered, "", 0, http.StatusForbidden, "AccessDenied"},
		{"expired", loc, "", ecremu.PresignExpiry + time.Second, http.StatusForbidden, "AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)
			totalBefore, authBefore := e.S3Requests()
			status, body := get(t, tt.url, tt.auth)
			if status != tt.wantStatus {
				t.Fatalf("got status %d (%s); want %d", status, body, tt.wantStatus)
			}
			if tt.wantErrorCode == "" && int64(len(body)) != size {
				t.Errorf("got %d bytes; want %d", len(body), size)
			}
			if tt.wantErrorCode != "" && !strings.Contains(string(body), "<Code>"+tt.wantErrorCode+"</Code>") {
				t.Errorf("got body %s; want error code %s", body, tt.wantErrorCode)
			}
			total, withAuth := e.S3Requests()
			wantAuth := authBefore
			if tt.auth != "" {
				wantAuth++
			}
			if total != totalBefore+1 || withAuth != wantAuth {
				t.Errorf("got S3Requests %d, %d; want %d, %d", total, withAuth, totalBefore+1, wantAuth)
			}
		})
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
