// Command gateway runs nginx, authsvc and tokenwriter natively, in the
// foreground, until SIGINT or SIGTERM (make run).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/toanc/aws-ecr-ldap/internal/gateway"
	"github.com/toanc/aws-ecr-ldap/internal/logjson"
)

var version = "dev"

const usage = `usage: gateway

Runs nginx (from PATH), authsvc and tokenwriter in the foreground until SIGINT or
SIGTERM, and stops all of them when any one exits. Configured by the environment:
GATEWAY_HTTP_ADDR and/or GATEWAY_HTTPS_ADDR with TLS_CERT_FILE and TLS_KEY_FILE,
GATEWAY_RUN_DIR (default .run), ECR_CA_FILE, plus every authsvc (LDAP_*, AUTH_*)
and tokenwriter (AWS_*, ECR_*, TOKEN_*) variable; see README.md. It sets
TOKEN_FILE, NGINX_TEST_COMMAND and NGINX_PID_FILE for tokenwriter itself.

Flags:
`

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), usage)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := gateway.LoadAll()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := logjson.New(os.Stderr, slog.LevelInfo).With("component", "gateway", "version", version)
	return gateway.Run(ctx, cfg, logger)
}
