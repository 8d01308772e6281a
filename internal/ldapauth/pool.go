package ldapauth

import (
	"context"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// maxLifetime retires pooled connections after a while, so that traffic moves
// back to the first server once it has recovered.
const maxLifetime = 10 * time.Minute

// pool keeps connections to the directory for reuse. Two pools exist: "search",
// whose connections are bound as the service account and do all searches, and
// "bind", whose connections carry user binds and nothing else, so a user's
// identity never reaches a search and the service account never needs a
// re-bind. At most size connections are open; idle ones are dropped after
// idleTimeout, checked when one is taken (no background goroutine).
type pool struct {
	c           *Client
	name        string
	bindService bool
	size        int
	idleTimeout time.Duration
	slots       chan struct{} // one per connection in use or being opened

	mu     sync.Mutex
	idle   []*pooledConn // most recently used last
	open   int
	closed bool
}

type pooledConn struct {
	conn    *ldap.Conn
	srv     *server
	created time.Time
	used    time.Time
	reused  bool // taken from the idle list, so possibly closed by the server meanwhile
}

func newPool(c *Client, name string, bindService bool, size int, idleTimeout time.Duration) *pool {
	return &pool{c: c, name: name, bindService: bindService, size: size, idleTimeout: idleTimeout,
		slots: make(chan struct{}, size)}
}

// do runs fn on a pooled connection. If the connection turns out to be broken
// (closed by a restarted server or a firewall), fn runs once more on a freshly
// opened one. Errors from getting a connection wrap ErrUnavailable; errors from
// fn are returned as they are.
func (p *pool) do(ctx context.Context, fn func(*ldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		pc, err := p.get(ctx, attempt > 0)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { pc.conn.Close() })
		err = fn(pc.conn)
		stop()
		if !pc.conn.IsClosing() && !ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
			p.put(pc)
			return err
		}
		p.discard(pc)
		if budgetSpent(ctx) {
			// The caller's time ran out: that says nothing about the server.
			return unavailable(ctx, "ldap operation", err)
		}
		if !pc.reused {
			// A new connection that breaks at once says the server is failing:
			// retry only if another server is there to try.
			pc.srv.failed(err, p.c.now())
			if !p.c.anyServerUp() {
				return unavailable(ctx, "ldap operation", err)
			}
		}
		if attempt > 0 {
			return unavailable(ctx, "ldap operation on a fresh connection", err)
		}
		p.c.logger.DebugContext(ctx, "pooled ldap connection broken; retrying on a fresh one",
			"pool", p.name, "server", pc.srv.url.Addr(), "error", err)
	}
}

// get returns an idle connection (unless fresh is set) or opens a new one,
// waiting for a free slot while size connections are in use.
func (p *pool) get(ctx context.Context, fresh bool) (*pooledConn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, unavailable(ctx, "wait for a pooled "+p.name+" connection", ctx.Err())
	}
	if !fresh {
		if pc := p.takeIdle(); pc != nil {
			return pc, nil
		}
	}
	conn, srv, err := p.c.connect(ctx, p.bindService)
	if err != nil {
		<-p.slots
		return nil, err
	}
	now := p.c.now()
	p.mu.Lock()
	p.open++
	p.report()
	p.mu.Unlock()
	return &pooledConn{conn: conn, srv: srv, created: now, used: now}, nil
}

func (p *pool) takeIdle() *pooledConn {
	now := p.c.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		pc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if pc.conn.IsClosing() || now.Sub(pc.used) > p.idleTimeout || now.Sub(pc.created) > maxLifetime {
			p.open--
			go pc.conn.Close() // Close may wait for the server; never under the lock
			continue
		}
		pc.reused = true
		p.report()
		return pc
	}
	return nil
}

// put returns a healthy connection to the idle list, or closes it when the pool
// is closed or over its size (after a retry opened an extra one).
func (p *pool) put(pc *pooledConn) {
	pc.used = p.c.now()
	p.mu.Lock()
	keep := !p.closed && p.open <= p.size
	if keep {
		p.idle = append(p.idle, pc)
	} else {
		p.open--
	}
	p.report()
	p.mu.Unlock()
	<-p.slots
	if !keep {
		pc.conn.Close()
	}
}

func (p *pool) discard(pc *pooledConn) {
	p.mu.Lock()
	p.open--
	p.report()
	p.mu.Unlock()
	<-p.slots
	pc.conn.Close()
}

func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.open -= len(idle)
	p.report()
	p.mu.Unlock()
	for _, pc := range idle {
		pc.conn.Close()
	}
}

// report updates the pool gauges; p.mu is held.
func (p *pool) report() {
	p.c.metrics.setPool(p.name, p.open, len(p.idle))
}
