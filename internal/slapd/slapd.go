package slapd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Options says where and how to run slapd. Only Dir is required.
type Options struct {
	// Dir holds slapd.conf, the mdb data and slapd.log. The caller creates and
	// removes it (t.TempDir() in tests). It must not contain spaces.
	Dir string
	// Port pins the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Slapd and Slaptest are the binaries; empty means $PATH, then /usr/sbin.
	Slapd, Slaptest string
	// SchemaDir defaults to /etc/ldap/schema, ModuleDir to /usr/lib/ldap.
	SchemaDir, ModuleDir string
	// StartTimeout bounds one start (until the port answers); default 10s.
	StartTimeout time.Duration
	// TLS, when set, enables StartTLS on the ldap:// port and adds an ldaps://
	// listener on LDAPSPort (see [Server.LDAPSURL]).
	TLS *TLS
	// LDAPSPort pins the ldaps:// port when TLS is set; 0 picks a free one.
	LDAPSPort int
	// MemberOf loads the memberof overlay: users and groups listed in a
	// groupOfNames get a memberOf value naming it.
	MemberOf bool
}

// TLS names the PEM files slapd serves TLS with (testpki.(*CA).WriteFiles
// writes them). Paths must not contain spaces.
type TLS struct {
	CertFile, KeyFile, CAFile string
	// VerifyClient makes slapd demand a client certificate signed by CAFile.
	VerifyClient bool
}

// Server is a running (or stopped) slapd. Its methods are safe for concurrent use.
type Server struct {
	opts    Options
	conf    string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start writes the configuration, checks it with slaptest, starts slapd and loads
// the sample directory as the rootdn. The server keeps running after ctx ends; ctx
// only bounds the start. Stop it with [Server.Stop].
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("slapd: Options.Dir is required")
	}
	if strings.ContainsAny(opts.Dir, " \t\n\"") {
		return nil, fmt.Errorf("slapd: Options.Dir %q must not contain spaces or quotes", opts.Dir)
	}
	opts.Slapd = findBinary(opts.Slapd, "slapd")
	opts.Slaptest = findBinary(opts.Slaptest, "slaptest")
	if opts.SchemaDir == "" {
		opts.SchemaDir = "/etc/ldap/schema"
	}
	if opts.ModuleDir == "" {
		opts.ModuleDir = "/usr/lib/ldap"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.Port == 0 {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("slapd: %w", err)
		}
		opts.Port = port
	}
	if opts.TLS != nil && opts.LDAPSPort == 0 {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("slapd: %w", err)
		}
		opts.LDAPSPort = port
	}
	conf, err := writeConf(opts)
	if err != nil {
		return nil, fmt.Errorf("slapd: %w", err)
	}
	if out, err := exec.CommandContext(ctx, opts.Slaptest, "-Q", "-u", "-f", conf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("slapd: slaptest rejected %s: %w: %s", conf, err, bytes.TrimSpace(out))
	}
	s := &Server{opts: opts, conf: conf, logPath: filepath.Join(opts.Dir, "slapd.log")}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("%w (loading the sample directory)", err)
	}
	return s, nil
}

// URL is ldap://127.0.0.1:PORT, without a trailing slash.
func (s *Server) URL() string {
	return "ldap://127.0.0.1:" + strconv.Itoa(s.opts.Port)
}

// SearchURL is an RFC 4516 URL that finds the sample users by uid under BaseDN.
func (s *Server) SearchURL() string {
	return s.URL() + SearchPath
}

// LDAPSURL is ldaps://127.0.0.1:PORT, without a trailing slash; "" without TLS.
func (s *Server) LDAPSURL() string {
	if s.opts.TLS == nil {
		return ""
	}
	return "ldaps://127.0.0.1:" + strconv.Itoa(s.opts.LDAPSPort)
}

// Port is the TCP port slapd listens on.
func (s *Server) Port() int { return s.opts.Port }

