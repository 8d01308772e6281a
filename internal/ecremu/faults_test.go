package ecremu_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

func registryErrorOf(t *testing.T, resp *http.Response) (code, message string) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &v); err != nil || len(v.Errors) != 1 {
		t.Fatalf("body %q is not one registry error: %v", body, err)
	}
	return v.Errors[0].Code, v.Errors[0].Message
}

func TestDenyPush(t *testing.T) {
	reg := startRegistry(t)
	e := startEmulator(t, ecremu.Config{Backend: reg.URL(), AccountID: "210987654321", Region: "eu-west-1"})
	for _, r := range []string{"team/locked", "team/open"} {
		if err := e.CreateRepository(r); err != nil {
			t.Fatal(err)
		}
	}
	e.DenyPush("team/locked")
	auth := basic("AWS", fetchToken(t, e))
	for _, tc := range []struct {
		method, path string
		wantStatus   int
		wantAction   string
	}{
		{http.MethodPost, "/v2/team/locked/blobs/uploads/", http.StatusForbidden, "ecr:InitiateLayerUpload"},
		{http.MethodPatch, "/v2/team/locked/blobs/uploads/abc", http.StatusForbidden, "ecr:UploadLayerPart"},
		{http.MethodPut, "/v2/team/locked/blobs/uploads/abc", http.StatusForbidden, "ecr:CompleteLayerUpload"},
		{http.MethodPut, "/v2/team/locked/manifests/v1", http.StatusForbidden, "ecr:PutImage"},
		// Reads reach the backend, which has no tags for the empty repository.
		{http.MethodGet, "/v2/team/locked/tags/list", http.StatusNotFound, ""},
		{http.MethodPost, "/v2/team/open/blobs/uploads/", http.StatusAccepted, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := frontRequest(t, e, tc.method, tc.path, auth)
			if resp.StatusCode != tc.wantStatus {
				resp.Body.Close()
				t.Fatalf("got %d; want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantAction == "" {
				resp.Body.Close()
				return
			}
			code, msg := registryErrorOf(t, resp)
			want := "User: arn:aws:sts::210987654321:assumed-role/ecr-gateway/i-0123456789abcdef0 is not authorized to perform: " +
				tc.wantAction + " on resource: arn:aws:ecr:eu-west-1:210987654321:repository/team/locked because no identity-based policy allows the " + tc.wantAction + " action"
			if code != "DENIED" || msg != want {
				t.Errorf("got %s %q; want DENIED %q", code, msg, want)
			}
			if msg != e.DeniedPushMessage(tc.wantAction, "team/locked") {
				t.Errorf("DeniedPushMessage disagrees with the answer")
			}
		})
	}
	e.AllowPush("team/locked")
	resp := frontRequest(t, e, http.MethodPost, "/v2/team/locked/blobs/uploads/", auth)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("after AllowPush: got %d; want 202", resp.StatusCode)
	}
}

func TestThrottleRequests(t *testing.T) {
	reg := startRegistry(t)
	e := startEmulator(t, ecremu.Config{Backend: reg.URL()})
	if err := e.CreateRepository("team/app"); err != nil {
		t.Fatal(err)
	}
	auth := basic("AWS", fetchToken(t, e))
	e.ThrottleRequests(2)
	// /v2/ is never throttled; the backend answers 404 for the missing tag.
	ping := frontRequest(t, e, http.MethodGet, "/v2/", auth)
	ping.Body.Close()
	if ping.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ while throttling: got %d; want 200", ping.StatusCode)
	}
	for i, want := range []int{http.StatusTooManyRequests, http.StatusTooManyRequests, http.StatusNotFound} {
		resp := frontRequest(t, e, http.MethodGet, "/v2/team/app/manifests/missing", auth)
		if resp.StatusCode != want {
			resp.Body.Close()
			t.Fatalf("request %d: got %d; want %d", i, resp.StatusCode, want)
		}
		if want == http.StatusTooManyRequests {
			if code, msg := registryErrorOf(t, resp); code != "TOOMANYREQUESTS" || msg != ecremu.ThrottledMessage {
				t.Errorf("got %s %q; want TOOMANYREQUESTS %q", code, msg, ecremu.ThrottledMessage)
			}
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	// An unauthenticated request is refused before any throttling, as on ECR.
	e.ThrottleRequests(1)
	resp := frontRequest(t, e, http.MethodGet, "/v2/team/app/tags/list", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("Www-Authenticate"), "Basic") {
		t.Errorf("got %d; want 401 with a Basic challenge", resp.StatusCode)
	}
}
