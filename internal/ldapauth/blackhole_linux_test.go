package ldapauth

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// blackholeAddr returns a loopback address whose SYNs are silently dropped, like a
// firewalled LDAP server: a socket listening with backlog 0 whose accept queue is
// already full, and which never accepts.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	filler, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("fill accept queue: %v", err)
	}
	t.Cleanup(func() { filler.Close() })
	if probe, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
		probe.Close()
		t.Skip("this kernel accepts connections beyond a full backlog; cannot simulate dropped SYNs")
	}
	return addr
}

func TestDroppedPacketsAnswerWithinDialTimeout(t *testing.T) {
	const dialTimeout = 300 * time.Millisecond
	c, err := New(Config{
		URL:         mustURL(t, "ldap://"+blackholeAddr(t)+"/dc=example,dc=org"),
		DialTimeout: dialTimeout,
		Timeout:     5 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Authenticate(context.Background(), "bob", "secret")
	elapsed := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v; want ErrUnavailable", err)
	}
	if elapsed < dialTimeout || elapsed > dialTimeout+500*time.Millisecond {
		t.Errorf("answered after %v; want about the dial timeout %v", elapsed, dialTimeout)
	}
}
