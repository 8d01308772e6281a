package regpath

import (
	"errors"
	"strings"
	"testing"
)

const (
	dig  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	digE = "sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestParse(t *testing.T) {
	tests := []struct {
		method, uri string
		want        Request
	}{
		{"GET", "/v2/", Request{Action: ActionLogin, Endpoint: EndpointBase}},
		{"HEAD", "/v2/?x=1", Request{Action: ActionLogin, Endpoint: EndpointBase}},
		{"GET", "/v2/_catalog?n=10&last=team-a%2Fapp", Request{Action: ActionCatalog, Endpoint: EndpointCatalog}},
		{"GET", "/v2/app/manifests/latest", Request{Action: ActionPull, Repository: "app", Reference: "latest", Endpoint: EndpointManifest}},
		{"HEAD", "/v2/team-a/app/manifests/" + dig, Request{Action: ActionPull, Repository: "team-a/app", Reference: dig, Endpoint: EndpointManifest}},
		{"PUT", "/v2/team-a/app/manifests/v1.2.3_rc-1", Request{Action: ActionPush, Repository: "team-a/app", Reference: "v1.2.3_rc-1", Endpoint: EndpointManifest}},
		{"DELETE", "/v2/team-a/app/manifests/" + dig, Request{Action: ActionDelete, Repository: "team-a/app", Reference: dig, Endpoint: EndpointManifest}},
		{"GET", "/v2/a/b/c/blobs/" + dig, Request{Action: ActionPull, Repository: "a/b/c", Reference: dig, Endpoint: EndpointBlob}},
		{"DELETE", "/v2/a/blobs/" + dig, Request{Action: ActionDelete, Repository: "a", Reference: dig, Endpoint: EndpointBlob}},
		{"POST", "/v2/team-a/app/blobs/uploads/", Request{Action: ActionPush, Repository: "team-a/app", Endpoint: EndpointUploadStart}},
		{"POST", "/v2/team-a/app/blobs/uploads/?digest=" + digE, Request{Action: ActionPush, Repository: "team-a/app", Reference: dig, Endpoint: EndpointUploadStart}},
		{"POST", "/v2/team-a/app/blobs/uploads/?mount=" + dig + "&from=team-b/base", Request{Action: ActionPush, Repository: "team-a/app", Reference: dig, MountFrom: "team-b/base", Endpoint: EndpointUploadStart}},
		{"POST", "/v2/team-a/app/blobs/uploads/?from=team-b%2Fbase&mount=" + digE, Request{Action: ActionPush, Repository: "team-a/app", Reference: dig, MountFrom: "team-b/base", Endpoint: EndpointUploadStart}},
		{"PATCH", "/v2/a/blobs/uploads/3f1c-9a_b.c=", Request{Action: ActionPush, Repository: "a", Upload: "3f1c-9a_b.c=", Endpoint: EndpointUpload}},
		{"PUT", "/v2/a/blobs/uploads/abc?_state=xyz%3D&digest=" + digE, Request{Action: ActionPush, Repository: "a", Reference: dig, Upload: "abc", Endpoint: EndpointUpload}},
		{"GET", "/v2/a/blobs/uploads/abc", Request{Action: ActionPush, Repository: "a", Upload: "abc", Endpoint: EndpointUpload}},
		{"DELETE", "/v2/a/blobs/uploads/abc", Request{Action: ActionPush, Repository: "a", Upload: "abc", Endpoint: EndpointUpload}},
		{"GET", "/v2/a/tags/list?n=100&last=v1", Request{Action: ActionPull, Repository: "a", Endpoint: EndpointTags}},
		{"GET", "/v2/a/referrers/" + dig + "?artifactType=application%2Fx", Request{Action: ActionPull, Repository: "a", Reference: dig, Endpoint: EndpointReferrers}},
		// Route words are fine as repository components.
		{"GET", "/v2/manifests/manifests/x", Request{Action: ActionPull, Repository: "manifests", Reference: "x", Endpoint: EndpointManifest}},
		{"GET", "/v2/a/blobs/uploads/manifests/x", Request{Action: ActionPull, Repository: "a/blobs/uploads", Reference: "x", Endpoint: EndpointManifest}},
		{"GET", "/v2/a/manifests/tags/list", Request{Action: ActionPull, Repository: "a/manifests", Endpoint: EndpointTags}},
		{"GET", "/v2/a__b.c--d/manifests/x", Request{Action: ActionPull, Repository: "a__b.c--d", Reference: "x", Endpoint: EndpointManifest}},
		{"GET", "/v2/" + strings.Repeat("a/", 127) + "a/manifests/x", Request{Action: ActionPull, Repository: strings.Repeat("a/", 127) + "a", Reference: "x", Endpoint: EndpointManifest}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.uri, func(t *testing.T) {
			got, err := Parse(tt.method, tt.uri)
			if err != nil {
				t.Fatalf("got error %v; want %+v", err, tt.want)
			}
			if got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
			path, _, _ := strings.Cut(tt.uri, "?")
			if got.Path() != path {
				t.Errorf("Path: got %q; want %q", got.Path(), path)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct{ name, method, uri string }{
		{"encoded slash", "GET", "/v2/team-a%2fapp/manifests/x"},
		{"encoded slash upper", "GET", "/v2/team-a%2Fapp/manifests/x"},
		{"encoded letter", "GET", "/v2/te%61m/manifests/x"},
		{"encoded dot", "GET", "/v2/team-a/%2e%2e/team-b/manifests/x"},
		{"dot dot", "GET", "/v2/team-a/../team-b/manifests/x"},
		{"dot", "GET", "/v2/team-a/./app/manifests/x"},
		{"double slash", "GET", "/v2/team-a//app/manifests/x"},
		{"leading double slash", "GET", "//v2/app/manifests/x"},
		{"backslash", "GET", `/v2/team-a\app/manifests/x`},
		{"trailing slash", "GET", "/v2/app/manifests/x/"},
		{"trailing slash tags", "GET", "/v2/app/tags/list/"},
		{"catalog slash", "GET", "/v2/_catalog/"},
		{"no v2 slash", "GET", "/v2"},
		{"v1", "GET", "/v1/app/manifests/x"},
		{"uppercase repo", "GET", "/v2/Team/manifests/x"},
		{"bad tag", "GET", "/v2/app/manifests/-x"},
		{"long tag", "GET", "/v2/app/manifests/" + strings.Repeat("x", 129)},
		{"blob not digest", "GET", "/v2/app/blobs/latest"},
		{"short sha256", "GET", "/v2/app/blobs/sha256:abc"},
		{"upper hex", "GET", "/v2/app/blobs/" + strings.ToUpper(dig)},
		{"long repo", "GET", "/v2/" + strings.Repeat("a/", 128) + "a/manifests/x"},
		{"uploads no slash", "POST", "/v2/app/blobs/uploads"},
		{"upload id dot dot", "PATCH", "/v2/app/blobs/uploads/.."},
		{"no name", "POST", "/v2/blobs/uploads/"},
		{"unknown route", "GET", "/v2/app/other/x"},
		{"one component", "GET", "/v2/app"},
		{"control", "GET", "/v2/app/manifests/x\x00"},
		{"newline", "GET", "/v2/app/manifests/x\n"},
		{"space", "GET", "/v2/app/manifests/x y"},
		{"utf-8", "GET", "/v2/äpp/manifests/x"},
		{"fragment", "GET", "/v2/app/manifests/x#y"},
		{"POST manifest", "POST", "/v2/app/manifests/x"},
		{"PUT blob", "PUT", "/v2/app/blobs/" + dig},
		{"DELETE tags", "DELETE", "/v2/app/tags/list"},
		{"lowercase method", "get", "/v2/app/manifests/x"},
		{"PUT base", "PUT", "/v2/"},
		{"GET upload start", "GET", "/v2/app/blobs/uploads/"},
		{"semicolon query", "POST", "/v2/app/blobs/uploads/?mount=" + dig + ";from=other"},
		{"from twice", "POST", "/v2/app/blobs/uploads/?mount=" + dig + "&from=a&from=b"},
		{"From in capitals", "POST", "/v2/app/blobs/uploads/?mount=" + dig + "&From=b"},
		{"encoded key", "POST", "/v2/app/blobs/uploads/?mount=" + dig + "&fr%6Fm=b&from=c"},
		{"from encoded dot dot", "POST", "/v2/app/blobs/uploads/?mount=" + dig + "&from=team-a%2F..%2Fteam-b"},
		{"from bad", "POST", "/v2/app/blobs/uploads/?mount=" + dig + "&from=Team"},
		{"from empty", "POST", "/v2/app/blobs/uploads/?mount=" + dig + "&from="},
		{"mount without from", "POST", "/v2/app/blobs/uploads/?mount=" + dig},
		{"mount not digest", "POST", "/v2/app/blobs/uploads/?mount=x&from=b"},
		{"from on manifest", "GET", "/v2/app/manifests/x?from=b"},
		{"bad query escape", "GET", "/v2/app/tags/list?last=%zz"},
		{"bad digest param", "PUT", "/v2/app/blobs/uploads/abc?digest=nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.method, tt.uri)
			if err == nil {
				t.Fatalf("got %+v; want an error", got)
			}
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("got %v; want it to wrap ErrUnsupported", err)
			}
			if len(tt.uri) > 12 && strings.Contains(err.Error(), tt.uri) {
				t.Errorf("error %q repeats the uri", err)
			}
		})
	}
}

func TestValidComponent(t *testing.T) {
	for c, want := range map[string]bool{
		"a": true, "a0": true, "a.b": true, "a_b": true, "a__b": true, "a-b": true, "a---b": true, "a.b-c__d": true,
		"": false, "A": false, "-a": false, "a-": false, ".a": false, "a.": false, "a..b": false, "a___b": false,
		"a._b": false, "a_-b": false, "_": false, "a/b": false, "a b": false,
	} {
		if got := ValidComponent(c); got != want {
			t.Errorf("ValidComponent(%q): got %v; want %v", c, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/_catalog", "/v2/a/b/manifests/latest", "/v2/a/blobs/" + dig,
		"/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/x-1?digest=" + digE, "/v2/a/tags/list?n=1",
		"/v2/a/blobs/uploads/?mount=" + dig + "&from=b%2Fc", "/v2/a/../b/manifests/x", "/v2/a%2fb/manifests/x"} {
		for _, m := range []string{"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"} {
			f.Add(m, s)
		}
	}
	f.Fuzz(func(t *testing.T, method, uri string) {
		r, err := Parse(method, uri)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v does not wrap ErrUnsupported", err)
			}
			return
		}
		path, _, _ := strings.Cut(uri, "?")
		if r.Path() != path {
			t.Fatalf("Path: got %q; want %q", r.Path(), path)
		}
		for _, repo := range []string{r.Repository, r.MountFrom} {
			if strings.Contains(repo, "..") || strings.Contains(repo, "%") || strings.Contains(repo, "//") {
				t.Fatalf("accepted repository %q", repo)
			}
			if repo != "" && !ValidRepository(repo) {
				t.Fatalf("accepted invalid repository %q", repo)
			}
		}
		if r.Action == "" {
			t.Fatalf("accepted %q %q without an action", method, uri)
		}
		if (r.Endpoint == EndpointBase || r.Endpoint == EndpointCatalog) != (r.Repository == "") {
			t.Fatalf("endpoint %d with repository %q", r.Endpoint, r.Repository)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("HEAD", "/v2/team/app/blobs/"+dig); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseAllocs: authsvc parses every request on its warm path, accepted or
// refused, so Parse must not allocate (a percent-encoded query value aside).
func TestParseAllocs(t *testing.T) {
	for _, uri := range []string{"/v2/team/app/blobs/" + dig, "/v2/a/blobs/uploads/x?digest=" + dig,
		"/v2/team/app/blobs/sha256:0123", "/v2/a%2fb/manifests/x", "/v2/a/manifests/x?from=b"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = Parse("GET", uri) }); n != 0 {
			t.Errorf("Parse(%q): %v allocations; want 0", uri, n)
		}
	}
}
