package tokenwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	serverReadHeaderTimeout = 5 * time.Second
	serverShutdownTimeout   = 5 * time.Second
)

// server answers /healthz (the process runs), /readyz (every registry's token
// in place has at least TOKEN_READY_MARGIN left and was not rejected by the
// registry's last probe; the body says which does not) and /metrics.
type server struct {
	r   *Refresher
	mux *http.ServeMux
}

func newServer(r *Refresher, gatherer prometheus.Gatherer) *server {
	s := &server{r: r, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, req *http.Request) { s.mux.ServeHTTP(w, req) }

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	now := s.r.now()
	ready := true
	var lines []string
	for i, snap := range s.r.state.snapshots() {
		until := validUntil(snap.tokenExpires, snap.credsExpires)
		left := until.Sub(now)
		var line string
		switch {
		case until.IsZero():
			ready, line = false, "no ecr token yet"
		case snap.rejected:
			// Clients get ECR's refusals until the refresh this started lands.
			ready, line = false, "the registry rejected the ecr token in place; refreshing"
		case left < s.r.cfg.ReadyMargin:
			ready = false
			line = fmt.Sprintf("ecr token valid until %s: %s left, less than TOKEN_READY_MARGIN %s",
				until.UTC().Format(time.RFC3339), left.Round(time.Second), s.r.cfg.ReadyMargin)
		default:
			line = "ok: ecr token valid until " + until.UTC().Format(time.RFC3339)
		}
		if s.r.multi {
			line = "registry " + s.r.registries[i].String() + ": " + line
		}
		lines = append(lines, line)
	}
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// serve listens on addr until ctx is done, then shuts down.
func (s *server) serve(ctx context.Context, addr string, logger *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("TOKENWRITER_LISTEN_ADDR: %w", err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: serverReadHeaderTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), serverShutdownTimeout)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	logger.Info("tokenwriter health and metrics listening", "addr", ln.Addr().String())
	err = srv.Serve(ln)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("tokenwriter server: %w", err)
}

// RegisterMetrics registers r's metrics with reg, each with a registry label
// ("<account>/<region>", or "default" in single mode without
// ECR_REGISTRY_ID). Values are read from r when scraped.
func (r *Refresher) RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(metricsCollector{r}); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	return nil
}

var (
	labelRegistry    = []string{"registry"}
	descTokenExpiry  = prometheus.NewDesc("tokenwriter_token_expiry_timestamp_seconds", "When ECR stops accepting the token in place (expiresAt), Unix time; 0 before the first token.", labelRegistry, nil)
	descCredsExpiry  = prometheus.NewDesc("tokenwriter_credentials_expiry_timestamp_seconds", "When the AWS credentials that minted the token in place expire, Unix time; 0 if they do not.", labelRegistry, nil)
	descLastSuccess  = prometheus.NewDesc("tokenwriter_last_success_timestamp_seconds", "When a token was last written, tested and loaded, Unix time; 0 before the first.", labelRegistry, nil)
	descFailures     = prometheus.NewDesc("tokenwriter_refresh_failures_total", "Token refreshes that failed (ECR API, nginx -t, reload); the previous token stayed.", labelRegistry, nil)
	descRejections   = prometheus.NewDesc("tokenwriter_token_rejections_total", "Probes on which the registry rejected the token in place (each brings a refresh forward).", labelRegistry, nil)
	metricsDescsList = []*prometheus.Desc{descTokenExpiry, descCredsExpiry, descLastSuccess, descFailures, descRejections}
)

// metricsCollector reports each registry's status.
type metricsCollector struct{ r *Refresher }

func (metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range metricsDescsList {
		ch <- d
	}
}

func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	for _, s := range c.r.state.snapshots() {
		ch <- prometheus.MustNewConstMetric(descTokenExpiry, prometheus.GaugeValue, unix(s.tokenExpires), s.name)
		ch <- prometheus.MustNewConstMetric(descCredsExpiry, prometheus.GaugeValue, unix(s.credsExpires), s.name)
		ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue, unix(s.lastSuccess), s.name)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(s.failures), s.name)
		ch <- prometheus.MustNewConstMetric(descRejections, prometheus.CounterValue, float64(s.rejections), s.name)
	}
}
