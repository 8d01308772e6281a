package ldapauth

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func mustURL(t *testing.T, s string) *URL {
	t.Helper()
	u, err := ParseURL(s)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", s, err)
	}
	return u
}

// countingListener accepts TCP connections, counts them and closes them at once.
func countingListener(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), accepted
}

// silentListener accepts TCP connections and never answers, like a hung server.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestNewValidatesAndCopies(t *testing.T) {
	u := mustURL(t, "ldap://127.0.0.1:1/dc=example,dc=org")
	cfg := Config{URL: u, BindDN: `cn=gateway\, reader,dc=example,dc=org`, BindPassword: "x", GroupMemberAttribute: "MEMBERUID"}
	before := *u
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if cfg.DialTimeout != 0 || cfg.Timeout != 0 || cfg.GroupMemberAttribute != "MEMBERUID" || *u != before {
		t.Errorf("New changed the caller's config: %+v, URL %+v", cfg, *u)
	}
	if c.dialTimeout != DefaultDialTimeout || c.timeout != DefaultTimeout || c.groups.memberAttr != MemberUIDAttribute {
		t.Errorf("got dialTimeout %v, timeout %v, memberAttr %q; want %v, %v, %q",
			c.dialTimeout, c.timeout, c.groups.memberAttr, DefaultDialTimeout, DefaultTimeout, MemberUIDAttribute)
	}
	u.BaseDN = "dc=changed"
	if c.url.BaseDN != "dc=example,dc=org" {
		t.Errorf("client shares the caller's URL: base DN %q", c.url.BaseDN)
	}

	bad := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no URL", Config{}, "URL is required"},
		{"bind DN without password", Config{URL: u, BindDN: "cn=a,dc=b"}, "without a bind password"},
		{"password without bind DN", Config{URL: u, BindPassword: "x"}, "without a bind DN"},
		{"bad bind DN", Config{URL: u, BindDN: "nonsense", BindPassword: "x"}, "bind DN"},
		{"bad group DN", Config{URL: u, RequireGroups: []string{"nonsense"}}, "required group"},
		{"bad member attribute", Config{URL: u, GroupMemberAttribute: "memberOf"}, "member, uniqueMember or memberUid"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New: got %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// Refusals that must happen before any network traffic: an empty password would be
// an anonymous bind on many servers.
func TestRefusedWithoutTraffic(t *testing.T) {
	addr, accepted := countingListener(t)
	c, err := New(Config{URL: mustURL(t, "ldap://"+addr+"/dc=example,dc=org")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, user, pass string }{
		{"empty password", "bob", ""},
		{"empty username", "", "secret"},
		{"username too long", strings.Repeat("a", MaxUsernameBytes+1), "secret"},
		{"username not UTF-8", "b\xffob", "secret"},
		{"username with NUL", "bob\x00", "secret"},
		{"username with newline", "bob\nadmin", "secret"},
		{"username with DEL", "bob\x7f", "secret"},
		{"username with C1 control", "bob\u0085", "secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Authenticate(context.Background(), tt.user, tt.pass)
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("got %v; want ErrInvalidCredentials", err)
			}
			if n := accepted.Load(); n != 0 {
				t.Errorf("connections to the directory: got %d; want 0", n)
			}
		})
	}
	// The control: a well-formed request does reach the listener, so the zero
	// counts above mean something.
	_, err = c.Authenticate(context.Background(), strings.Repeat("a", MaxUsernameBytes), "secret")
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("well-formed request to a server that hangs up: got %v; want ErrUnavailable", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("connections after a well-formed request: got %d; want 1", n)
	}
}

func TestUnavailable(t *testing.T) {
	closedAddr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	hangup, _ := countingListener(t)
	tests := []struct {
		name    string
		addr    string
		ctx     func() (context.Context, context.CancelFunc)
		within  time.Duration
		timeout time.Duration
	}{
		{"connection refused", closedAddr, nil, time.Second, 0},
		{"server hangs up", hangup, nil, time.Second, 0},
		// TEST-NET-1 (RFC 5737): unroutable, so the dial fails at once or times out.
		{"unreachable address", "192.0.2.1:389", nil, 300*time.Millisecond + time.Second, 0},
		{"server never answers", silentListener(t), nil, 400*time.Millisecond + time.Second, 400 * time.Millisecond},
		{"caller gives up", silentListener(t), func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, 200*time.Millisecond + time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{
				URL:          mustURL(t, "ldap://"+tt.addr+"/dc=example,dc=org"),
				BindDN:       "cn=svc,dc=example,dc=org",
				BindPassword: "svc",
				DialTimeout:  300 * time.Millisecond,
				Timeout:      tt.timeout,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			start := time.Now()
			_, err = c.Authenticate(ctx, "bob", "secret")
			elapsed := time.Since(start)
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("got %v; want ErrUnavailable", err)
			}
			if elapsed > tt.within {
				t.Errorf("answered after %v; want within %v", elapsed, tt.within)
			}
		})
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
