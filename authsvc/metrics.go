package authsvc

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Decision results, the values of authsvc_decisions_total{result} and of the
// "decision" field of the log line.
const (
	resultAllow   = "allow"
	resultDeny401 = "deny_401"
	resultDeny403 = "deny_403"
	resultError   = "error"
	resultLimited = "limited"
)

// Metrics are authsvc's Prometheus metrics. Every labelled child is resolved
// once here, so recording one on the hot path is an atomic add.
type Metrics struct {
	decisions map[string]prometheus.Counter // by result

	latencyHit, latencyMiss prometheus.Observer

	cacheHits, cacheMisses, cacheEvictions prometheus.Counter
	cacheEntries                           prometheus.Gauge

	ldapChecks, shared, graceAllows prometheus.Counter
	trips                           map[string]prometheus.Counter // by limit scope
}

// NewMetrics registers authsvc's metrics on reg, which the caller creates
// (never the default registry) and serves with [MetricsHandler].
func NewMetrics(reg prometheus.Registerer) *Metrics {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authsvc_decisions_total",
		Help: "auth_request answers by result: allow, deny_401, deny_403, error, limited.",
	}, []string{"result"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authsvc_request_duration_seconds",
		Help: "Time to answer one /auth request, by whether the credential cache answered it.",
		// From a warm-cache answer (microseconds) to a slow directory (seconds).
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"cache"})
	trips := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authsvc_limiter_trips_total",
		Help: "Times a failed-login limit was reached, by scope: user_ip, user, ip.",
	}, []string{"scope"})
	m := &Metrics{
		decisions:   map[string]prometheus.Counter{},
		latencyHit:  latency.WithLabelValues("hit"),
		latencyMiss: latency.WithLabelValues("miss"),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authsvc_cache_hits_total", Help: "Requests answered from the credential cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authsvc_cache_misses_total", Help: "Requests with credentials the cache could not answer.",
		}),
		cacheEvictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authsvc_cache_evictions_total", Help: "Cache entries dropped because the cache was full.",
		}),
		cacheEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authsvc_cache_entries", Help: "Credentials in the cache (including those kept only for the outage grace period).",
		}),
		ldapChecks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authsvc_backend_checks_total", Help: "Authentications sent to the directory (one per singleflight group).",
		}),
		shared: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authsvc_singleflight_shared_total", Help: "Requests that waited for another request's identical directory check instead of making their own.",
		}),
		graceAllows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authsvc_grace_allows_total", Help: "Requests allowed from the outage grace cache while the directory was unavailable.",
		}),
		trips: map[string]prometheus.Counter{},
	}
	for _, r := range []string{resultAllow, resultDeny401, resultDeny403, resultError, resultLimited} {
		m.decisions[r] = decisions.WithLabelValues(r)
	}
	for _, s := range []string{scopeUserAddr, scopeUser, scopeAddr} {
		m.trips[s] = trips.WithLabelValues(s)
	}
	reg.MustRegister(decisions, latency, trips, m.cacheHits, m.cacheMisses, m.cacheEvictions,
		m.cacheEntries, m.ldapChecks, m.shared, m.graceAllows)
	return m
}

// MetricsHandler serves reg at /metrics, for the separate AUTH_METRICS_ADDR
// listener (never the one nginx talks to).
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}
