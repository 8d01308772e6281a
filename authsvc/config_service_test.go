package authsvc

import (
	"strings"
	"testing"
	"time"
)

var serviceVars = []string{
	"AUTH_CACHE_TTL", "AUTH_CACHE_SIZE", "AUTH_GRACE_PERIOD", "AUTH_MAX_FAILURES", "AUTH_MAX_FAILURES_PER_USER",
	"AUTH_MAX_FAILURES_PER_IP", "AUTH_FAILURE_WINDOW", "AUTH_METRICS_ADDR", "AUTH_LOG_CACHE_HITS",
}

// defaultServiceConfig is what LoadConfig gives with none of serviceVars set.
var defaultServiceConfig = ServiceConfig{
	CacheTTL: 5 * time.Minute, CacheSize: 10000, MaxFailures: 10, MaxFailuresPerUser: 30, MaxFailuresPerIP: 50,
	FailureWindow: 5 * time.Minute, LogCacheHits: true,
}

func setServiceEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	setEnv(t, map[string]string{"LDAP_URL": goodURL})
	for _, k := range serviceVars {
		t.Setenv(k, "")
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

func TestLoadServiceConfigDefaults(t *testing.T) {
	setServiceEnv(t, nil) // set but empty counts as unset
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if cfg.Service != defaultServiceConfig {
		t.Errorf("Service:\n got %+v\nwant %+v", cfg.Service, defaultServiceConfig)
	}
	want := Limits{PerUserAddr: 10, PerUser: 30, PerAddr: 50, Window: 5 * time.Minute}
	if got := cfg.Service.Limits(); got != want {
		t.Errorf("Limits: got %+v; want %+v", got, want)
	}
}

func TestLoadServiceConfigValues(t *testing.T) {
	setServiceEnv(t, map[string]string{
		"AUTH_CACHE_TTL": "0", "AUTH_GRACE_PERIOD": "4h", "AUTH_CACHE_SIZE": "5",
		"AUTH_MAX_FAILURES": "0", "AUTH_MAX_FAILURES_PER_USER": "0", "AUTH_MAX_FAILURES_PER_IP": "0",
		"AUTH_FAILURE_WINDOW": "0", "AUTH_METRICS_ADDR": "127.0.0.1:9100", "AUTH_LOG_CACHE_HITS": "false",
	})
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := ServiceConfig{GracePeriod: 4 * time.Hour, CacheSize: 5, MetricsAddr: "127.0.0.1:9100"}
	if cfg.Service != want {
		t.Errorf("Service:\n got %+v\nwant %+v", cfg.Service, want)
	}
}

func TestLoadServiceConfigReportsEveryProblem(t *testing.T) {
	setServiceEnv(t, map[string]string{
		"AUTH_CACHE_TTL":             "5",
		"AUTH_CACHE_SIZE":            "lots",
		"AUTH_GRACE_PERIOD":          "-1h",
		"AUTH_MAX_FAILURES":          "7",
		"AUTH_MAX_FAILURES_PER_USER": "-3",
		"AUTH_MAX_FAILURES_PER_IP":   "1.5",
		"AUTH_FAILURE_WINDOW":        "100ms",
		"AUTH_METRICS_ADDR":          "9100",
		"AUTH_LOG_CACHE_HITS":        "sometimes",
	})
	_, err := LoadConfig()
	if err == nil {
		t.Fatal("LoadConfig: got no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`AUTH_CACHE_TTL: not a duration such as 5m or 30s, got "5"`,
		`AUTH_CACHE_SIZE: not a whole number, got "lots"`,
		"AUTH_GRACE_PERIOD: must be 0 (off) or positive, got -1h0m0s",
		"AUTH_MAX_FAILURES_PER_USER: must be 0 (no limit) or positive, got -3",
		`AUTH_MAX_FAILURES_PER_IP: not a whole number, got "1.5"`,
		"AUTH_FAILURE_WINDOW: must be at least 1s while a failure limit is set, got 100ms",
		`AUTH_METRICS_ADDR: want host:port such as 127.0.0.1:9100, got "9100"`,
		`AUTH_LOG_CACHE_HITS: must be true or false, got "sometimes"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
	if lines := strings.Count(msg, "\n") + 1; lines != 8 {
		t.Errorf("error has %d lines; want 8 (one per problem, no duplicates):\n%s", lines, msg)
	}
}

func TestServiceConfigValidate(t *testing.T) {
	good := Config{
		LDAPURL: goodURL, LDAPGroupMemberAttribute: "member", LDAPDialTimeout: time.Second, LDAPTimeout: time.Second,
		ListenAddr: "127.0.0.1:9000", Realm: "r", LogLevel: "info", Service: defaultServiceConfig,
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good): %v", err)
	}
	tests := []struct {
		name   string
		change func(*ServiceConfig)
		want   string
	}{
		{"negative TTL", func(s *ServiceConfig) { s.CacheTTL = -time.Second }, "AUTH_CACHE_TTL: must be 0 (off) or positive"},
		{"grace not longer than TTL", func(s *ServiceConfig) { s.GracePeriod = time.Minute }, "AUTH_GRACE_PERIOD: must be longer than AUTH_CACHE_TTL (5m0s)"},
		{"zero size with cache", func(s *ServiceConfig) { s.CacheSize = 0 }, "AUTH_CACHE_SIZE: must be at least 1"},
		{"zero window with limits", func(s *ServiceConfig) { s.FailureWindow = 0 }, "AUTH_FAILURE_WINDOW: must be at least 1s"},
		{"per-user limit not above per-address", func(s *ServiceConfig) { s.MaxFailuresPerUser = 10 }, "AUTH_MAX_FAILURES_PER_USER: must be greater than AUTH_MAX_FAILURES (10)"},
		{"bad metrics port", func(s *ServiceConfig) { s.MetricsAddr = "127.0.0.1:http" }, "AUTH_METRICS_ADDR: port must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c.Service)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: got %v; want an error containing %q", err, tt.want)
			}
		})
	}
	off := good
	off.Service = ServiceConfig{}
	if err := off.Validate(); err != nil {
		t.Errorf("Validate with everything off: got %v; want nil", err)
	}
}
