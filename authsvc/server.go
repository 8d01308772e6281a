package authsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

const (
	// MaxHeaderBytes is generous so that an oversized Authorization header reaches
	// the handler and gets a 401 with a challenge rather than a bare 431.
	MaxHeaderBytes    = 64 << 10
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	// idleTimeout must outlast nginx's upstream keepalive_timeout (60s by default)
	// so that nginx, not authsvc, closes idle keepalive connections.
	idleTimeout     = 5 * time.Minute
	shutdownTimeout = 10 * time.Second
)

// Run serves authsvc with cfg until ctx ends, then shuts down gracefully. With
// AUTH_METRICS_ADDR set it also serves /metrics there.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	lc, err := cfg.LDAPConfig()
	if err != nil {
		return err
	}
	// One registry for the process, never the default one: the LDAP client's
	// metrics (latency, pool, server health) and the handler's go on it.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	lc.Metrics = ldapauth.NewMetrics(reg)
	client, err := ldapauth.New(lc, logger)
	if err != nil {
		return err
	}
	opts := cfg.Service.handlerOptions(cfg.Realm, logger, NewMetrics(reg))
	opts.Pinger = client
	var reloader *policyReloader
	if cfg.Policy.File != "" {
		if reloader, err = openPolicy(cfg.Policy, reg, logger, time.Now); err != nil {
			return err
		}
		defer reloader.close()
		opts.Policy = reloader.w.Store
	} else {
		// SIGHUP means "reload" to every part of the gateway (the runner
		// forwards it, systemd's ExecReload sends it): with no policy file
		// there is nothing to reload, and it must not stop the service.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-hup:
					logger.Info("SIGHUP: no policy file (AUTH_POLICY_FILE) to reload")
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if cfg.Repositories.Create {
		if opts.Repositories, err = newRepositoryCreator(ctx, cfg.Repositories, reg, logger); err != nil {
			return err
		}
	}
	ln, err := Listen(cfg.ListenAddr)
	if err != nil {
		return err
	}
	var metricsLn net.Listener
	if cfg.Service.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.Service.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("metrics listen: %w", err)
		}
	}
	srv := NewServer(NewHandlerWith(client, opts), logger)
	// The handler is bounded by LDAP_TIMEOUT; the write deadline must not cut it short.
	// So is create-on-push's ECR call.
	srv.WriteTimeout = max(30*time.Second, cfg.LDAPTimeout+DefaultRepositoryCallTimeout+5*time.Second)
	logger.Info("authsvc listening", "addr", ln.Addr().String(), "ldap_url", lc.URL.String(),
		"bind_dn", cfg.LDAPBindDN, "require_group", cfg.LDAPRequireGroup, "realm", cfg.Realm,
		"cache_ttl", cfg.Service.CacheTTL, "cache_size", cfg.Service.CacheSize, "grace_period", cfg.Service.GracePeriod,
		"max_failures", cfg.Service.MaxFailures, "max_failures_per_user", cfg.Service.MaxFailuresPerUser,
		"max_failures_per_ip", cfg.Service.MaxFailuresPerIP, "failure_window", cfg.Service.FailureWindow,
		"metrics_addr", cfg.Service.MetricsAddr, "policy_file", cfg.Policy.File,
		"create_repositories", cfg.Repositories.Create)

	// Either server failing stops both.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return Serve(gctx, srv, ln) })
	if reloader != nil {
		g.Go(func() error { return reloader.run(gctx) })
	}
	if metricsLn != nil {
		msrv := NewServer(MetricsHandler(reg), logger)
		g.Go(func() error { return Serve(gctx, msrv, metricsLn) })
	}
	return g.Wait()
}

// newRepositoryCreator is create-on-push for rc: ECR clients on the SDK's
// default credential chain (or AWS_KEY and AWS_SECRET, as tokenwriter), in
// AWS_REGION (or REGION, a profile's, the EC2 instance's) unless nginx names
// another region.
func newRepositoryCreator(ctx context.Context, rc RepositoryConfig, reg prometheus.Registerer, logger *slog.Logger) (*RepositoryCreator, error) {
	var opts []func(*config.LoadOptions) error
	if rc.DefaultRegion() != "" {
		opts = append(opts, config.WithRegion(rc.DefaultRegion()))
	}
	if rc.AWSKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(rc.AWSKey, rc.AWSSecret.Reveal(), "")))
	}
	// Bounded: off EC2 the metadata service may not answer at all.
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(lctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AUTH_CREATE_REPOSITORIES: aws config: %w", err)
	}
	if awsCfg.Region == "" {
		// On EC2 (compose on an instance with a role): the instance's region.
		out, err := imds.NewFromConfig(awsCfg).GetRegion(lctx, nil)
		if err != nil {
			return nil, fmt.Errorf("%w; not on EC2 either: %v", errNoRegion, err)
		}
		awsCfg.Region = out.Region
	}
	scan := "ecr default"
	if rc.ScanOnPush != nil {
		scan = strconv.FormatBool(*rc.ScanOnPush)
	}
	mutability := rc.TagMutability
	if mutability == "" {
		mutability = "ecr default"
	}
	logger.Info("create-on-push on: a missing repository is created at the first upload of a user allowed to push there",
		"region", awsCfg.Region, "ecr_endpoint", rc.EndpointURLECR, "static_credentials", rc.AWSKey != "",
		"tag_mutability", mutability, "scan_on_push", scan, "timeout", DefaultRepositoryCallTimeout,
		"known_ttl", DefaultKnownRepositoryTTL)
	return NewRepositoryCreator(NewECRRepositoryClients(awsCfg), RepositoryOptions{
		DefaultRegion: awsCfg.Region,
		TagMutability: rc.TagMutability,
		ScanOnPush:    rc.ScanOnPush,
		Logger:        logger,
		Registerer:    reg,
	}), nil
}

// NewServer wraps h in an http.Server with the timeouts and header limit authsvc
// needs behind nginx.
func NewServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Serve runs srv on ln until ctx ends, then shuts it down, waiting at most
// shutdownTimeout for requests in flight.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("shutdown: %w", err), srv.Close())
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve: %w", serr))
	}
	return err
}

// Listen listens on host:port, or on a unix socket for "unix:/path". A stale
// socket file left by a dead process is removed. The socket is made 0666:
// nginx's workers often run as another user than its master (nobody or
// www-data under a root master), and a socket open to every local user is no
// more exposed than the default TCP listener on 127.0.0.1. To restrict it, put
// it in a directory that only nginx's user can enter.
func Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		return ln, nil
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	if c, err := net.DialTimeout("unix", path, 500*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("another process is listening on %s", path)
	}
	return os.Remove(path)
}