// Start starts a stopped server again, on the same port and with the same data.
// It is a no-op if the server is running.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	// Append: BindCount keeps counting across restarts.
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("slapd: open log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	// -d keeps slapd in the foreground, so we own the process and its exit.
	listen := s.URL() + "/"
	if s.opts.TLS != nil {
		listen += " " + s.LDAPSURL() + "/"
	}
	cmd := exec.Command(s.opts.Slapd, "-f", s.conf, "-h", listen, "-d", "stats")
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("slapd: start: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitReady(ctx, s.opts.StartTimeout, "127.0.0.1:"+strconv.Itoa(s.opts.Port), exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("slapd: %w (log: %s)", err, s.logTail())
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// Stop terminates slapd and waits for it to exit. The data stays in Dir, so
// [Server.Start] can bring the same directory back. Stopping a stopped server is a
// no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("slapd: kill: %w", err)
	}
	<-exited
	return nil
}

// BindCount is the number of BIND requests slapd has received since the first
// start, across restarts, excluding binds as the rootdn (AdminDN, used to load the
// data). Anonymous binds, failed binds and binds with an empty password all count:
// the point is to tell whether a request reached the directory at all.
func (s *Server) BindCount() int {
	return len(s.BindDNs())
}

// BindDNs lists the DNs of the BIND requests counted by [Server.BindCount], in the
// order slapd logged them, as slapd spells them in its stats log.
func (s *Server) BindDNs() []string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var dns []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// conn=1001 op=0 BIND dn="uid=bob,ou=people,dc=example,dc=org" method=128
		_, rest, ok := strings.Cut(sc.Text(), ` BIND dn="`)
		if !ok {
			continue
		}
		dn, _, ok := strings.Cut(rest, `" method=`)
		if !ok || strings.EqualFold(dn, AdminDN) {
			continue
		}
		dns = append(dns, dn)
	}
	return dns
}

func (s *Server) load(ctx context.Context) error {
	return s.Add(ctx, entries()...)
}

// Add adds entries online as the rootdn, in order, so overlays (memberof)
// see them. For fixtures beyond the sample directory.
func (s *Server) Add(ctx context.Context, reqs ...*ldap.AddRequest) error {
	return s.asAdmin(ctx, func(conn *ldap.Conn) error {
		for _, req := range reqs {
			if err := conn.Add(req); err != nil {
				return fmt.Errorf("add %s: %w", req.DN, err)
			}
		}
		return nil
	})
}

// Modify changes entries online as the rootdn.
func (s *Server) Modify(ctx context.Context, reqs ...*ldap.ModifyRequest) error {
	return s.asAdmin(ctx, func(conn *ldap.Conn) error {
		for _, req := range reqs {
			if err := conn.Modify(req); err != nil {
				return fmt.Errorf("modify %s: %w", req.DN, err)
			}
		}
		return nil
	})
}

func (s *Server) asAdmin(ctx context.Context, fn func(*ldap.Conn) error) error {
	conn, err := ldap.DialURL(s.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return fmt.Errorf("slapd: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetTimeout(10 * time.Second)
	if err := conn.Bind(AdminDN, AdminPassword); err != nil {
		return fmt.Errorf("slapd: bind as %s: %w", AdminDN, err)
	}
	if err := fn(conn); err != nil {
		return fmt.Errorf("slapd: %w", err)
	}
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

func waitReady(ctx context.Context, timeout time.Duration, addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before listening")
		case <-ctx.Done():
			return fmt.Errorf("not listening on %s: %w", addr, ctx.Err())
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func findBinary(given, name string) string {
	if given != "" {
		return given
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// Available reports whether slapd and slaptest can be found, so test suites can
// say clearly why they cannot run.
func Available() error {
	for _, name := range []string{"slapd", "slaptest"} {
		if _, err := exec.LookPath(findBinary("", name)); err != nil {
			return fmt.Errorf("slapd: %s not found (install the slapd package): %w", name, err)
		}
	}
	return nil
}
