package tokenwriter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/prometheus/client_golang/prometheus"
)

func TestParseRegistries(t *testing.T) {
	for _, tc := range []struct {
		in         string
		wantRoutes []Route
		wantRegs   []Registry
	}{
		{"registry.example=123456789012", []Route{{"registry.example", 0}}, []Registry{{"123456789012", "eu-west-3", ""}}},
		{" A.Example. = 123456789012/us-east-1 ,b.example=210987654321.dkr.ecr.eu-central-1.amazonaws.com, ",
			[]Route{{"a.example", 0}, {"b.example", 1}},
			[]Registry{{"123456789012", "us-east-1", ""}, {"210987654321", "eu-central-1", ""}}},
		// "*" makes its registry the primary, wherever it is listed.
		{"a.example=111111111111,b.example=222222222222@127.0.0.1:5443,*=222222222222@127.0.0.1:5443,c.example=111111111111",
			[]Route{{"a.example", 1}, {"b.example", 0}, {"*", 0}, {"c.example", 1}},
			[]Registry{{"222222222222", "eu-west-3", "127.0.0.1:5443"}, {"111111111111", "eu-west-3", ""}}},
		{"127.0.0.1=111111111111,[::1]=111111111111/cn-north-1@ecr.internal", []Route{{"127.0.0.1", 0}, {"[::1]", 1}},
			[]Registry{{"111111111111", "eu-west-3", ""}, {"111111111111", "cn-north-1", "ecr.internal"}}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			routes, regs, err := parseRegistries(tc.in, "eu-west-3")
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if !slices.Equal(routes, tc.wantRoutes) || !slices.Equal(regs, tc.wantRegs) {
				t.Errorf("got %v %v; want %v %v", routes, regs, tc.wantRoutes, tc.wantRegs)
			}
		})
	}
}

func TestParseRegistriesRefusesBadEntries(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "no entries"},
		{" , ", "no entries"},
		{"registry.example", `entry "registry.example": want <gateway host>=<registry>`},
		{"a.example:443=123456789012", "without a port"},
		{"a b=123456789012", "not a host name"},
		{`a"x=123456789012`, "not a host name"},
		{"default=123456789012", "map keyword"},
		{"a.example=12345", "12-digit account id"},
		{"a.example=123456789012/EU_WEST", "not a region name"},
		{"a.example=123456789012@h;x", "endpoint"},
		{"a.example=123456789012.dkr.ecr.eu-west-1.amazonaws.org", "12-digit account id"},
		{"a.example=123456789012,A.example=210987654321", "a.example is already listed"},
		{"*=123456789012,*=210987654321", "* is already listed"},
		{"a.example=123456789012@x.example,b.example=123456789012", "already listed with endpoint"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, _, err := parseRegistries(tc.in, "eu-west-3")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ECR_REGISTRIES") {
				t.Errorf("got %v; want an ECR_REGISTRIES error containing %q", err, tc.want)
			}
		})
	}
	if _, _, err := parseRegistries("a.example=123456789012", ""); err == nil || !strings.Contains(err.Error(), "no region") {
		t.Errorf("no region anywhere: got %v; want an error", err)
	}
}

func TestLoadRegistries(t *testing.T) {
	setConfigEnv(t, map[string]string{"AWS_REGION": "eu-west-3", "ECR_REGISTRIES": "a.example=123456789012,bad", "ECR_REGISTRY_ID": "123456789012", "ECR_REGISTRY_HOST": "h.example"})
	_, err := Load()
	if err == nil || !strings.Contains(err.Error(), "ECR_REGISTRIES: cannot be set together with ECR_REGISTRY_ID or ECR_REGISTRY_HOST") {
		t.Errorf("got %v; want the conflict named", err)
	}
	setConfigEnv(t, map[string]string{"AWS_REGION": "eu-west-3", "ECR_REGISTRIES": "a.example=123456789012,bad,c=1"})
	_, err = Load()
	if err == nil || !strings.Contains(err.Error(), `entry "bad"`) || !strings.Contains(err.Error(), `entry "c=1"`) {
		t.Errorf("got %v; want both bad entries quoted", err)
	}
	setConfigEnv(t, map[string]string{"AWS_REGION": "eu-west-3", "ECR_REGISTRIES": "a.example=123456789012"})
	c, err := Load()
	if err != nil || c.Registries != "a.example=123456789012" {
		t.Errorf("got %+v, %v; want ECR_REGISTRIES loaded", c, err)
	}
}

