package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// denial asserts a 403 in the registry's JSON format whose message contains want.
func denial(t *testing.T, a answer, want string) {
	t.Helper()
	if a.status != http.StatusForbidden {
		t.Fatalf("got %d %q; want 403", a.status, a.body)
	}
	assertRegistryError(t, a, "DENIED")
	if !strings.Contains(a.body, want) {
		t.Errorf("denial: got %s; want a message containing %q", a.body, want)
	}
}

// A push to a repository one may only pull fails in the docker client with
// the policy's reason, in the registry's JSON error format.
func TestPolicyPushDeniedWithReason(t *testing.T) {
	bob := user(t, "bob")
	denial(t, e.do(t, http.MethodPost, "/v2/team-b/api/blobs/uploads/", basic(bob.Name, bob.Password)),
		"bob may pull but not push team-b/api")

	ref, err := name.ParseReference(e.httpAddr + "/team-b/api:denied")
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(ref, imageOf(t, 1<<10), e.remoteOpts(bob.Name, bob.Password)...)
	if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), "bob may pull but not push team-b/api") {
		t.Errorf("push as bob to team-b/api: got %v; want DENIED with the reason", err)
	}
	// Pull is allowed there: the request reaches ECR, which has no tags in
	// that repository yet.
	if a := e.do(t, http.MethodGet, "/v2/team-b/api/tags/list", basic(bob.Name, bob.Password)); a.status != http.StatusOK &&
		!(a.status == http.StatusNotFound && strings.Contains(a.body, "NAME_UNKNOWN")) {
		t.Errorf("GET team-b/api tags as bob: got %d %q; want ECR's answer (200, or 404 for no tags)", a.status, a.body)
	}
	// No rule names team-c at all: the registry client shows why.
	denial(t, e.do(t, http.MethodGet, "/v2/team-c/secret/tags/list", basic(bob.Name, bob.Password)),
		"bob may not pull team-c/secret")
	secret, err := name.ParseReference(e.httpAddr + "/team-c/secret:latest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(secret, e.remoteOpts(bob.Name, bob.Password)...); err == nil ||
		!strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), "bob may not pull team-c/secret") {
		t.Errorf("pull as bob from team-c/secret: got %v; want DENIED with the reason", err)
	}
}

// Delete needs the ops group (an escaped comma in its DN, named by its cn in
// the policy); the first matching rule decides.
func TestPolicyDeleteNeedsGroup(t *testing.T) {
	alice, bob := user(t, "alice"), user(t, "bob")
	ref, err := name.ParseReference(e.httpAddr + "/" + repoName + ":to-delete")
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, 1<<10)
	if err := remote.Write(ref, img, e.remoteOpts(alice.Name, alice.Password)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	d, _ := img.Digest()
	path := "/v2/" + repoName + "/manifests/" + d.String()
	denial(t, e.do(t, http.MethodDelete, path, basic(bob.Name, bob.Password)),
		"bob may pull and push but not delete "+repoName)
	byDigest, err := name.ParseReference(e.httpAddr + "/" + repoName + "@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(byDigest, e.remoteOpts(bob.Name, bob.Password)...); err == nil ||
		!strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), "not delete") {
		t.Errorf("delete as bob with the registry client: got %v; want DENIED with the reason", err)
	}
	if a := e.do(t, http.MethodDelete, path, basic(alice.Name, alice.Password)); a.status != http.StatusAccepted {
		t.Errorf("DELETE as alice (ops): got %d %q; want 202", a.status, a.body)
	}
}

// A cross-repository mount needs pull on the source repository too.
func TestPolicyMountNeedsPullOnSource(t *testing.T) {
	alice := user(t, "alice")
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	denial(t, e.do(t, http.MethodPost, "/v2/"+repoName+"/blobs/uploads/?mount="+digest+"&from=team-c/secret", basic(alice.Name, alice.Password)),
		"may not pull team-c/secret to mount a blob from it into "+repoName)
	a := e.do(t, http.MethodPost, "/v2/"+repoName+"/blobs/uploads/?mount="+digest+"&from=team-b%2Fapi", basic(alice.Name, alice.Password))
	if a.status != http.StatusAccepted && a.status != http.StatusCreated {
		t.Errorf("mount from team-b/api (pullable): got %d %q; want 202 or 201", a.status, a.body)
	}
}

