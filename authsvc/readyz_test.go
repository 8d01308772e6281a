package authsvc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakePinger struct {
	mu    sync.Mutex
	err   error
	calls atomic.Int64
	delay time.Duration
}

func (p *fakePinger) Ping(ctx context.Context) error {
	p.calls.Add(1)
	time.Sleep(p.delay)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *fakePinger) set(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func readyz(s *testService) int {
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code
}

func TestReadyz(t *testing.T) {
	p := &fakePinger{}
	s := newTestService(panicAuth{t}, Options{Pinger: p})
	if got := readyz(s); got != 200 {
		t.Errorf("LDAP reachable: got %d; want 200", got)
	}
	p.set(errors.New("dial tcp: connection refused"))
	if got := readyz(s); got != 200 {
		t.Errorf("within the cached period: got %d; want 200 (the answer is cached)", got)
	}
	if got := p.calls.Load(); got != 1 {
		t.Errorf("pings: got %d; want 1", got)
	}
	s.clock.Advance(readyCacheFor)
	if got := readyz(s); got != 503 {
		t.Errorf("LDAP unreachable: got %d; want 503", got)
	}
	if got := readyz(s); got != 503 {
		t.Errorf("LDAP unreachable, cached: got %d; want 503", got)
	}
	if got := p.calls.Load(); got != 2 {
		t.Errorf("pings: got %d; want 2", got)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("/healthz while LDAP is unreachable: got %d; want 200", rec.Code)
	}
	if n := len(s.logs.lines(t)); n != 2 {
		t.Errorf("log lines: got %d; want 2 (one per change of state):\n%s", n, s.logs)
	}
}

func TestReadyzProbesShareOnePing(t *testing.T) {
	p := &fakePinger{delay: 50 * time.Millisecond}
	s := newTestService(panicAuth{t}, Options{Pinger: p})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if got := readyz(s); got != 200 {
				t.Errorf("got %d; want 200", got)
			}
		})
	}
	wg.Wait()
	if got := p.calls.Load(); got != 1 {
		t.Errorf("pings for 20 concurrent probes: got %d; want 1", got)
	}
}

func TestReadyzWithoutPinger(t *testing.T) {
	s := newTestService(panicAuth{t}, Options{})
	if got := readyz(s); got != 200 {
		t.Errorf("no Pinger: got %d; want 200", got)
	}
}
