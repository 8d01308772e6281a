package ecremu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// RegistryBinary is Debian's build of CNCF distribution 2.8.
const RegistryBinary = "/usr/bin/docker-registry"

const (
	registryStartTimeout = 15 * time.Second
	registryStopTimeout  = 5 * time.Second
	registryStartTries   = 3
)

// ErrRegistryExited is returned when docker-registry exits before it answers.
var ErrRegistryExited = errors.New("ecremu: docker-registry exited during start")

// Registry is a running docker-registry process without authentication,
// storing its blobs on the filesystem.
type Registry struct {
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File

	stopOnce sync.Once
	stopErr  error
}

// StartRegistry runs docker-registry on a free loopback port with its storage,
// configuration and log in dir, and waits until GET /v2/ answers.
func StartRegistry(ctx context.Context, dir string) (*Registry, error) {
	var lastErr error
	// The free port is found by closing a listener, so another process can
	// take it before docker-registry binds it; then try another port.
	for range registryStartTries {
		r, err := startRegistryOnce(ctx, dir)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if !errors.Is(err, ErrRegistryExited) {
			break
		}
	}
	return nil, lastErr
}

func startRegistryOnce(ctx context.Context, dir string) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("ecremu: registry secret: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("ecremu: registry dir: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, registryConfig(filepath.Join(dir, "data"), addr, hex.EncodeToString(secret)), 0o600); err != nil {
		return nil, fmt.Errorf("ecremu: registry config: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ecremu: registry log: %w", err)
	}

	cmd := exec.Command(RegistryBinary, "serve", confPath)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("ecremu: start docker-registry: %w", err)
	}
	r := &Registry{url: "http://" + addr, cmd: cmd, exited: make(chan struct{}), logf: logf}
	go func() {
		cmd.Wait()
		close(r.exited)
	}()
	if err := r.waitReady(ctx); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

func (r *Registry) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, registryStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/v2/", nil)
		if err != nil {
			return fmt.Errorf("ecremu: registry probe: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.exited:
			return fmt.Errorf("%w (see %s)", ErrRegistryExited, r.logf.Name())
		case <-ctx.Done():
			return fmt.Errorf("ecremu: docker-registry not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// URL returns the registry's base URL, http://127.0.0.1:<port>.
func (r *Registry) URL() string { return r.url }

// Stop terminates docker-registry, killing it if it does not exit promptly.
// It is safe to call more than once.
func (r *Registry) Stop() error {
	r.stopOnce.Do(func() {
		select {
		case <-r.exited:
		default:
			r.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.exited:
			case <-time.After(registryStopTimeout):
				r.cmd.Process.Kill()
				<-r.exited
			}
		}
		r.stopErr = r.logf.Close()
	})
	return r.stopErr
}

func registryConfig(dataDir, addr, secret string) []byte {
	return fmt.Appendf(nil, `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
  relativeurls: true
`, dataDir, addr, secret)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ecremu: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
