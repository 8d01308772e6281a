package authsvc

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

// Pinger reports whether at least one LDAP server answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

var _ Pinger = (*ldapauth.Client)(nil)

const (
	// readyCacheFor is how long one Ping answers /readyz, so that probes
	// cannot hammer the directory.
	readyCacheFor = 5 * time.Second
	// readyPingTimeout bounds one Ping.
	readyPingTimeout = 3 * time.Second
)

// readiness serves /readyz: 200 when the last Ping (at most readyCacheFor
// old) succeeded, 503 otherwise. Concurrent probes share one Ping; no lock is
// held while it runs. Without a Pinger it always answers 200, like /healthz.
type readiness struct {
	pinger Pinger
	now    func() time.Time
	logger *slog.Logger
	flight singleflight.Group

	mu        sync.Mutex
	checkedAt time.Time
	err       error
	checked   bool
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := rd.check(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("ldap unreachable\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (rd *readiness) check(ctx context.Context) error {
	if rd.pinger == nil {
		return nil
	}
	rd.mu.Lock()
	if rd.checked && rd.now().Sub(rd.checkedAt) < readyCacheFor {
		err := rd.err
		rd.mu.Unlock()
		return err
	}
	rd.mu.Unlock()

	ch := rd.flight.DoChan("ping", func() (any, error) {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyPingTimeout)
		defer cancel()
		err := rd.pinger.Ping(pctx)
		rd.mu.Lock()
		changed := !rd.checked || (rd.err == nil) != (err == nil)
		rd.checkedAt, rd.err, rd.checked = rd.now(), err, true
		rd.mu.Unlock()
		if changed { // one line per change of state, not per probe
			if err != nil {
				rd.logger.Warn("not ready: no ldap server reachable", "err", err)
			} else {
				rd.logger.Info("ready: ldap reachable")
			}
		}
		return nil, err
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}
