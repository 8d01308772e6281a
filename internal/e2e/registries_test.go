package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

// The gateway fronts two registries (ECR_REGISTRIES): account A for the
// names the other tests use (127.0.0.1, localhost), account B for hostB, a
// name only the Host header carries. No "*": any other name gets 421.
const (
	accountA      = "123456789012"
	accountB      = "210987654321"
	hostB         = "registry-b.test"
	e2eRegistries = "127.0.0.1=" + accountA + ", localhost=" + accountA + ", " + hostB + "=" + accountB
)

// Chunk variables of each registry's token in the include: A's is the
// primary registry (upstream ecr_registry), B's are named after its upstream.
var (
	tokenChunksA = regexp.MustCompile(`\$ecr_token_\d+ \{ default "([A-Za-z0-9+/=]+)"; \}`)
	tokenChunksB = regexp.MustCompile(`\$ecr_` + accountB + `_` + strings.ReplaceAll(awsRegion, "-", "_") + `_token_\d+ \{ default "([A-Za-z0-9+/=]+)"; \}`)
)

func (e *env) includeToken(t *testing.T, chunks *regexp.Regexp) string {
	t.Helper()
	b, err := os.ReadFile(e.tokenFile())
	if err != nil {
		t.Fatal(err)
	}
	var tok strings.Builder
	for _, m := range chunks.FindAllStringSubmatch(string(b), -1) {
		tok.WriteString(m[1])
	}
	return tok.String()
}

// doHost is do with another Host header.
func (e *env) doHost(t *testing.T, host, method, path, authorization string) answer {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.httpAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body.String()}
}

// hostBOpts are remoteOpts for registry-b.test:<gateway http port>: the name
// is dialled at 127.0.0.1 (there is no DNS here); plain HTTP.
func (e *env) hostBOpts(user, pass string) []remote.Option {
	tr := e.client.Transport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, p, err := net.SplitHostPort(addr); err == nil && h == hostB {
			addr = net.JoinHostPort("127.0.0.1", p)
		}
		return d.DialContext(ctx, network, addr)
	}
	return append(e.remoteOpts(user, pass), remote.WithTransport(tr))
}

