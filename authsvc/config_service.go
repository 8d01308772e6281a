package authsvc

import (
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// serviceEnv is the service half of the environment (cache, limits, grace,
// metrics), read by envconfig as strings like env. Its defaults live here and
// only here.
type serviceEnv struct {
	CacheTTL           string `envconfig:"AUTH_CACHE_TTL" default:"5m"`
	CacheSize          string `envconfig:"AUTH_CACHE_SIZE" default:"10000"`
	GracePeriod        string `envconfig:"AUTH_GRACE_PERIOD" default:"0s"`
	MaxFailures        string `envconfig:"AUTH_MAX_FAILURES" default:"10"`
	MaxFailuresPerUser string `envconfig:"AUTH_MAX_FAILURES_PER_USER" default:"30"`
	MaxFailuresPerIP   string `envconfig:"AUTH_MAX_FAILURES_PER_IP" default:"50"`
	FailureWindow      string `envconfig:"AUTH_FAILURE_WINDOW" default:"5m"`
	MetricsAddr        string `envconfig:"AUTH_METRICS_ADDR"`
	LogCacheHits       string `envconfig:"AUTH_LOG_CACHE_HITS" default:"true"`
}

// ServiceConfig is the part of Config that shapes the /auth service itself
// rather than the directory. Each field names its environment variable.
type ServiceConfig struct {
	CacheTTL           time.Duration // AUTH_CACHE_TTL: trust a verified login this long; 0 disables the cache
	CacheSize          int           // AUTH_CACHE_SIZE: most credentials remembered
	GracePeriod        time.Duration // AUTH_GRACE_PERIOD: verified logins keep working this long during an LDAP outage; 0 = off
	MaxFailures        int           // AUTH_MAX_FAILURES: failures of one user from one address; 0 = no limit
	MaxFailuresPerUser int           // AUTH_MAX_FAILURES_PER_USER: failures of one user from addresses it has not logged in from lately
	MaxFailuresPerIP   int           // AUTH_MAX_FAILURES_PER_IP: failures of all users from one address
	FailureWindow      time.Duration // AUTH_FAILURE_WINDOW: time for a full failure count to drain
	MetricsAddr        string        // AUTH_METRICS_ADDR: host:port of the /metrics listener; empty = off
	LogCacheHits       bool          // AUTH_LOG_CACHE_HITS: false logs allowed cache hits at debug level
}

// load reads the service variables into s and returns the values that are
// not numbers or durations, marking their names in failed so that the
// range checks of problems do not report them twice.
func (s *ServiceConfig) load(failed map[string]bool) []error {
	var e serviceEnv
	if err := envconfig.Process("", &e); err != nil {
		return []error{fmt.Errorf("read environment: %w", err)}
	}
	emptyToDefault(&e)
	s.MetricsAddr = e.MetricsAddr
	var errs []error
	if v, err := strconv.ParseBool(e.LogCacheHits); err != nil {
		errs = append(errs, problem{"AUTH_LOG_CACHE_HITS", fmt.Sprintf("must be true or false, got %q", e.LogCacheHits)})
	} else {
		s.LogCacheHits = v
	}
	for _, d := range []struct {
		name, value string
		dst         *time.Duration
	}{
		{"AUTH_CACHE_TTL", e.CacheTTL, &s.CacheTTL},
		{"AUTH_GRACE_PERIOD", e.GracePeriod, &s.GracePeriod},
		{"AUTH_FAILURE_WINDOW", e.FailureWindow, &s.FailureWindow},
	} {
		v, err := time.ParseDuration(d.value)
		if err != nil {
			errs = append(errs, problem{d.name, fmt.Sprintf("not a duration such as 5m or 30s, got %q", d.value)})
			failed[d.name] = true
			continue
		}
		*d.dst = v
	}
	for _, n := range []struct {
		name, value string
		dst         *int
	}{
		{"AUTH_CACHE_SIZE", e.CacheSize, &s.CacheSize},
		{"AUTH_MAX_FAILURES", e.MaxFailures, &s.MaxFailures},
		{"AUTH_MAX_FAILURES_PER_USER", e.MaxFailuresPerUser, &s.MaxFailuresPerUser},
		{"AUTH_MAX_FAILURES_PER_IP", e.MaxFailuresPerIP, &s.MaxFailuresPerIP},
	} {
		v, err := strconv.Atoi(n.value)
		if err != nil {
			errs = append(errs, problem{n.name, fmt.Sprintf("not a whole number, got %q", n.value)})
			failed[n.name] = true
			continue
		}
		*n.dst = v
	}
	return errs
}

func (s ServiceConfig) problems() []problem {
	var ps []problem
	add := func(name, format string, args ...any) {
		ps = append(ps, problem{name, fmt.Sprintf(format, args...)})
	}
	if s.CacheTTL < 0 {
		add("AUTH_CACHE_TTL", "must be 0 (off) or positive, got %s", s.CacheTTL)
	}
	if s.GracePeriod < 0 {
		add("AUTH_GRACE_PERIOD", "must be 0 (off) or positive, got %s", s.GracePeriod)
	} else if s.GracePeriod > 0 && s.GracePeriod <= s.CacheTTL {
		add("AUTH_GRACE_PERIOD", "must be longer than AUTH_CACHE_TTL (%s) to have any effect, got %s", s.CacheTTL, s.GracePeriod)
	}
	if (s.CacheTTL > 0 || s.GracePeriod > 0) && s.CacheSize < 1 {
		add("AUTH_CACHE_SIZE", "must be at least 1 while the cache or the grace period is on, got %d", s.CacheSize)
	}
	limits := false
	for _, n := range []struct {
		name  string
		value int
	}{
		{"AUTH_MAX_FAILURES", s.MaxFailures},
		{"AUTH_MAX_FAILURES_PER_USER", s.MaxFailuresPerUser},
		{"AUTH_MAX_FAILURES_PER_IP", s.MaxFailuresPerIP},
	} {
		if n.value < 0 {
			add(n.name, "must be 0 (no limit) or positive, got %d", n.value)
		}
		limits = limits || n.value > 0
	}
	if s.MaxFailures > 0 && s.MaxFailuresPerUser > 0 && s.MaxFailuresPerUser <= s.MaxFailures {
		// Else one address could fill the per-user count and lock the user out everywhere.
		add("AUTH_MAX_FAILURES_PER_USER", "must be greater than AUTH_MAX_FAILURES (%d), got %d", s.MaxFailures, s.MaxFailuresPerUser)
	}
	if limits && s.FailureWindow < time.Second {
		add("AUTH_FAILURE_WINDOW", "must be at least 1s while a failure limit is set, got %s", s.FailureWindow)
	}
	if s.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(s.MetricsAddr); err != nil {
			add("AUTH_METRICS_ADDR", "want host:port such as 127.0.0.1:9100, got %q", s.MetricsAddr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			add("AUTH_METRICS_ADDR", "port must be a number from 0 to 65535, got %q", port)
		}
	}
	return ps
}

// Limits are the failed-login limits of s.
func (s ServiceConfig) Limits() Limits {
	return Limits{PerUserAddr: s.MaxFailures, PerUser: s.MaxFailuresPerUser, PerAddr: s.MaxFailuresPerIP, Window: s.FailureWindow}
}

// emptyToDefault gives a variable that is set but empty its default, as
// applyDefaultsToEmpty does for env.
func emptyToDefault(e *serviceEnv) {
	v := reflect.ValueOf(e).Elem()
	for i := range v.NumField() {
		if def, ok := v.Type().Field(i).Tag.Lookup("default"); ok && v.Field(i).String() == "" {
			v.Field(i).SetString(def)
		}
	}
}

// handlerOptions are the handler's options for s.
func (s ServiceConfig) handlerOptions(realm string, logger *slog.Logger, m *Metrics) Options {
	return Options{
		Realm: realm, Logger: logger, Metrics: m,
		CacheTTL: s.CacheTTL, CacheSize: s.CacheSize, GracePeriod: s.GracePeriod, Limits: s.Limits(),
		QuietHits: !s.LogCacheHits,
	}
}
