// Command ecr-emulator runs the local ECR stand-in for `make demo` and the
// compose demo: the ECR API, the registry front and the "S3" endpoint of
// package ecremu, in front of a docker-registry it starts itself unless
// -backend names one. It prints the endpoints as KEY=value lines and runs
// until SIGINT or SIGTERM.
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
	"path/filepath"
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

	backend := cfg.Backend
	if backend == "" {
		reg, err := ecremu.StartRegistry(ctx, filepath.Join(dir, "registry"))
		if err != nil {
			return err
		}
		defer reg.Stop()
		backend = reg.URL()
	}

	emu, err := ecremu.Start(ctx, ecremu.Config{
		Backend:         backend,
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
		Logger:          log,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, emu.Close()) }()

	for _, repo := range cfg.Repos {
		if err := emu.CreateRepository(repo); err != nil {
			return err
		}
	}
	if cfg.CAOut != "" {
		if err := emu.WriteCACert(cfg.CAOut); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "AWS_ENDPOINT_URL_ECR=%s\nECR_REGISTRY_HOST=%s\nECR_EMULATOR_S3_URL=%s\nECR_EMULATOR_BACKEND=%s\n",
		emu.APIURL(), emu.RegistryHost(), emu.S3URL(), backend)

	<-ctx.Done()
	log.Info("ecr emulator stopping")
	return nil
}