// multiECR answers GetAuthorizationToken per requested registry id, with
// that account's endpoint and a fresh token each call; accounts in failing
// get an error. It records every input and which region's client got it.
type multiECR struct {
	mu        sync.Mutex
	region    string
	endpoints map[string]string // account -> proxyEndpoint
	failing   map[string]bool
	life      time.Duration
	seed      *uint64
	inputs    *[]recordedCall
}

type recordedCall struct {
	region string
	ids    []string
}

func (f *multiECR) GetAuthorizationToken(_ context.Context, in *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*f.inputs = append(*f.inputs, recordedCall{f.region, slices.Clone(in.RegistryIds)})
	var out ecr.GetAuthorizationTokenOutput
	for _, id := range in.RegistryIds {
		if f.failing[id] {
			return nil, errors.New("ServerException: internal error")
		}
		*f.seed++
		out.AuthorizationData = append(out.AuthorizationData, authData(testTokenValue(4000, *f.seed), f.endpoints[id], time.Now().Add(f.life)))
	}
	return &out, nil
}

func (f *multiECR) fail(id string, v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing[id] = v
}

const (
	accountA = "111111111111"
	accountB = "222222222222"
)

// multiRefresher fronts a.example (and "*") with account A in eu-west-3 and
// b.example with account B in us-east-1, each region with its own client.
func multiRefresher(t *testing.T, nginx string) (*Refresher, *multiECR, *[]recordedCall) {
	t.Helper()
	cfg := testConfig(t, nginx)
	cfg.Registries = "a.example=" + accountA + ",b.example=" + accountB + "/us-east-1,*=" + accountA
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var seed uint64
	var calls []recordedCall
	endpoints := map[string]string{
		accountA: "https://" + accountA + ".dkr.ecr.eu-west-3.amazonaws.com",
		accountB: "https://" + accountB + ".dkr.ecr.us-east-1.amazonaws.com",
	}
	failing := map[string]bool{}
	home := &multiECR{region: "eu-west-3", endpoints: endpoints, failing: failing, life: 12 * time.Hour, seed: &seed, inputs: &calls}
	other := &multiECR{region: "us-east-1", endpoints: endpoints, failing: failing, life: 12 * time.Hour, seed: &seed, inputs: &calls}
	r := NewRefresher(home, nil, cfg, discardLogger())
	r.clients = map[string]ecrAPI{"us-east-1": other}
	return r, home, &calls
}

func TestRefreshSeveralRegistries(t *testing.T) {
	r, api, calls := multiRefresher(t, nginxOK)
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatalf("got %v; want success", err)
	}
	want := []recordedCall{{"eu-west-3", []string{accountA}}, {"us-east-1", []string{accountB}}}
	if !slices.EqualFunc(*calls, want, func(a, b recordedCall) bool { return a.region == b.region && slices.Equal(a.ids, b.ids) }) {
		t.Errorf("got calls %v; want one per registry, each with registryIds, on its region's client", *calls)
	}
	first := r.state.tokens()
	include, _ := os.ReadFile(r.cfg.TokenFile)
	if !bytes.Equal(include, render(r.routes, first, true)) {
		t.Errorf("include is not the rendering of the tokens in place")
	}

	// B fails: A is replaced, B keeps its token, the error names B only.
	api.fail(accountB, true)
	err := r.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), "registry "+accountB+"/us-east-1") || strings.Contains(err.Error(), accountA) {
		t.Fatalf("got %v; want an error naming registry %s/us-east-1 only", err, accountB)
	}
	now := r.state.tokens()
	if now[0].Value == first[0].Value || now[1].Value != first[1].Value {
		t.Errorf("A replaced %v, B kept %v; want A replaced and B kept", now[0].Value != first[0].Value, now[1].Value == first[1].Value)
	}
	include, _ = os.ReadFile(r.cfg.TokenFile)
	if !strings.Contains(string(include), string(now[0].Value)[:3000]) || !strings.Contains(string(include), string(first[1].Value)[:3000]) {
		t.Errorf("include lacks A's new token or B's old one")
	}
	snaps := r.state.snapshots()
	if snaps[0].failures != 0 || snaps[1].failures != 1 {
		t.Errorf("got failures A %d, B %d; want 0, 1", snaps[0].failures, snaps[1].failures)
	}
	// B's next try comes by backoff, A's hours later.
	due, _ := r.state.due(time.Now().Add(time.Second), 0)
	if !slices.Equal(due, []int{1}) {
		t.Errorf("due a second later: %v; want only B", due)
	}
	for _, c := range *calls {
		if len(c.ids) != 1 {
			t.Errorf("call without exactly one registry id: %v", c)
		}
	}

	reg := prometheus.NewRegistry()
	if err := r.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	srv := newServer(r, reg)
	_, body := get(t, srv, "/metrics")
	for _, want := range []string{`tokenwriter_refresh_failures_total{registry="111111111111/eu-west-3"} 0`, `tokenwriter_refresh_failures_total{registry="222222222222/us-east-1"} 1`} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	code, body := get(t, srv, "/readyz")
	if code != http.StatusOK || !strings.Contains(body, "registry 222222222222/us-east-1: ok") {
		t.Errorf("/readyz: got %d %q; want 200 naming each registry", code, body)
	}
}