func (e *env) hostBRef(t *testing.T, repoAndTag string) name.Reference {
	t.Helper()
	_, port, _ := net.SplitHostPort(e.httpAddr)
	ref, err := name.ParseReference(hostB+":"+port+"/"+repoAndTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// inBackend reports whether reg's docker-registry holds repo:tag.
func inBackend(t *testing.T, reg *ecremu.Registry, repo, tag string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, reg.URL()+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// A push through each host name lands in that host's registry only, a pull
// through B comes from B (its own S3), and each registry got only tokens
// minted for its own account.
func TestRegistriesRouteByHost(t *testing.T) {
	alice := user(t, "alice")
	refA, _ := name.ParseReference(e.httpAddr + "/" + repoName + ":only-a")
	if err := remote.Write(refA, imageOf(t, 2<<10), e.remoteOpts(alice.Name, alice.Password)...); err != nil {
		t.Fatalf("push through 127.0.0.1 (registry A): %v", err)
	}
	imgB := imageOf(t, 3<<10)
	if err := remote.Write(e.hostBRef(t, repoName+":only-b"), imgB, e.hostBOpts(alice.Name, alice.Password)...); err != nil {
		t.Fatalf("push through %s (registry B): %v", hostB, err)
	}
	for _, c := range []struct {
		reg       *ecremu.Registry
		which     string
		tag       string
		wantThere bool
	}{
		{e.registry, "A", "only-a", true}, {e.registry, "A", "only-b", false},
		{e.registryB, "B", "only-b", true}, {e.registryB, "B", "only-a", false},
	} {
		if got := inBackend(t, c.reg, repoName, c.tag); got != c.wantThere {
			t.Errorf("registry %s holds %s:%s: %v; want %v", c.which, repoName, c.tag, got, c.wantThere)
		}
	}
	pulled, err := remote.Image(e.hostBRef(t, repoName+":only-b"), e.hostBOpts(alice.Name, alice.Password)...)
	if err != nil {
		t.Fatalf("pull through %s: %v", hostB, err)
	}
	want, _ := imgB.Digest()
	if got, err := pulled.Digest(); err != nil || got != want {
		t.Errorf("pulled %v (%v); want %v", got, err, want)
	}
	layers, _ := pulled.Layers()
	for _, l := range layers {
		rc, err := l.Compressed() // through B's S3 redirect
		if err != nil {
			t.Fatalf("layer through %s: %v", hostB, err)
		}
		rc.Close()
	}
	if _, err := remote.Image(e.hostBRef(t, repoName+":only-a"), e.hostBOpts(alice.Name, alice.Password)...); err == nil {
		t.Errorf("pull of only-a through %s: got success; want MANIFEST_UNKNOWN (it lives in A)", hostB)
	}
	if n := e.emu.CrossAccountTokenUses(); n != 0 {
		t.Errorf("a registry received %d requests with a token minted for the other account; want 0", n)
	}
	assertNoForeignCredentials(t)
}

// Each registry's token is its own: the include holds two different tokens,
// and $ecr_authorization gives each host name its registry's.
func TestRegistriesEachHostItsToken(t *testing.T) {
	tokA, tokB := e.includeToken(t, tokenChunksA), e.includeToken(t, tokenChunksB)
	if tokA == "" || tokB == "" || tokA == tokB {
		t.Fatalf("include holds tokens of %d and %d chars, equal %v; want two different tokens", len(tokA), len(tokB), tokA == tokB)
	}
	alice := user(t, "alice")
	for _, host := range []string{"127.0.0.1", "localhost", hostB} {
		if a := e.doHost(t, host, http.MethodGet, "/v2/"+repoName+"/tags/list", basic(alice.Name, alice.Password)); a.status != http.StatusOK {
			t.Errorf("Host %s: got %d %s; want 200", host, a.status, a.body)
		}
	}
	if n := e.emu.CrossAccountTokenUses(); n != 0 {
		t.Errorf("a registry received %d requests with a token minted for the other account; want 0", n)
	}
}

// A host name no registry serves gets 421 in the registry's JSON error
// format, before authentication; /healthz answers under any name.
func TestRegistriesUnknownHost(t *testing.T) {
	alice := user(t, "alice")
	for _, c := range []struct{ path, auth string }{
		{"/v2/", ""}, {"/v2/", basic(alice.Name, alice.Password)}, {"/v2/" + repoName + "/tags/list", ""},
		{"/v2/" + repoName + "/tags/list", basic(alice.Name, alice.Password)},
	} {
		a := e.doHost(t, "unknown.test", http.MethodGet, c.path, c.auth)
		want := `{"errors":[{"code":"UNSUPPORTED","message":"this gateway serves no registry for this host name"}]}` + "\n"
		if a.status != http.StatusMisdirectedRequest || a.body != want || a.header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s (auth %v) for unknown.test: got %d %q (%s); want 421 %q (application/json)",
				c.path, c.auth != "", a.status, a.body, a.header.Get("Content-Type"), want)
		}
		if a.header.Get("WWW-Authenticate") != "" {
			t.Errorf("GET %s for unknown.test carries a login challenge; want none", c.path)
		}
	}
	if a := e.doHost(t, "unknown.test", http.MethodGet, "/healthz", ""); a.status != http.StatusOK {
		t.Errorf("/healthz for unknown.test: got %d; want 200", a.status)
	}
}

// While account B's token calls fail, B keeps its token in place and keeps
// serving, A's token is still refreshed, and B recovers with ECR.
func TestRegistriesOneAccountFailing(t *testing.T) {
	alice := user(t, "alice")
	calls := len(e.emu.TokenCallLog())
	e.emu.FailTokenCallsFor(accountB, 1_000_000, ecremu.InternalError)
	defer e.emu.FailTokenCallsFor(accountB, 0, ecremu.InternalError)
	// A refresh that fetched B's token just before may still install it;
	// tokenwriter's refreshes run one after another, so once a call for B
	// has failed, that install is done.
	waitFor(t, 30*time.Second, "a failed token call for B", func() bool {
		for _, c := range e.emu.TokenCallLog()[calls:] {
			if c.Failed && slices.Equal(c.RegistryIDs, []string{accountB}) {
				return true
			}
		}
		return false
	})
	beforeB := e.includeToken(t, tokenChunksB)

	seenA := map[string]bool{e.includeToken(t, tokenChunksA): true}
	waitFor(t, 40*time.Second, "two refreshes of A while B fails", func() bool {
		seenA[e.includeToken(t, tokenChunksA)] = true
		return len(seenA) >= 3
	})
	failedB := 0
	for _, c := range e.emu.TokenCallLog()[calls:] {
		if c.Failed && slices.Equal(c.RegistryIDs, []string{accountB}) {
			failedB++
		}
	}
	if failedB == 0 {
		t.Errorf("no failed token call for account B; want tokenwriter to have tried")
	}
	if got := e.includeToken(t, tokenChunksB); got != beforeB {
		t.Errorf("B's token changed while its calls failed; want the old one kept")
	}
	// The ping: ECR answers it for any valid token, whatever repositories B has.
	if a := e.doHost(t, hostB, http.MethodGet, "/v2/", basic(alice.Name, alice.Password)); a.status != http.StatusOK {
		t.Errorf("Host %s while its refreshes fail: got %d; want 200 with the old token", hostB, a.status)
	}
	if resp, err := http.Get("http://" + e.tokenwriterAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("tokenwriter /readyz while B's old token is valid for hours: got %v %v; want 200", resp, err)
	} else {
		resp.Body.Close()
	}

	e.emu.FailTokenCallsFor(accountB, 0, ecremu.InternalError)
	waitFor(t, 40*time.Second, "a new token for B after ECR recovered", func() bool {
		return e.includeToken(t, tokenChunksB) != beforeB
	})
}

// Every GetAuthorizationToken call named exactly one of the two registries
// in registryIds (cross-account registries need it), and both were asked.
func TestRegistriesRegistryIDsAlwaysSent(t *testing.T) {
	asked := map[string]int{}
	for i, c := range e.emu.TokenCallLog() {
		if len(c.RegistryIDs) != 1 || (c.RegistryIDs[0] != accountA && c.RegistryIDs[0] != accountB) {
			t.Errorf("call %d named registryIds %v; want exactly one of %s, %s", i, c.RegistryIDs, accountA, accountB)
			continue
		}
		asked[c.RegistryIDs[0]]++
	}
	if asked[accountA] == 0 || asked[accountB] == 0 {
		t.Errorf("got calls per account %v; want both asked", asked)
	}
}
