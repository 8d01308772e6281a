// Command ecr-emulator runs the local ECR stand-in for `make demo` and the
// compose demo: the ECR API, the registry front and the "S3" endpoint of
// package ecremu, in front of a docker-registry it starts itself unless
// -backend names one. -accounts adds accounts, each with its own front,
// "S3" and docker-registry. It prints the endpoints as KEY=value lines (and,
// with several accounts, the gateway's ECR_REGISTRIES) and runs until SIGINT
// or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ecr-emulator:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := loadConfig(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ecr-emulator-"); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		defer os.RemoveAll(dir)
	}

	// -ca-out is written once everything listens: the compose demo's health
	// check waits for it. One left by an earlier run must not pass for it.
	if cfg.CAOut != "" {
		if err := os.Remove(cfg.CAOut); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ca-out: %w", err)
		}
	}

	b, err := startBackends(ctx, cfg, dir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.stop()) }()

	emu, err := ecremu.Start(ctx, ecremu.Config{
		Backend:         b.urls[0],
		AccessKeyID:     cfg.AccessKey,
		SecretAccessKey: string(cfg.SecretKey),
		Region:          cfg.Region,
		AccountID:       cfg.Account,
		TokenSize:       cfg.TokenSize,
		TokenTTL:        cfg.TokenTTL,
		CreateOnPush:    cfg.CreateOnPush,
		S3Host:          cfg.S3Host,
		RegistryHost:    cfg.RegistryHost,
		CertHosts:       cfg.CertHosts,
		APIAddr:         cfg.APIAddr,
		RegistryAddr:    cfg.RegistryAddr,
		S3Addr:          cfg.S3Addr,
		Accounts:        emulatorAccounts(cfg, b),
		Logger:          log,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, emu.Close()) }()

	if err := createRepos(emu, cfg); err != nil {
		return err
	}
	if cfg.CAOut != "" {
		if err := emu.WriteCACert(cfg.CAOut); err != nil {
			return err
		}
	}
	printEndpoints(stdout, emu, cfg, b)

	<-ctx.Done()
	log.Info("ecr emulator stopping")
	return nil
}
