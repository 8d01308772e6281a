package ecremu_test

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

const otherAccount = "210987654321"

// Two accounts: each registryId gets its own front in proxyEndpoint, each
// front its own repositories, and a token works on both (one principal),
// cross-account uses counted.
func TestAccounts(t *testing.T) {
	e := startEmulator(t, ecremu.Config{AccountID: "123456789012", Accounts: []ecremu.Account{
		{ID: otherAccount, Backend: "http://127.0.0.1:1"},
	}})
	b := e.Account(otherAccount)
	if b == nil || e.Account("123456789012") != e || e.Account("999999999999") != nil {
		t.Fatalf("Account: got %v for the other account; want its registry, e for the main one, nil otherwise", b)
	}
	if b.RegistryHost() == e.RegistryHost() {
		t.Fatalf("both accounts' fronts are %s; want one each", b.RegistryHost())
	}
	api := ecrClient(t, e, testAccessKey, testSecret, testRegion)
	out, err := api.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{otherAccount, "123456789012"}})
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, d := range out.AuthorizationData {
		endpoints = append(endpoints, aws.ToString(d.ProxyEndpoint))
	}
	if want := []string{"https://" + b.RegistryHost(), "https://" + e.RegistryHost()}; !slices.Equal(endpoints, want) {
		t.Errorf("got proxyEndpoints %v; want %v", endpoints, want)
	}

	if err := b.CreateRepository("team-b/app"); err != nil {
		t.Fatal(err)
	}
	if got := e.Repositories(); slices.Contains(got, "team-b/app") {
		t.Errorf("main account has %v; want the other account's repository only there", got)
	}
	token := "Basic " + aws.ToString(out.AuthorizationData[0].AuthorizationToken)
	if resp := frontRequest(t, b, http.MethodGet, "/v2/", token); resp.StatusCode != http.StatusOK {
		t.Errorf("other front /v2/: got %d; want 200", resp.StatusCode)
	}
	if n := e.CrossAccountTokenUses(); n != 0 {
		t.Errorf("got %d cross-account uses; want 0 (the token named both)", n)
	}

	// A token minted for the main account only still works on the other
	// front, as ECR's does for a principal allowed there, and is counted.
	mainOnly, err := api.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{"123456789012"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := aws.ToString(mainOnly.AuthorizationData[0].AuthorizationToken)
	if raw, _ := base64.StdEncoding.DecodeString(tok); !strings.HasPrefix(string(raw), "AWS:") {
		t.Fatalf("token does not decode to AWS:...")
	}
	if resp := frontRequest(t, b, http.MethodGet, "/v2/", "Basic "+tok); resp.StatusCode != http.StatusOK {
		t.Errorf("other front with the main account's token: got %d; want 200", resp.StatusCode)
	}
	if n := e.CrossAccountTokenUses(); n != 1 {
		t.Errorf("got %d cross-account uses; want 1", n)
	}
	if resp := frontRequest(t, e, http.MethodGet, "/v2/", "Basic "+tok); resp.StatusCode != http.StatusOK || e.CrossAccountTokenUses() != 1 {
		t.Errorf("main front with its own token: got %d, %d cross-account uses; want 200, still 1", resp.StatusCode, e.CrossAccountTokenUses())
	}
}

// Failures injected for one account leave the other's calls alone; every
// call is logged with its registryIds.
func TestFailTokenCallsFor(t *testing.T) {
	e := startEmulator(t, ecremu.Config{Accounts: []ecremu.Account{{ID: otherAccount, Backend: "http://127.0.0.1:1"}}})
	api := ecrClient(t, e, testAccessKey, testSecret, testRegion)
	e.FailTokenCallsFor(otherAccount, 100, ecremu.Throttle)
	if _, err := api.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{otherAccount}}); apiErrorCode(err) != "ThrottlingException" {
		t.Errorf("call for the failing account: got %v; want ThrottlingException", err)
	}
	if _, err := api.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{ecremu.DefaultAccountID}}); err != nil {
		t.Errorf("call for the other account: got %v; want success", err)
	}
	if _, err := api.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{}); err != nil {
		t.Errorf("call naming no registry: got %v; want success", err)
	}
	log := e.TokenCallLog()
	if len(log) < 3 {
		t.Fatalf("got %d calls logged; want at least 3", len(log))
	}
	last := log[len(log)-1]
	prev := log[len(log)-2]
	if last.RegistryIDs != nil || last.Failed || !slices.Equal(prev.RegistryIDs, []string{ecremu.DefaultAccountID}) || prev.Failed || !log[0].Failed || !slices.Equal(log[0].RegistryIDs, []string{otherAccount}) {
		t.Errorf("got call log %+v; want the failed calls for %s, then one for %s, then one naming none", log, otherAccount, ecremu.DefaultAccountID)
	}
	e.FailTokenCallsFor(otherAccount, 0, ecremu.Throttle)
	if _, err := api.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{otherAccount}}); err != nil {
		t.Errorf("after clearing: got %v; want success", err)
	}
}

func TestAccountsValidate(t *testing.T) {
	_, err := ecremu.Start(t.Context(), ecremu.Config{Backend: "http://127.0.0.1:1", AccessKeyID: "a", SecretAccessKey: "s",
		Accounts: []ecremu.Account{{ID: ecremu.DefaultAccountID, Backend: "x"}, {ID: "12"}}})
	if err == nil {
		t.Fatal("got no error; want one")
	}
	for _, want := range []string{"Accounts[0].ID: account", "Accounts[0].Backend", "Accounts[1].ID: want 12 digits", "Accounts[1].Backend"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q; want it to contain %q", err, want)
		}
	}
}
