package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/toanc/aws-ecr-ldap/authsvc"
)

const (
	readyTimeout = 15 * time.Second
	onceTimeout  = 3 * time.Minute
	stopTimeout  = 15 * time.Second
)

// Run starts authsvc, writes the first token, starts nginx and the tokenwriter
// daemon, and keeps them running until ctx ends or one of them exits. It
// stops everything it started before it returns.
func Run(ctx context.Context, c Config, logger *slog.Logger) error {
	root, err := filepath.Abs(c.RunDir)
	if err != nil {
		return err
	}
	// SIGHUP (systemd's ExecReload, kill -HUP) reloads authsvc's policy file;
	// caught from the start, so that it never kills the runner. nginx.conf is
	// copied at start: a change to it needs a restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	l := layout{root: root}
	lock, err := l.lock()
	if err != nil {
		return err
	}
	defer lock.Close()
	nginxPath, err := lookBin(c, "nginx")
	if err != nil {
		return fmt.Errorf("nginx: %w (apt-get install nginx)", err)
	}
	version, err := probeNginxVersion(ctx, nginxPath)
	if err != nil {
		logger.Warn("cannot tell the nginx version; treating it as older than "+keepaliveMinTimeoutSince.String(), "error", err)
	}
	if !version.supportsKeepaliveMinTimeout() {
		logger.Warn("nginx is older than "+keepaliveMinTimeoutSince.String()+": a request sent on an idle kept-alive connection at the instant of a reload (every token refresh) can be reset; upgrade nginx to lose none",
			"nginx", nginxPath, "version", version.String())
	}
	if err := l.prepare(c, version); err != nil {
		return fmt.Errorf("prepare %s: %w", root, err)
	}
	env := childEnv(c, l)

	var procs []*process
	defer func() { stopAll(procs, logger) }()
	exited := make(chan *process, 4)
	start := func(name string, argv []string, stopSig os.Signal) error {
		p, err := startProcess(c, name, argv, env, stopSig, exited)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		return nil
	}

	if err := start("authsvc", AuthsvcCommand(), syscall.SIGTERM); err != nil {
		return err
	}
	if err := waitReady(ctx, exited, authHealthCheck(c.AuthListenAddr)); err != nil {
		return fmt.Errorf("authsvc: %w", err)
	}

	onceCtx, cancel := context.WithTimeout(ctx, onceTimeout)
	defer cancel()
	if err := runOnce(onceCtx, c, env); err != nil {
		return fmt.Errorf("first token: %w", err)
	}

	if err := start("nginx", NginxCommand(l.confDir()), syscall.SIGQUIT); err != nil {
		return err
	}
	if err := waitReady(ctx, exited, nginxHealthCheck(c)); err != nil {
		return fmt.Errorf("nginx: %w", err)
	}
	if err := start("tokenwriter", TokenwriterCommand(), syscall.SIGTERM); err != nil {
		return err
	}
	logger.Info("gateway ready", "http", c.HTTPAddr, "https", c.HTTPSAddr, "run_dir", root)

	for {
		select {
		case <-ctx.Done():
			logger.Info("stopping")
			return nil
		case p := <-exited:
			return p.exitError()
		case <-hup:
			logger.Info("SIGHUP: authsvc reloads its policy file; restart the gateway for nginx.conf changes")
			_ = procs[0].cmd.Process.Signal(syscall.SIGHUP)
		}
	}
}

// childEnv is this process's environment plus the paths that tie the three
// processes to this instance's run directory.
func childEnv(c Config, l layout) []string {
	return append(os.Environ(),
		"AUTH_LISTEN_ADDR="+c.AuthListenAddr,
		"TOKEN_FILE="+l.tokenFile(),
		"NGINX_TEST_COMMAND="+strings.Join(NginxTestCommand(l.confDir()), " "),
		"NGINX_PID_FILE="+l.pidFile(),
	)
}

func runOnce(ctx context.Context, c Config, env []string) error {
	argv := TokenwriterOnceCommand()
	path, err := lookBin(c, argv[0])
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

type process struct {
	name    string
	cmd     *exec.Cmd
	stopSig os.Signal
	done    chan struct{}
	err     error
}

func (p *process) exitError() error {
	if p.err == nil {
		return fmt.Errorf("%s exited unexpectedly (status 0); stopping the gateway", p.name)
	}
	return fmt.Errorf("%s exited unexpectedly (%v); stopping the gateway", p.name, p.err)
}

// pipeTo hides the *os.File behind a plain writer, so that exec gives the
// child a pipe. nginx opens /dev/stdout for its access log: that fails when
// stdout is a socket (journald), and on a regular file it would write at its
// own offset over the other processes' lines.
type pipeTo struct{ io.Writer }

func startProcess(c Config, name string, argv, env []string, stopSig os.Signal, exited chan<- *process) (*process, error) {
	path, err := lookBin(c, argv[0])
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = pipeTo{os.Stdout}, pipeTo{os.Stderr}
	// A child that exits but leaves the pipes open (orphaned nginx workers)
	// must not hold up Wait.
	cmd.WaitDelay = 2 * time.Second
	// Own process group: a Ctrl-C in the terminal reaches only the runner,
	// which stops the children in order. Pdeathsig: if the runner is killed,
	// the children do not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, stopSig: stopSig, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		// Whatever the child left in its process group (nginx workers whose
		// master was killed) goes with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(p.done)
		select {
		case exited <- p:
		default:
		}
	}()
	return p, nil
}

// lookBin finds a gateway binary in BinDir, next to this executable, or on PATH.
func lookBin(c Config, name string) (string, error) {
	dirs := []string{c.BinDir}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	for _, d := range dirs {
		if d == "" || name == "nginx" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// stopAll stops the processes in reverse start order, each with its own
// signal (nginx: SIGQUIT, a graceful stop), then kills what is left.
func stopAll(procs []*process, logger *slog.Logger) {
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(p.stopSig)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			logger.Warn("killing after timeout", "process", p.name)
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}

// waitReady polls check until it succeeds, a child exits, or time runs out.
func waitReady(ctx context.Context, exited <-chan *process, check func(context.Context) error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", readyTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p := <-exited:
			return p.exitError()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func authHealthCheck(listen string) func(context.Context) error {
	return func(ctx context.Context) error { return authsvc.HealthCheck(ctx, listen) }
}

func nginxHealthCheck(c Config) func(context.Context) error {
	return func(ctx context.Context) error {
		addr := c.HTTPAddr
		if addr == "" {
			addr = c.HTTPSAddr
		}
		host, port, _ := net.SplitHostPort(addr)
		switch host {
		case "", "0.0.0.0", "*":
			host = "127.0.0.1"
		case "::", "[::]":
			host = "::1"
		}
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
		if err != nil {
			return err
		}
		return conn.Close()
	}
}
