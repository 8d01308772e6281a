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

// server answers /healthz (the process runs), /readyz (the token in place
// has at least TOKEN_READY_MARGIN left) and /metrics.
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
	until := s.r.state.validUntil()
	left := until.Sub(s.r.now())
	switch {
	case until.IsZero():
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "no ecr token yet")
	case left < s.r.cfg.ReadyMargin:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "ecr token valid until %s: %s left, less than TOKEN_READY_MARGIN %s\n",
			until.UTC().Format(time.RFC3339), left.Round(time.Second), s.r.cfg.ReadyMargin)
	default:
		fmt.Fprintf(w, "ok: ecr token valid until %s\n", until.UTC().Format(time.RFC3339))
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

// RegisterMetrics registers r's metrics with reg. Values are read from r when
// scraped.
func (r *Refresher) RegisterMetrics(reg prometheus.Registerer) error {
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	collectors := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokenwriter_token_expiry_timestamp_seconds",
			Help: "When ECR stops accepting the token in place (expiresAt), Unix time; 0 before the first token.",
		}, func() float64 { return unix(r.state.snapshot().tokenExpires) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokenwriter_credentials_expiry_timestamp_seconds",
			Help: "When the AWS credentials that minted the token in place expire, Unix time; 0 if they do not.",
		}, func() float64 { return unix(r.state.snapshot().credsExpires) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokenwriter_last_success_timestamp_seconds",
			Help: "When a token was last written, tested and loaded, Unix time; 0 before the first.",
		}, func() float64 { return unix(r.state.snapshot().lastSuccess) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokenwriter_refresh_failures_total",
			Help: "Token refreshes that failed (ECR API, nginx -t, reload); the previous token stayed.",
		}, func() float64 { return float64(r.state.snapshot().failures) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokenwriter_token_rejections_total",
			Help: "Probes on which the registry rejected the token in place (each brings a refresh forward).",
		}, func() float64 { return float64(r.state.snapshot().rejections) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}
