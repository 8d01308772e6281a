package ldapauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Back-off of a failed server: it is skipped for at least minBackoff (or the
// dial timeout, if longer) after its first failure, doubling up to backoffMax,
// unless every server is backing off. Shorter back-offs expire while a single
// request is still trying the servers after it, which then brings the failed
// server back into every request.
const (
	minBackoff = 5 * time.Second
	backoffMax = 60 * time.Second
)

// ServerStatus is one LDAP server as the Client last saw it.
type ServerStatus struct {
	URL          string
	Healthy      bool      // the last connection attempt succeeded (or none failed yet)
	LastError    string    // of the last failed attempt; "" if none
	Failures     int       // consecutive failed attempts
	BackoffUntil time.Time // zero when not backing off
}

type server struct {
	url      *URL
	tls      *tls.Config // nil: plain LDAP without StartTLS
	startTLS bool
	metrics  *Metrics

	backoff time.Duration // the first back-off; doubled per further failure

	mu           sync.Mutex
	failures     int
	lastErr      error
	backoffUntil time.Time
	lastSuccess  time.Time
	// probing: a request is retrying this failed server now that its back-off
	// has ended; concurrent requests skip it until that attempt ends, so one
	// request pays for finding out whether it is back, not all of them.
	probing bool
}

func newServer(u *URL, base *tls.Config, startTLS bool, backoff time.Duration, m *Metrics) *server {
	s := &server{url: u, metrics: m, backoff: backoff}
	if u.Scheme == "ldaps" || startTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if base != nil {
			cfg = base.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Host
		}
		s.tls = cfg
		s.startTLS = u.Scheme == "ldap"
	}
	m.setServerUp(u.String(), true)
	return s
}

func (s *server) backingOff(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.backoffUntil)
}

// skipped reports whether requests should pass s by: it is backing off, or
// another request is finding out whether it is back.
func (s *server) skipped(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probing || now.Before(s.backoffUntil)
}

// claim reserves s for one attempt, false when it is to be skipped (it failed
// in a concurrent request since the caller looked, or is being probed). A
// server that has failed before is claimed exclusively until the attempt ends.
func (s *server) claim(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probing || now.Before(s.backoffUntil) {
		return false
	}
	s.probing = s.failures > 0
	return true
}

// release ends a claimed attempt that said nothing about the server.
func (s *server) release() {
	s.mu.Lock()
	s.probing = false
	s.mu.Unlock()
}

// healthy reports whether s is not known to fail: no failure since its last
// success, and not backing off.
func (s *server) healthy(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures == 0 && !now.Before(s.backoffUntil)
}

// recovering reports whether s failed last time it was tried.
func (s *server) recovering() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures > 0
}

func (s *server) succeeded(now time.Time) {
	s.mu.Lock()
	s.failures, s.lastErr, s.backoffUntil, s.probing, s.lastSuccess = 0, nil, time.Time{}, false, now
	s.mu.Unlock()
	s.metrics.setServerUp(s.url.String(), true)
}

func (s *server) failed(err error, now time.Time) {
	s.mu.Lock()
	s.failures++
	s.lastErr = err
	s.probing = false
	s.backoffUntil = now.Add(min(max(backoffMax, s.backoff), s.backoff<<min(s.failures-1, 16)))
	s.mu.Unlock()
	s.metrics.setServerUp(s.url.String(), false)
}

// backoffKey orders servers that all back off: the back-off that ends first,
// then the most recent success.
func (s *server) backoffKey() (until, lastSuccess time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backoffUntil, s.lastSuccess
}

func (s *server) status() ServerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ServerStatus{URL: s.url.String(), Healthy: s.failures == 0, Failures: s.failures, BackoffUntil: s.backoffUntil}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	return st
}

// Servers reports every server's state, in configuration order.
func (c *Client) Servers() []ServerStatus {
	out := make([]ServerStatus, 0, len(c.servers))
	for _, s := range c.servers {
		out = append(out, s.status())
	}
	return out
}

