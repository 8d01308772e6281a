package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageOf is a random image with one layer of each size.
func imageOf(t *testing.T, sizes ...int64) v1.Image {
	t.Helper()
	var layers []v1.Layer
	for _, size := range sizes {
		l, err := random.Layer(size, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The product in one test: push a multi-layer image through the gateway's TLS
// listener (on a non-default port) and pull it back with matching digests.
func TestPushAndPullThroughGateway(t *testing.T) {
	alice := user(t, "alice")
	img := imageOf(t, 100<<20, 4<<10, 300<<10)
	port := e.httpsAddr[strings.LastIndex(e.httpsAddr, ":")+1:]
	ref, err := name.ParseReference("127.0.0.1:" + port + "/" + repoName + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	opts := e.remoteOpts(alice.Name, alice.Password)
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push: %v", err)
	}

	pulled, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	want, _ := img.Digest()
	got, _ := pulled.Digest()
	if got != want {
		t.Errorf("manifest digest: got %s; want %s", got, want)
	}
	wantLayers, _ := img.Layers()
	gotLayers, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(gotLayers) != len(wantLayers) {
		t.Fatalf("layers: got %d; want %d", len(gotLayers), len(wantLayers))
	}
	for i, l := range gotLayers {
		rc, err := l.Compressed() // verifies the digest as it reads
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if err := rc.Close(); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		gd, _ := l.Digest()
		wd, _ := wantLayers[i].Digest()
		if gd != wd {
			t.Errorf("layer %d digest: got %s; want %s", i, gd, wd)
		}
	}
	if total, _ := e.emu.S3Requests(); total == 0 {
		t.Errorf("blob downloads through S3: got 0; want the layers fetched from S3 after ECR's 307")
	}
	assertNoForeignCredentials(t)
}

// G5: an upload start comes back with a Location on the gateway, on the
// client's own scheme, host and port.
func TestUploadLocationPointsAtGateway(t *testing.T) {
	alice := user(t, "alice")
	a := e.do(t, http.MethodPost, "/v2/"+repoName+"/blobs/uploads/", basic(alice.Name, alice.Password))
	if a.status != http.StatusAccepted {
		t.Fatalf("POST upload: got %d %q; want 202", a.status, a.body)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Scheme != "http" || loc.Host != e.httpAddr || !strings.HasPrefix(loc.Path, "/v2/"+repoName+"/blobs/uploads/") {
		t.Errorf("Location: got %s; want http://%s/v2/%s/blobs/uploads/...", loc, e.httpAddr, repoName)
	}
}

// G6: a blob download is ECR's 307 to S3, passed through untouched.
func TestBlobDownloadRedirectsToS3Untouched(t *testing.T) {
	alice := user(t, "alice")
	layer, err := random.Layer(1<<10, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewRepository(e.httpAddr + "/" + repoName)
	if err := remote.WriteLayer(ref, layer, e.remoteOpts(alice.Name, alice.Password)...); err != nil {
		t.Fatalf("write layer: %v", err)
	}
	d, _ := layer.Digest()
	a := e.do(t, http.MethodGet, "/v2/"+repoName+"/blobs/"+d.String(), basic(alice.Name, alice.Password))
	if a.status != http.StatusTemporaryRedirect {
		t.Fatalf("GET blob: got %d; want 307", a.status)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Host == e.httpAddr || loc.Query().Get("X-Amz-Signature") == "" {
		t.Errorf("Location: got %s; want the emulator's pre-signed S3 URL, unchanged", loc)
	}
	assertNoForeignCredentials(t)
}

// G8: ECR's NAME_UNKNOWN for a missing repository reaches the client unchanged.
func TestMissingRepositoryIsNameUnknown(t *testing.T) {
	alice := user(t, "alice")
	a := e.do(t, http.MethodPost, "/v2/team-a/missing/blobs/uploads/", basic(alice.Name, alice.Password))
	if a.status != http.StatusNotFound || !strings.Contains(a.body, `"NAME_UNKNOWN"`) {
		t.Errorf("POST upload to a missing repository: got %d %q; want 404 NAME_UNKNOWN", a.status, a.body)
	}
}
