package authsvc

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMetricsExposed(t *testing.T) {
	auth := &countingAuth{passwords: map[string]string{"bob": "pw"}, forbidden: map[string]bool{}}
	s := newTestService(auth, Options{CacheTTL: time.Minute, CacheSize: 10, Limits: testLimits})
	s.do(basic("bob:pw"), "192.0.2.1")
	s.do(basic("bob:pw"), "192.0.2.1")
	failAs(s, "bob", "192.0.2.1", 4)

	srv := httptest.NewServer(MetricsHandler(s.reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		`authsvc_decisions_total{result="allow"} 2`,
		`authsvc_decisions_total{result="deny_401"} 3`,
		`authsvc_decisions_total{result="limited"} 1`,
		`authsvc_decisions_total{result="deny_403"} 0`,
		`authsvc_decisions_total{result="error"} 0`,
		`authsvc_request_duration_seconds_bucket{cache="hit",le="5e-05"}`,
		`authsvc_request_duration_seconds_count{cache="miss"} 5`,
		"authsvc_cache_hits_total 1",
		"authsvc_cache_misses_total 5",
		"authsvc_cache_evictions_total 0",
		"authsvc_cache_entries 1",
		"authsvc_backend_checks_total 4",
		"authsvc_singleflight_shared_total 0",
		"authsvc_grace_allows_total 0",
		`authsvc_limiter_trips_total{scope="user_ip"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// Run serves /metrics on AUTH_METRICS_ADDR, apart from the nginx listener.
func TestRunServesMetrics(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := free.Addr().String()
	free.Close()
	cfg := Config{
		LDAPURL: "ldap://127.0.0.1:1/dc=example,dc=org?uid?sub", LDAPGroupMemberAttribute: "member",
		LDAPDialTimeout: time.Second, LDAPTimeout: time.Second, ListenAddr: "127.0.0.1:0",
		Realm: testRealm, LogLevel: "info", Service: defaultServiceConfig,
	}
	cfg.Service.MetricsAddr = metricsAddr
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics listener did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"authsvc_decisions_total", "authsvc_cache_entries 0", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if resp, err := http.Get("http://" + metricsAddr + "/auth"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("/auth on the metrics listener: got %d; want 404", resp.StatusCode)
		}
	}
}
