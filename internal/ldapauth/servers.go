package ldapauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Back-off of a failed server: it is skipped for backoffBase after its first
// failure, doubling up to backoffMax, unless every server is backing off.
const (
	backoffBase = time.Second
	backoffMax  = 30 * time.Second
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

	mu           sync.Mutex
	failures     int
	lastErr      error
	backoffUntil time.Time
}

func newServer(u *URL, base *tls.Config, startTLS bool, m *Metrics) *server {
	s := &server{url: u, metrics: m}
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

func (s *server) succeeded() {
	s.mu.Lock()
	s.failures, s.lastErr, s.backoffUntil = 0, nil, time.Time{}
	s.mu.Unlock()
	s.metrics.setServerUp(s.url.String(), true)
}

func (s *server) failed(err error, now time.Time) {
	s.mu.Lock()
	s.failures++
	s.lastErr = err
	s.backoffUntil = now.Add(min(backoffMax, backoffBase<<min(s.failures-1, 16)))
	s.mu.Unlock()
	s.metrics.setServerUp(s.url.String(), false)
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

// order is the servers to try: those not backing off, in configuration order;
// when every one is backing off, all of them, so that recovery needs no restart.
func (c *Client) order() []*server {
	now := c.now()
	var up []*server
	for _, s := range c.servers {
		if !s.backingOff(now) {
			up = append(up, s)
		}
	}
	if len(up) == 0 {
		return c.servers
	}
	return up
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

// connect opens a connection to the first server that answers, bound as the
// service account when bindService is set.
func (c *Client) connect(ctx context.Context, bindService bool) (*ldap.Conn, *server, error) {
	var errs []error
	for _, s := range c.order() {
		start := time.Now()
		conn, err := c.open(ctx, s, bindService)
		c.metrics.observe("connect", start, err)
		if err == nil {
			s.succeeded()
			return conn, s, nil
		}
		if ctx.Err() != nil {
			// The caller gave up: that says nothing about the server.
			return nil, nil, unavailable(ctx, "connect to "+s.url.Addr(), err)
		}
		s.failed(err, c.now())
		c.logger.WarnContext(ctx, "ldap server failed; trying the next", "server", s.url.Addr(), "error", err.Error())
		errs = append(errs, fmt.Errorf("%s: %w", s.url.Addr(), err))
	}
	return nil, nil, fmt.Errorf("%w: no ldap server answered: %w", ErrUnavailable, errors.Join(errs...))
}

// open dials s, upgrades with StartTLS if configured and binds as the service
// account if asked, all within the dial timeout: a server that drops packets
// or accepts and then hangs costs at most that.
func (c *Client) open(ctx context.Context, s *server, bindService bool) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	d := &net.Dialer{Timeout: c.dialTimeout}
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

// ProbeAll connects to every server in turn, whatever its back-off, binds as
// the service account and reads the root DSE. It does not use or change the
// pools or the servers' health.
func (c *Client) ProbeAll(ctx context.Context) []Probe {
	out := make([]Probe, 0, len(c.servers))
	for _, s := range c.servers {
		start := time.Now()
		p := Probe{URL: s.url.String()}
		conn, err := c.open(ctx, s, true)
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
