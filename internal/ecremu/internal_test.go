package ecremu

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNormalizeTokenSize(t *testing.T) {
	tests := []struct{ in, want int }{
		{0, DefaultTokenSize}, {-1, DefaultTokenSize}, {1, MinTokenSize},
		{6144, 6144}, {6145, 6148}, {16384, 16384},
	}
	for _, tt := range tests {
		if got := normalizeTokenSize(tt.in); got != tt.want {
			t.Errorf("normalizeTokenSize(%d): got %d; want %d", tt.in, got, tt.want)
		}
	}
}

func TestNewToken(t *testing.T) {
	for _, size := range []int{MinTokenSize, 6400, 8192, 16384, 6148} {
		token, password, err := newToken(size)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(token)
		if len(token) != size || err != nil || string(raw) != "AWS:"+password {
			t.Errorf("size %d: got length %d, decode error %v; want base64(AWS:password) of that length", size, len(token), err)
		}
		if strings.ContainsAny(password, ":\n") {
			t.Errorf("size %d: got password with separator characters", size)
		}
	}
}

func TestParseRepoPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
		name string
		kind resourceKind
		ref  string
	}{
		{"/v2/", false, "", 0, ""},
		{"/v2/_catalog", false, "", 0, ""},
		{"/v2/app/manifests/latest", true, "app", kindManifest, "latest"},
		{"/v2/team/app/manifests/sha256:abc", true, "team/app", kindManifest, "sha256:abc"},
		{"/v2/team/app/blobs/sha256:abc", true, "team/app", kindBlob, "sha256:abc"},
		{"/v2/team/app/blobs/uploads/", true, "team/app", kindUpload, ""},
		{"/v2/team/app/blobs/uploads", true, "team/app", kindUpload, ""},
		{"/v2/team/app/blobs/uploads/0f1e-2d", true, "team/app", kindUpload, "0f1e-2d"},
		{"/v2/team/app/tags/list", true, "team/app", kindTags, ""},
		{"/v2/a/manifests/b/manifests/c", true, "a/manifests/b", kindManifest, "c"},
		{"/v2/Team/app/manifests/latest", false, "", 0, ""},
		{"/v2/team//app/manifests/latest", false, "", 0, ""},
		{"/v2/../app/manifests/latest", false, "", 0, ""},
		{"/v2/app/manifests/", false, "", 0, ""},
		{"/v3/app/manifests/latest", false, "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, ok := parseRepoPath(tt.path)
			if ok != tt.ok || p.name != tt.name || p.kind != tt.kind || p.reference != tt.ref {
				t.Errorf("got %+v, %v; want {%s %d %s}, %v", p, ok, tt.name, tt.kind, tt.ref, tt.ok)
			}
		})
	}
}

func FuzzParseRepoPath(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/a/manifests/b", "/v2/a/b/blobs/uploads/x", "/v2/a/tags/list", "/v2/a/blobs/sha256:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		p, ok := parseRepoPath(path)
		if !ok {
			return
		}
		if !repoNameRE.MatchString(p.name) || len(p.name) > maxRepoNameLen {
			t.Errorf("got invalid name %q from %q", p.name, path)
		}
		if !strings.HasPrefix(path, "/v2/"+p.name+"/") || strings.Contains(p.reference, "/") {
			t.Errorf("got %+v not a part of %q", p, path)
		}
	})
}

func TestParseSigV4Authorization(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"sdk form", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd", true},
		{"no spaces", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ecr/aws4_request,SignedHeaders=host,Signature=abcd", true},
		{"basic", "Basic QVdTOnB3", false},
		{"short scope", "AWS4-HMAC-SHA256 Credential=AKID/20260101/ecr, SignedHeaders=host, Signature=abcd", false},
		{"no signature", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host", false},
		{"unknown part", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=ab, X=y", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := parseSigV4Authorization(tt.in); ok != tt.ok {
				t.Errorf("got ok %v; want %v", ok, tt.ok)
			}
		})
	}
}

func FuzzParseSigV4Authorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd")
	f.Add("AWS4-HMAC-SHA256 ,,,=")
	f.Fuzz(func(t *testing.T, in string) {
		a, ok := parseSigV4Authorization(in)
		if ok && (a.signature == "" || len(a.signedHeaders) == 0) {
			t.Errorf("got %+v accepted from %q; want signature and signed headers", a, in)
		}
	})
}
