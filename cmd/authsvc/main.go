// Command authsvc is the gateway's nginx auth_request endpoint: it checks Basic
// credentials against LDAP. It is configured by environment variables; see
// package authsvc.
//
//	authsvc               serve
//	authsvc -healthcheck  exit 0 if the authsvc at AUTH_LISTEN_ADDR is alive
//	authsvc -version      print the version
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/toanc/aws-ecr-ldap/authsvc"
)

var version = "dev"

func main() {
	healthcheck := flag.Bool("healthcheck", false, "check the running authsvc at AUTH_LISTEN_ADDR and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if *healthcheck {
		err = check(ctx)
	} else {
		err = run(ctx)
	}
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "authsvc: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := authsvc.LoadConfig()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Level()})).With("version", version)
	return authsvc.Run(ctx, cfg, logger)
}

func check(ctx context.Context) error {
	addr := os.Getenv("AUTH_LISTEN_ADDR")
	if addr == "" {
		addr = authsvc.DefaultListenAddr
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return authsvc.HealthCheck(ctx, addr)
}