// order is the servers to try: those not backing off (nor being probed by
// another request), in configuration order. When every one is, all of them,
// the one whose back-off ends first leading (then the one that worked last),
// so that recovery needs no restart; allDown says so.
func (c *Client) order() (servers []*server, allDown bool) {
	now := c.now()
	var up []*server
	for _, s := range c.servers {
		if !s.skipped(now) {
			up = append(up, s)
		}
	}
	if len(up) > 0 {
		return up, false
	}
	all := slices.Clone(c.servers)
	slices.SortStableFunc(all, func(a, b *server) int {
		ua, la := a.backoffKey()
		ub, lb := b.backoffKey()
		if n := ua.Compare(ub); n != 0 {
			return n
		}
		return lb.Compare(la)
	})
	return all, true
}

// anyServerUp reports whether some server is not backing off.
func (c *Client) anyServerUp() bool {
	now := c.now()
	for _, s := range c.servers {
		if !s.backingOff(now) {
			return true
		}
	}
	return false
}

// remaining is the time left before ctx's deadline; a day without one.
func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return 24 * time.Hour
}

// budgetSpent reports whether the caller's time is up. ctx.Err() alone is
// not enough: a dial that ends at the caller's deadline may return before
// ctx's own timer has fired.
func budgetSpent(ctx context.Context) bool {
	return ctx.Err() != nil || remaining(ctx) <= 0
}

// isTimeout reports whether err is a deadline running out rather than an
// answer (refused, reset, rejected bind).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// attempt is how long one connection attempt may take, and what its timing
// out would mean.
type attempt struct {
	budget time.Duration
	// byCaller: the caller's deadline, not the dial timeout, bounds the
	// attempt, so a timeout says nothing about the server.
	byCaller bool
}

// plan gives s its time: the dial timeout or what is left of the caller's,
// whichever is less. A server that failed last time gets only what leaves a
// full dial timeout for a healthy server after it (rest), so that retrying a
// dead server never costs a request that a healthy one would have answered.
func (c *Client) plan(ctx context.Context, s *server, rest []*server) attempt {
	left := remaining(ctx)
	a := attempt{budget: min(c.dialTimeout, left), byCaller: left < c.dialTimeout}
	if s.recovering() {
		now := c.now()
		for _, h := range rest {
			if h.healthy(now) {
				if capped := left - c.dialTimeout; capped < a.budget {
					a = attempt{budget: capped}
				}
				break
			}
		}
	}
	return a
}

// connect opens a connection to the first server that answers, bound as the
// service account when bindService is set. A server is marked failed only
// when it failed on its own time: never because the caller's deadline ran
// out, which says nothing about it.
func (c *Client) connect(ctx context.Context, bindService bool) (*ldap.Conn, *server, error) {
	var errs []error
	outOfTime := false
	servers, allDown := c.order()
	for i, s := range servers {
		// A server that failed in a concurrent request since order() looked
		// is skipped at once, unless every server is down anyway.
		if !allDown && !s.claim(c.now()) {
			continue
		}
		release := func() {
			if !allDown {
				s.release()
			}
		}
		a := c.plan(ctx, s, servers[i+1:])
		if a.budget <= 0 {
			release()
			if outOfTime = a.byCaller; outOfTime {
				break
			}
			continue // reserved for the healthy server after it
		}
		start := time.Now()
		conn, err := c.open(ctx, s, bindService, a.budget)
		c.metrics.observe("connect", start, err)
		if err == nil {
			s.succeeded(c.now())
			return conn, s, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.url.Addr(), err))
		if budgetSpent(ctx) || (a.byCaller && isTimeout(err)) {
			// The caller's time ran out: that says nothing about the server.
			release()
			outOfTime = true
			break
		}
		s.failed(err, c.now())
		c.logger.WarnContext(ctx, "ldap server failed; trying the next", "server", s.url.Addr(), "error", err.Error())
	}
	switch {
	case outOfTime:
		cause := errors.Join(errs...)
		if cause == nil {
			cause = errors.New("no time left to dial")
		}
		return nil, nil, unavailable(ctx, fmt.Sprintf("connect: out of time (LDAP_TIMEOUT %s) before an ldap server answered", c.timeout), cause)
	case len(errs) == 0:
		return nil, nil, fmt.Errorf("%w: every ldap server failed in a concurrent request", ErrUnavailable)
	}
	return nil, nil, fmt.Errorf("%w: no ldap server answered: %w", ErrUnavailable, errors.Join(errs...))
}