// Paths that could make the policy and ECR see different repositories are
// refused, never guessed.
func TestPolicyRefusesPathTricks(t *testing.T) {
	alice := user(t, "alice")
	for _, path := range []string{
		"/v2/team-a%2Fapp/manifests/v1",
		"/v2/team-a/%61pp/manifests/v1",
		"/v2/team-a/../team-c/secret/manifests/v1",
		"/v2/team-a/app/../../team-c/secret/tags/list",
		"/v2/team-a//app/manifests/v1",
		"/v2/Team-A/app/manifests/v1",
		"/v2/team-a/app/manifests/v1/../../../../team-c/secret/tags/list",
	} {
		t.Run(path, func(t *testing.T) {
			a := e.do(t, http.MethodGet, path, basic(alice.Name, alice.Password))
			if a.status != http.StatusForbidden && a.status != http.StatusBadRequest {
				t.Errorf("got %d %q; want 403 or 400", a.status, a.body)
			}
		})
	}
}

// "Who pushed this tag and when" is one grep: authsvc's audit line and
// nginx's access line both name the user, action and repository.
func TestAuditTrail(t *testing.T) {
	alice := user(t, "alice")
	ref, err := name.ParseReference(e.httpAddr + "/" + repoName + ":audited")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, imageOf(t, 1<<10), e.remoteOpts(alice.Name, alice.Password)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	var audit, access bool
	waitFor(t, 5*time.Second, "the audit and access lines", func() bool {
		audit, access = false, false
		f, err := os.Open(e.gatewayLog.Name())
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			if line["user"] != "alice" {
				continue
			}
			if line["action"] == "push" && line["repository"] == repoName && line["reference"] == "audited" && line["decision"] == "allow" {
				audit = true
			}
			if line["method"] == "PUT" && line["repository"] == repoName && line["reference"] == "audited" && line["status"] == float64(201) {
				access = true
			}
		}
		return audit && access
	})
	if strings.Contains(readFile(t, e.gatewayLog.Name()), alice.Password) {
		t.Error("the gateway's logs contain alice's password")
	}
}

// The policy reloads on change; a broken new file keeps the old one.
func TestPolicyReloads(t *testing.T) {
	bob := user(t, "bob")
	push := func() answer {
		return e.do(t, http.MethodPost, "/v2/team-b/api/blobs/uploads/", basic(bob.Name, bob.Password))
	}
	writePolicy := func(body string) {
		t.Helper()
		// A new mtime and size, so the watcher sees the change.
		time.Sleep(20 * time.Millisecond)
		if err := os.WriteFile(e.policyFile, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		writePolicy(e2ePolicy)
		waitFor(t, 10*time.Second, "the original policy back", func() bool { return push().status == http.StatusForbidden })
	}()

	granting := strings.Replace(e2ePolicy, "  - name: readers\n", "  - name: bob pushes team-b\n    repositories: [\"team-b/**\"]\n    actions: [pull, push]\n    users: [bob]\n  - name: readers\n", 1)
	writePolicy(granting)
	waitFor(t, 10*time.Second, "bob allowed to push after the reload", func() bool { return push().status == http.StatusAccepted })

	writePolicy("rules:\n  - repositories: [\"team-*\"]\n    actions: [pusj]\n")
	time.Sleep(time.Second) // several poll intervals
	if a := push(); a.status != http.StatusAccepted {
		t.Errorf("after a broken policy file: got %d; want 202 (the previous policy kept)", a.status)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// SIGHUP to the runner (systemd's ExecReload) reloads the policy and stops
// nothing.
func TestSIGHUPToRunnerReloadsPolicy(t *testing.T) {
	bob := user(t, "bob")
	push := func() int {
		return e.do(t, http.MethodPost, "/v2/team-b/api/blobs/uploads/", basic(bob.Name, bob.Password)).status
	}
	granting := strings.Replace(e2ePolicy, "  - name: readers\n", "  - name: bob pushes team-b\n    repositories: [\"team-b/**\"]\n    actions: [pull, push]\n    users: [bob]\n  - name: readers\n", 1)
	defer func() {
		if err := os.WriteFile(e.policyFile, []byte(e2ePolicy), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = e.gateway.Process.Signal(syscall.SIGHUP)
		waitFor(t, 10*time.Second, "the original policy back", func() bool { return push() == http.StatusForbidden })
	}()
	if err := os.WriteFile(e.policyFile, []byte(granting), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.gateway.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "bob allowed to push after SIGHUP", func() bool { return push() == http.StatusAccepted })
	select {
	case err := <-e.gatewayDone:
		t.Fatalf("the gateway exited on SIGHUP: %v", err)
	default:
	}
}