// -once needs every registry: it fails naming the failing one, writes
// nothing, and a registry that never had a token blocks the include.
func TestOnceNeedsEveryRegistry(t *testing.T) {
	r, api, _ := multiRefresher(t, nginxOK)
	api.fail(accountB, true)
	err := r.Once(context.Background(), 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), accountB+"/us-east-1") || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("got %v; want ErrIncomplete naming %s", err, accountB)
	}
	if _, err := os.Stat(r.cfg.TokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("include written without B's token (%v); want none", err)
	}
	code, body := get(t, newServer(r, prometheus.NewRegistry()), "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "registry 222222222222/us-east-1: no ecr token yet") {
		t.Errorf("/readyz: got %d %q; want 503 naming B", code, body)
	}
	api.fail(accountB, false)
	if err := r.Once(context.Background(), time.Second); err != nil {
		t.Fatalf("got %v; want success once B answers", err)
	}
}

// A probe rejecting one registry's token refreshes that registry only.
func TestRejectionRefreshesThatRegistry(t *testing.T) {
	r, _, calls := multiRefresher(t, nginxOK)
	r.cfg.ProbeInterval = 10 * time.Millisecond
	r.cfg.RejectedRefreshGap = 50 * time.Millisecond
	probe := &fakeProber{rejected: map[Secret]bool{}}
	r.probe = probe
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Loop(ctx) })
	wg.Go(func() { r.ProbeLoop(ctx) })
	defer wg.Wait()
	defer cancel()
	waitUntil(t, 2*time.Second, "both tokens", func() bool { return r.state.validUntil() != time.Time{} })
	before := r.state.tokens()
	probe.reject(before[1].Value)
	waitUntil(t, 2*time.Second, "B's token replaced", func() bool { return r.state.tokens()[1].Value != before[1].Value })
	if r.state.tokens()[0].Value != before[0].Value {
		t.Errorf("A's token was replaced too; want only the rejected registry refreshed")
	}
	api := r.api.(*multiECR)
	api.mu.Lock()
	n := len(*calls)
	api.mu.Unlock()
	if n != 3 {
		t.Errorf("got %d calls; want 3 (both, then B)", n)
	}
}

