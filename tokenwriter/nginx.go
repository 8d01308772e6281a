package tokenwriter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	// ErrNginxTest reports that the test command (`nginx -t`) refused the new include.
	ErrNginxTest = errors.New("nginx configuration test failed")
	// ErrNotRunning reports that there is no nginx to reload.
	ErrNotRunning = errors.New("nginx is not running")
)

// commandTimeout bounds `nginx -t` and the reload command.
const commandTimeout = 30 * time.Second

// maxStderr bounds how much of a command's output goes into an error.
const maxStderr = 2048

// Reloader makes nginx load the include that was just written and tested.
type Reloader interface {
	Reload(ctx context.Context) error
}

// NginxReloader reloads nginx by SIGHUP to the pid in PIDFile, or by running
// Command when it is set. With PIDFile set, nginx counts as running only while
// the process it names exists; Reload returns ErrNotRunning otherwise.
type NginxReloader struct {
	PIDFile string
	Command []string
}

var _ Reloader = NginxReloader{}

// Reload implements Reloader.
func (n NginxReloader) Reload(ctx context.Context) error {
	pid := 0
	if n.PIDFile != "" {
		var err error
		if pid, err = runningPID(n.PIDFile); err != nil {
			return err
		}
	}
	if len(n.Command) > 0 {
		if err := runCommand(ctx, n.Command); err != nil {
			return fmt.Errorf("reload nginx: %w", err)
		}
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload nginx: signal pid %d: %w", pid, err)
	}
	return nil
}

// runningPID returns the pid in path if that process exists.
func runningPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: no pid file %s", ErrNotRunning, path)
	}
	if err != nil {
		return 0, fmt.Errorf("read nginx pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%w: pid file %s holds %q", ErrNotRunning, path, bytes.TrimSpace(data))
	}
	if pid == os.Getpid() {
		// A stale pid file seen from another PID namespace (a container whose
		// pid 1 is tokenwriter): SIGHUP would end this process, not reload nginx.
		return 0, fmt.Errorf("%w: pid file %s names tokenwriter itself", ErrNotRunning, path)
	}
	// Signal 0 only checks: EPERM still means the process exists.
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return 0, fmt.Errorf("%w: pid %d from %s is gone", ErrNotRunning, pid, path)
	}
	return pid, nil
}

// skipIfStopped treats a stopped nginx as reloaded: `tokenwriter -once` runs
// before nginx starts, and nginx reads the new include when it does.
type skipIfStopped struct {
	next Reloader
	log  *slog.Logger
}

func (s skipIfStopped) Reload(ctx context.Context) error {
	err := s.next.Reload(ctx)
	if errors.Is(err, ErrNotRunning) {
		s.log.Info("nginx not running; reload skipped", "reason", err.Error())
		return nil
	}
	return err
}

// runCommand runs argv and returns an error carrying its output when it fails.
// Output that contains any of secrets is redacted.
func runCommand(ctx context.Context, argv []string, secrets ...string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		msg := out.String()
		for _, s := range secrets {
			if s != "" {
				msg = strings.ReplaceAll(msg, s, "***")
			}
		}
		msg = strings.TrimSpace(msg)
		if len(msg) > maxStderr {
			msg = msg[:maxStderr] + "..."
		}
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return nil
}
