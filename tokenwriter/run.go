package tokenwriter

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

// onceDeadline bounds `tokenwriter -once`, retries included.
const onceDeadline = 2 * time.Minute

// Run keeps the include current until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	r, err := fromConfig(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return r.Loop(ctx)
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
	client, err := NewECRClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return NewRefresher(client, reloaderFor(cfg, logger), cfg, logger), nil
}

// NewECRClient returns an ECR client for cfg's region, with AWS_KEY/AWS_SECRET
// as static credentials when set and the SDK's default chain otherwise. The
// SDK itself honours AWS_ENDPOINT_URL_ECR.
func NewECRClient(ctx context.Context, cfg Config) (*ecr.Client, error) {
	opts := []func(*config.LoadOptions) error{config.WithRegion(cfg.region())}
	if cfg.AWSKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AWSKey, string(cfg.AWSSecret), "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return ecr.NewFromConfig(awsCfg), nil
}

func reloaderFor(cfg Config, logger *slog.Logger) Reloader {
	if cfg.NginxPIDFile == "" && cfg.NginxReloadCommand == "" {
		logger.Warn("nginx will not be reloaded: set NGINX_PID_FILE or NGINX_RELOAD_COMMAND")
		return nil
	}
	return NginxReloader{PIDFile: cfg.NginxPIDFile, Command: strings.Fields(cfg.NginxReloadCommand)}
}