// open dials s, upgrades with StartTLS if configured and binds as the service
// account if asked, all within budget (at most the dial timeout): a server
// that drops packets or accepts and then hangs costs at most that.
func (c *Client) open(ctx context.Context, s *server, bindService bool, budget time.Duration) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	d := &net.Dialer{Timeout: budget}
	var (
		nc  net.Conn
		err error
	)
	// Dial ourselves rather than through ldap.DialURL: DialURL takes no context.
	if s.tls != nil && !s.startTLS {
		nc, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.url.Addr())
	} else {
		nc, err = d.DialContext(ctx, "tcp", s.url.Addr())
	}
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	conn := ldap.NewConn(nc, s.tls != nil && !s.startTLS)
	conn.Start()
	conn.SetTimeout(c.timeout)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(op string, err error) (*ldap.Conn, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w (%v)", op, ctx.Err(), err)
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if s.startTLS {
		// Never falls back to plain text: a refused StartTLS closes the connection.
		if err := conn.StartTLS(s.tls); err != nil {
			return fail("starttls", err)
		}
	}
	if bindService && c.bindDN != "" {
		if err := conn.Bind(c.bindDN, c.bindPassword); err != nil {
			return fail("bind as service account", err)
		}
	}
	if !stop() {
		return fail("connect", errors.New("timed out"))
	}
	return conn, nil
}

// Ping reports whether the directory answers: a pooled connection bound as the
// service account reads the root DSE. For /readyz.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := c.search.do(ctx, func(conn *ldap.Conn) error { return readRootDSE(conn, c.timeLimit()) })
	if err != nil && !errors.Is(err, ErrUnavailable) {
		return unavailable(ctx, "read root DSE", err)
	}
	return err
}

func readRootDSE(conn *ldap.Conn, timeLimit int) error {
	_, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, timeLimit, false, "(objectClass=*)", []string{"1.1"}, nil))
	return err
}

// Probe is the outcome of connecting to one server, for `authsvc check`.
type Probe struct {
	URL     string
	TLS     string // "", "TLS 1.3" (ldaps) or "StartTLS, TLS 1.3"
	Elapsed time.Duration
	Err     error // nil when the connection, the service bind and a root DSE read worked
}

// ProbeAll connects to every server once, in turn, whatever its back-off,
// binds as the service account and reads the root DSE. It does not use the
// pools, but records each connection's outcome in the server's health as a
// request would, so that a lookup after it does not wait for a dead server a
// second time.
func (c *Client) ProbeAll(ctx context.Context) []Probe {
	out := make([]Probe, 0, len(c.servers))
	for _, s := range c.servers {
		start := time.Now()
		p := Probe{URL: s.url.String()}
		conn, err := c.open(ctx, s, true, min(c.dialTimeout, remaining(ctx)))
		switch {
		case err == nil:
			s.succeeded(c.now())
		case !budgetSpent(ctx):
			s.failed(err, c.now())
		}
		if err == nil {
			if state, ok := conn.TLSConnectionState(); ok {
				p.TLS = tls.VersionName(state.Version)
				if s.startTLS {
					p.TLS = "StartTLS, " + p.TLS
				}
			}
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			err = readRootDSE(conn, c.timeLimit())
			stop()
			conn.Close()
		}
		p.Elapsed, p.Err = time.Since(start), err
		out = append(out, p)
	}
	return out
}
