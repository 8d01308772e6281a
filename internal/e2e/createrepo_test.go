package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// missingRepo is a repository alice may push (team-a/**) that IAM does not
// let the gateway create (env.start), so it stays missing.
const missingRepo = "team-a/missing"

// logLines returns the gateway log's JSON lines whose msg is msg.
func logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	f, err := os.Open(e.gatewayLog.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// A push by a user the policy lets push there, into a repository that does
// not exist yet, creates it (AUTH_CREATE_REPOSITORIES) and succeeds: one
// DescribeRepositories and one CreateRepository for all its parallel layer
// uploads, none for the next push.
func TestCreateOnPush(t *testing.T) {
	alice := user(t, "alice")
	const repo = "team-a/created-on-push"
	if slices.Contains(e.emu.Repositories(), repo) {
		t.Fatalf("%s exists before the test", repo)
	}
	describes, creates := e.emu.APICalls("DescribeRepositories"), e.emu.APICalls("CreateRepository")
	ref, err := name.ParseReference(e.httpAddr + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, 1<<10, 2<<10, 3<<10, 4<<10)
	if err := remote.Write(ref, img, e.remoteOpts(alice.Name, alice.Password)...); err != nil {
		t.Fatalf("push as alice to the missing %s: %v", repo, err)
	}
	if !slices.Contains(e.emu.Repositories(), repo) {
		t.Errorf("emulator repositories after the push: got %v; want %s among them", e.emu.Repositories(), repo)
	}
	if d, c := e.emu.APICalls("DescribeRepositories")-describes, e.emu.APICalls("CreateRepository")-creates; d != 1 || c != 1 {
		t.Errorf("ECR API calls for one push of 5 blobs: got %d DescribeRepositories, %d CreateRepository; want 1 and 1", d, c)
	}
	got, err := remote.Image(ref, e.remoteOpts(alice.Name, alice.Password)...)
	if err != nil {
		t.Fatalf("pull back: %v", err)
	}
	gd, _ := got.Digest()
	wd, _ := img.Digest()
	if gd != wd {
		t.Errorf("pulled digest %s; want the pushed %s", gd, wd)
	}
	waitFor(t, 5*time.Second, "the audit line", func() bool {
		for _, l := range logLines(t, "repository created") {
			if l["user"] == "alice" && l["repository"] == repo {
				return true
			}
		}
		return false
	})

	// The repository is known now: the next push asks ECR's API nothing.
	describes, creates = e.emu.APICalls("DescribeRepositories"), e.emu.APICalls("CreateRepository")
	ref2, _ := name.ParseReference(e.httpAddr + "/" + repo + ":v2")
	if err := remote.Write(ref2, imageOf(t, 1<<10), e.remoteOpts(alice.Name, alice.Password)...); err != nil {
		t.Fatalf("second push: %v", err)
	}
	if d, c := e.emu.APICalls("DescribeRepositories")-describes, e.emu.APICalls("CreateRepository")-creates; d != 0 || c != 0 {
		t.Errorf("ECR API calls for a second push: got %d, %d; want none", d, c)
	}
	if strings.Contains(readFile(t, e.gatewayLog.Name()), alice.Password) {
		t.Error("the gateway's logs contain alice's password")
	}
}

// A user without push rights gets the policy's 403 and nothing is created;
// a pull of a missing repository creates nothing either.
func TestCreateOnPushNeedsPushRight(t *testing.T) {
	alice, bob := user(t, "alice"), user(t, "bob")
	const denied, pulled = "team-b/not-created", "team-a/only-pulled"
	creates := e.emu.APICalls("CreateRepository")
	denial(t, e.do(t, http.MethodPost, "/v2/"+denied+"/blobs/uploads/", basic(bob.Name, bob.Password)),
		"bob may pull but not push "+denied)
	ref, err := name.ParseReference(e.httpAddr + "/" + denied + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, imageOf(t, 1<<10), e.remoteOpts(bob.Name, bob.Password)...); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Errorf("push as bob to %s: got %v; want the policy's DENIED", denied, err)
	}
	if a := e.do(t, http.MethodGet, "/v2/"+pulled+"/tags/list", basic(alice.Name, alice.Password)); a.status != http.StatusNotFound || !strings.Contains(a.body, "NAME_UNKNOWN") {
		t.Errorf("pull of the missing %s: got %d %q; want ECR's 404 NAME_UNKNOWN", pulled, a.status, a.body)
	}
	for _, r := range []string{denied, pulled} {
		if slices.Contains(e.emu.Repositories(), r) {
			t.Errorf("%s was created; want not", r)
		}
	}
	if c := e.emu.APICalls("CreateRepository") - creates; c != 0 {
		t.Errorf("CreateRepository calls: got %d; want 0", c)
	}
}

// When ECR refuses the creation (here IAM), the push goes on and the client
// gets ECR's NAME_UNKNOWN unchanged; authsvc logs who, where and why.
func TestCreateOnPushRefusedByECR(t *testing.T) {
	alice := user(t, "alice")
	a := e.do(t, http.MethodPost, "/v2/"+missingRepo+"/blobs/uploads/", basic(alice.Name, alice.Password))
	want := `{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name '` + missingRepo +
		`' does not exist in the registry with id '123456789012'"}]}` + "\n"
	if a.status != http.StatusNotFound || a.body != want {
		t.Errorf("upload start in %s: got %d %q; want 404 %q", missingRepo, a.status, a.body, want)
	}
	waitFor(t, 5*time.Second, "the refusal in authsvc's log", func() bool {
		for _, l := range logLines(t, "repository not created; the push goes on to ecr") {
			if l["user"] == "alice" && l["repository"] == missingRepo && l["reason"] == "denied" && l["operation"] == "CreateRepository" {
				return true
			}
		}
		return false
	})
	if slices.Contains(e.emu.Repositories(), missingRepo) {
		t.Errorf("%s exists; want it refused", missingRepo)
	}
}
