package authsvc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/toanc/aws-ecr-ldap/internal/policy"
)

// policyReloader keeps AUTH_POLICY_FILE in force: it reloads the file on
// SIGHUP and when polling sees it change, and reports each attempt in
// authsvc_policy_reload_success and authsvc_policy_last_reload_success_timestamp_seconds.
type policyReloader struct {
	w   *policy.Watcher
	hup chan os.Signal
}

// openPolicy loads the policy file and starts listening for SIGHUP at once,
// so that a signal sent during start-up reloads rather than kills authsvc.
// now is the clock for the reload timestamp.
func openPolicy(pc PolicyConfig, reg prometheus.Registerer, logger *slog.Logger, now func() time.Time) (*policyReloader, error) {
	w, err := policy.Open(pc.File, pc.Poll, logger)
	if err != nil {
		return nil, fmt.Errorf("AUTH_POLICY_FILE: %w", err)
	}
	success := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authsvc_policy_reload_success",
		Help: "1 if the last load of AUTH_POLICY_FILE succeeded, 0 if the file was refused (the previous policy stays in force).",
	})
	last := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authsvc_policy_last_reload_success_timestamp_seconds",
		Help: "When AUTH_POLICY_FILE was last loaded successfully, in Unix seconds.",
	})
	rules := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authsvc_policy_rules", Help: "Rules in the policy in force.",
	})
	reg.MustRegister(success, last, rules)
	record := func(err error) {
		if err != nil {
			success.Set(0)
			return
		}
		success.Set(1)
		last.Set(float64(now().UnixNano()) / 1e9)
		rules.Set(float64(len(w.Store.Policy().Rules)))
	}
	record(nil)
	w.OnReload = record
	pr := &policyReloader{w: w, hup: make(chan os.Signal, 1)}
	signal.Notify(pr.hup, syscall.SIGHUP)
	p := w.Store.Policy()
	logger.Info("policy loaded", slog.String("file", pc.File), slog.Int("rules", len(p.Rules)),
		slog.String("default", p.Default.String()), slog.Duration("poll", pc.Poll))
	return pr, nil
}

// run reloads until ctx ends, then stops listening for SIGHUP.
func (pr *policyReloader) run(ctx context.Context) error {
	defer signal.Stop(pr.hup)
	return pr.w.Run(ctx, pr.hup)
}

// close stops listening for SIGHUP when run never started.
func (pr *policyReloader) close() { signal.Stop(pr.hup) }
