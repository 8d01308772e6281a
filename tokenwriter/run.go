package tokenwriter

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// onceDeadline bounds `tokenwriter -once`, retries included.
const onceDeadline = 2 * time.Minute

// Run keeps the include current until ctx is done: the refresh loop, the
// registry probe and, with TOKENWRITER_LISTEN_ADDR, the health and metrics server.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	r, err := fromConfig(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if cfg.ProbeInterval > 0 {
		p, err := newRegistryProber(cfg.ECRCAFile)
		if err != nil {
			return err
		}
		r.probe = p
	}
	r.seed()
	g, ctx := errgroup.WithContext(ctx)
	if cfg.ListenAddr != "" {
		reg := prometheus.NewRegistry()
		if err := r.RegisterMetrics(reg); err != nil {
			return err
		}
		srv := newServer(r, reg)
		g.Go(func() error { return srv.serve(ctx, cfg.ListenAddr, logger) })
	}
	g.Go(func() error { return r.ProbeLoop(ctx) })
	g.Go(func() error { return r.Loop(ctx) })
	return g.Wait()
}

// Once writes one fresh token, retrying for up to two minutes. nginx is
// reloaded only if it is running: at start-up -once runs before nginx does.
func Once(ctx context.Context, cfg Config, logger *slog.Logger) error {
	r, err := fromConfig(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if r.reloader != nil {
		r.reloader = skipIfStopped{next: r.reloader, log: logger}
	}
	return r.Once(ctx, onceDeadline)
}

func fromConfig(ctx context.Context, cfg Config, logger *slog.Logger) (*Refresher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	awsCfg, err := loadAWSConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := NewRefresher(ecr.NewFromConfig(awsCfg), reloaderFor(cfg, logger), cfg, logger)
	r.creds = awsCfg.Credentials
	// One client per region; the SDK still honours AWS_ENDPOINT_URL_ECR.
	r.clients = map[string]ecrAPI{}
	for _, reg := range r.registries {
		if _, ok := r.clients[reg.Region]; !ok && reg.Region != cfg.region() {
			region := reg.Region
			r.clients[region] = ecr.NewFromConfig(awsCfg, func(o *ecr.Options) { o.Region = region })
		}
	}
	return r, nil
}

// NewECRClient returns an ECR client for cfg's region, with AWS_KEY/AWS_SECRET
// as static credentials when set and the SDK's default chain otherwise. The
// SDK itself honours AWS_ENDPOINT_URL_ECR.
func NewECRClient(ctx context.Context, cfg Config) (*ecr.Client, error) {
	awsCfg, err := loadAWSConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return ecr.NewFromConfig(awsCfg), nil
}

// loadAWSConfig renews expiring credentials (STS sessions, web identity, IRSA)
// TOKEN_EXPIRY_MARGIN before they run out, so that the refresh the schedule
// places inside that margin mints its token with fresh credentials, not with
// the ones about to lapse.
func loadAWSConfig(ctx context.Context, cfg Config) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.region()),
		config.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = cfg.ExpiryMargin
		}),
	}
	if cfg.AWSKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AWSKey, string(cfg.AWSSecret), "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	return awsCfg, nil
}

func reloaderFor(cfg Config, logger *slog.Logger) Reloader {
	if cfg.NginxPIDFile == "" && cfg.NginxReloadCommand == "" {
		logger.Warn("nginx will not be reloaded: set NGINX_PID_FILE or NGINX_RELOAD_COMMAND")
		return nil
	}
	return NginxReloader{PIDFile: cfg.NginxPIDFile, Command: strings.Fields(cfg.NginxReloadCommand)}
}
