// Command tokenwriter keeps nginx's ECR token include current; see package tokenwriter.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/toanc/aws-ecr-ldap/internal/logjson"
	"github.com/toanc/aws-ecr-ldap/tokenwriter"
)

var version = "dev"

func main() {
	once := flag.Bool("once", false, "write one fresh token, reload nginx if it runs, and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *once)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokenwriter:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, once bool) error {
	cfg, err := tokenwriter.Load()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	logger := logjson.New(os.Stderr, cfg.LogLevel).With("version", version)
	if once {
		return tokenwriter.Once(ctx, cfg, logger)
	}
	return tokenwriter.Run(ctx, cfg, logger)
}