func TestRenderSeveralRegistriesGolden(t *testing.T) {
	expires := time.Date(2026, 3, 1, 18, 30, 0, 0, time.UTC)
	routes := []Route{{"registry-a.example", 0}, {"registry-b.example", 1}, {"127.0.0.1", 0}}
	tokens := []Token{
		{Value: Secret(testTokenValue(64, 1)), Host: "111111111111.dkr.ecr.eu-west-3.amazonaws.com", Port: "443", ExpiresAt: expires, RegistryID: "111111111111", Region: "eu-west-3"},
		{Value: Secret(testTokenValue(3004, 2)), Host: "127.0.0.1", Port: "5443", ExpiresAt: expires.Add(time.Hour), RegistryID: "222222222222", Region: "us-east-1"},
	}
	checkGolden(t, "several", render(routes, tokens, true))
	routes = append(routes, Route{AnyHost, 0})
	checkGolden(t, "several_star", render(routes, tokens, true))
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden := "testdata/" + name + ".golden"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("render differs from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// The multi-registry include passes nginx -t, and fails closed when cut short.
func TestNginxSeveralRegistriesInclude(t *testing.T) {
	n := newTestNginx(t, 1)
	full := severalInclude("1", "2", 8192)
	if err := n.test(t, full); err != nil {
		t.Fatalf("nginx -t: %v", err)
	}
	for _, cut := range truncationPoints(full) {
		if cut >= len(full)-1 {
			continue
		}
		if err := n.test(t, full[:cut]); err == nil {
			t.Errorf("include cut at byte %d of %d passed nginx -t; want failure:\n%.300s", cut, len(full), full[cut-min(cut, 300):cut])
		}
	}
}

func severalInclude(portA, portB string, size int) []byte {
	exp := time.Now().Add(time.Hour)
	return render([]Route{{"a.example", 0}, {"b.example", 1}},
		[]Token{
			{Value: Secret(testTokenValue(size, 1)), Host: "127.0.0.1", Port: portA, ExpiresAt: exp, RegistryID: accountA, Region: "eu-west-3"},
			{Value: Secret(testTokenValue(size, 2)), Host: "127.0.0.1", Port: portB, ExpiresAt: exp, RegistryID: accountB, Region: "us-east-1"},
		}, true)
}

// On a running nginx, each host name reaches its registry with its token
// and Host, and an unknown name reaches none.
func TestNginxRoutesByHost(t *testing.T) {
	type seen struct{ auth, host string }
	var mu sync.Mutex
	got := map[string][]seen{}
	backend := func(name string) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got[name] = append(got[name], seen{r.Header.Get("Authorization"), r.Host})
			mu.Unlock()
		}))
		srv.Config.MaxHeaderBytes = 1 << 20
		srv.StartTLS()
		t.Cleanup(srv.Close)
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		return port
	}
	portA, portB := backend("A"), backend("B")
	port := freePort(t)
	n := newTestNginx(t, port)
	include := severalInclude(portA, portB, 6400)
	if err := writeAtomic(n.include, include, 0o600); err != nil {
		t.Fatal(err)
	}
	startNginx(t, n, port)
	ask := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v2/", port), nil)
		req.Host = host
		req.SetBasicAuth("alice", "ldap-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, host := range []string{"a.example", "B.Example:8080", "unknown.example"} {
		ask(host)
	}
	mu.Lock()
	defer mu.Unlock()
	wantA := seen{"Basic " + testTokenValue(6400, 1), "127.0.0.1:" + portA}
	wantB := seen{"Basic " + testTokenValue(6400, 2), "127.0.0.1:" + portB}
	if !slices.Equal(got["A"], []seen{wantA}) || !slices.Equal(got["B"], []seen{wantB}) {
		t.Errorf("A saw %d requests, B %d (%v, %v); want one each with its own token and Host", len(got["A"]), len(got["B"]),
			len(got["A"]) == 1 && got["A"][0] == wantA, len(got["B"]) == 1 && got["B"][0] == wantB)
	}
}

// A daemon that starts after -once (a new process) takes the tokens -once
// saved: when one registry's calls fail from the start, the others are still
// refreshed, with the failing one's saved token kept in the include.
func TestRestartWithOneRegistryFailing(t *testing.T) {
	once, _, _ := multiRefresher(t, nginxOK)
	if err := once.Once(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	before := once.state.tokens()

	daemon, api, _ := multiRefresher(t, nginxOK)
	daemon.cfg.TokenFile = once.cfg.TokenFile
	*api.seed = 1000 // other token values than -once's
	api.fail(accountB, true)
	daemon.seed()
	err := daemon.Refresh(context.Background())
	if err == nil || errors.Is(err, ErrIncomplete) {
		t.Fatalf("got %v; want B's failure, not ErrIncomplete", err)
	}
	now := daemon.state.tokens()
	if now[0].Value == before[0].Value || now[1].Value != before[1].Value {
		t.Errorf("A replaced %v, B kept %v; want A replaced and B's saved token kept", now[0].Value != before[0].Value, now[1].Value == before[1].Value)
	}
	include, _ := os.ReadFile(daemon.cfg.TokenFile)
	if !bytes.Equal(include, render(daemon.routes, now, true)) {
		t.Errorf("include is not the rendering of A's new and B's saved token")
	}
}

// Saved tokens are checked like ECR's answers before they go into nginx's
// configuration; a registry that is not configured any more is ignored.
func TestLoadTokensChecks(t *testing.T) {
	regs := []Registry{{AccountID: accountA, Region: "eu-west-3"}, {AccountID: accountB, Region: "us-east-1"}}
	good := Token{Value: Secret(testTokenValue(100, 1)), Host: "h.example", Port: "443", ExpiresAt: time.Now().Add(time.Hour)}
	bad := good
	bad.Host = `h"; }`
	path := filepath.Join(t.TempDir(), "saved.json")
	if err := saveTokens(path, regs, []Token{good, bad}, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := loadTokens(path, regs)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Value != good.Value || got[1].Value != "" {
		t.Errorf("got A %v, B %v; want A loaded and B (bad host) refused", got[0].Value != "", got[1].Value != "")
	}
	got, _ = loadTokens(path, []Registry{{AccountID: "333333333333", Region: "eu-west-3"}})
	if got[0].Value != "" {
		t.Errorf("a registry not in the file got a token")
	}
	if got, err := loadTokens(filepath.Join(t.TempDir(), "missing.json"), regs); err != nil || got[0].Value != "" {
		t.Errorf("missing file: got %v, %v; want no tokens, no error", got, err)
	}
}
