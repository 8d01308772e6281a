package e2e

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

// Push and pull throughput of one image (E2E_THROUGHPUT_MB, 1024 by default)
// through the gateway's two listeners and straight to the emulator's
// registry front with the gateway's own ECR token, in one run. A benchmark
// (E2E_THROUGHPUT=1): it prints MB/s, the gateway/direct ratio (goal ≥ 0.9),
// nginx's CPU seconds and nginx and authsvc memory, and asserts only digests
// and flat memory. E2E_THROUGHPUT_ROUNDS interleaves rounds and reports
// medians; E2E_THROUGHPUT_PIN=1 gives nginx a CPU of its own (pinApart).
// Blob downloads are ECR's 307 to S3 on every path, so pulls differ only
// in the manifest and redirect requests.
func TestThroughputVersusDirect(t *testing.T) {
	if os.Getenv("E2E_THROUGHPUT") != "1" {
		t.Skip("a benchmark: set E2E_THROUGHPUT=1")
	}
	sizeMB := envInt(t, "E2E_THROUGHPUT_MB", 1024)
	layer := newGenLayer(t, 7, int64(sizeMB)<<20)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	alice := user(t, "alice")
	gatewayAuth := authn.FromConfig(authn.AuthConfig{Username: alice.Name, Password: alice.Password})
	tls := func(addr string) string { return "127.0.0.1:" + addr[strings.LastIndex(addr, ":")+1:] }

	type target struct {
		name, host, repo string
		auth             authn.Authenticator
	}
	// Each target its own repository: a blob already in the repository
	// would not be uploaded again.
	targets := []target{
		{"direct (TLS)", e.emu.RegistryHost(), "team-a/throughput-direct", nil},
		{"gateway TLS", tls(e.httpsAddr), "team-a/throughput-tls", gatewayAuth},
		{"gateway plain HTTP", e.httpAddr, "team-a/throughput-http", gatewayAuth},
	}
	results := map[string][]throughputResult{}
	pinned := os.Getenv("E2E_THROUGHPUT_PIN") == "1"
	if pinned {
		defer pinApart(t)()
	}
	// Rounds interleave the targets; the report gives each one's median.
	rounds := envInt(t, "E2E_THROUGHPUT_ROUNDS", 1)
	s := startProcSampler(t)
	for round := range rounds {
		for _, tg := range targets {
			if rounds > 1 {
				tg.repo = fmt.Sprintf("%s-%d", tg.repo, round)
			}
			results[tg.name] = append(results[tg.name], measure(t, tg.name, tg.host, tg.repo, tg.auth, img, layer))
		}
	}
	m := s.stop()

	var report strings.Builder
	direct := median(results[targets[0].name])
	fmt.Fprintf(&report, "%d MiB image, one layer, median of %d interleaved rounds", sizeMB, rounds)
	if pinned {
		report.WriteString("; nginx pinned to CPU 1, everything else to CPU 0")
	}
	report.WriteString("\n")
	for _, tg := range targets {
		r := median(results[tg.name])
		fmt.Fprintf(&report, "%-20s push %7.1f MB/s (%s, %.2f of direct)  pull %7.1f MB/s (%s, %.2f of direct)  nginx CPU %.2f s\n", tg.name,
			mbps(layer.size, r.push), r.push.Round(time.Millisecond), direct.push.Seconds()/r.push.Seconds(),
			mbps(layer.size, r.pull), r.pull.Round(time.Millisecond), direct.pull.Seconds()/r.pull.Seconds(), r.nginxCPU)
	}
	fmt.Fprintf(&report, "%s\n", m)
	t.Log("\n" + report.String())
	if out := os.Getenv("E2E_THROUGHPUT_REPORT"); out != "" {
		_ = os.WriteFile(out, []byte(report.String()), 0o644)
	}
	m.assertFlat(t, 64<<10)
	assertNoForeignCredentials(t)
}

type throughputResult struct {
	push, pull time.Duration
	nginxCPU   float64 // nginx's CPU seconds for the push and the pull
}

// median takes each field's median on its own.
func median(rs []throughputResult) throughputResult {
	pick := func(f func(throughputResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return throughputResult{
		push:     time.Duration(pick(func(r throughputResult) float64 { return float64(r.push) })),
		pull:     time.Duration(pick(func(r throughputResult) float64 { return float64(r.pull) })),
		nginxCPU: pick(func(r throughputResult) float64 { return r.nginxCPU }),
	}
}

// measure pushes img to host/repo (created first) and pulls its layer back.
// A nil auth means the gateway's current ECR token, straight to the registry.
func measure(t *testing.T, target, host, repo string, auth authn.Authenticator, img v1.Image, layer *genLayer) throughputResult {
	t.Helper()
	if err := e.emu.CreateRepository(repo); err != nil && !errors.Is(err, ecremu.ErrRepositoryExists) {
		t.Fatal(err)
	}
	if auth == nil {
		// Fetched per push: tokenwriter rotates it every few seconds.
		auth = &authn.Basic{Username: "AWS", Password: ecrPassword(t)}
	}
	ref, err := name.ParseReference(host + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithAuth(auth), remote.WithTransport(e.client.Transport)}
	cpu := nginxCPUSeconds(t)
	start := time.Now()
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("%s: push: %v", target, err)
	}
	push := time.Since(start)
	start = time.Now()
	pullLayer(t, ref, layer.digest, opts)
	return throughputResult{push: push, pull: time.Since(start), nginxCPU: nginxCPUSeconds(t) - cpu}
}

// ecrPassword is the password inside the gateway's current ECR token
// (base64 of "AWS:<password>").
func ecrPassword(t *testing.T) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(e.currentToken(t))
	if err != nil {
		t.Fatalf("token in the include file: %v", err)
	}
	pw, ok := strings.CutPrefix(string(raw), "AWS:")
	if !ok {
		t.Fatal("token in the include file is not AWS:<password>")
	}
	return pw
}
