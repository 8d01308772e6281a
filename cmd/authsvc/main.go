// Command authsvc is the gateway's nginx auth_request endpoint: it checks Basic
// credentials against LDAP. It is configured by environment variables; see
// package authsvc.
//
//	authsvc               serve
//	authsvc -healthcheck  exit 0 if the authsvc at AUTH_LISTEN_ADDR is alive
//	authsvc -version      print the version
//	authsvc check [-password-stdin] [-repo name] [username]
//	                      check the LDAP configuration, every server, the policy
//	                      file, and a user (with -repo: the policy's decisions there)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/toanc/aws-ecr-ldap/authsvc"
	"github.com/toanc/aws-ecr-ldap/internal/logjson"
)

var version = "dev"

func main() {
	healthcheck := flag.Bool("healthcheck", false, "check the running authsvc at AUTH_LISTEN_ADDR and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `usage:
  authsvc                      serve nginx's auth_request (configured by LDAP_*, AUTH_* variables)
  authsvc check [-password-stdin] [-repo name] [username]
                               check the configuration, every LDAP server, a user and the policy
  authsvc -healthcheck         exit 0 if the authsvc at AUTH_LISTEN_ADDR is alive
  authsvc -version             print the version

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	switch {
	case *healthcheck:
		err = check(ctx)
	case flag.Arg(0) == "check":
		err = checkLDAP(ctx, flag.Args()[1:])
	case flag.NArg() > 0:
		err = fmt.Errorf("unknown command %q (want check, or no command to serve)", flag.Arg(0))
	default:
		err = run(ctx)
	}
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "authsvc: %v\n", err)
		os.Exit(1)
	}
}

// gcPercent is authsvc's garbage collection target unless GOGC is set. Its
// heap is small (the credential cache holds at most AUTH_CACHE_SIZE entries of
// a few hundred bytes), and net/http allocates on every request: collecting
// less often is the cheapest throughput there is (BENCHMARKS.md).
const gcPercent = 400

func run(ctx context.Context) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	cfg, err := authsvc.LoadConfig()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	// One decision line per request: batched into few writes (every line is
	// out within logjson.FlushInterval, and all of them when authsvc stops).
	out := logjson.NewBufferedWriter(os.Stderr)
	defer out.Close()
	logger := logjson.New(out, cfg.Level()).With("version", version)
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

// checkLDAP is `authsvc check`; see authsvc.Check.
func checkLDAP(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	passwordStdin := fs.Bool("password-stdin", false, "read the user's password from the first line of stdin and try the login")
	repo := fs.String("repo", "", "with a username and AUTH_POLICY_FILE: show the decision for pull, push and delete on this repository")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: authsvc check [-password-stdin] [-repo name] [username]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("check: want at most one username, got %q", fs.Args())
	}
	opts := authsvc.CheckOptions{Username: fs.Arg(0), TryPassword: *passwordStdin, Repository: *repo}
	if opts.Repository != "" && opts.Username == "" {
		return errors.New("check: -repo needs a username")
	}
	if opts.TryPassword {
		if opts.Username == "" {
			return errors.New("check: -password-stdin needs a username")
		}
		pw, err := authsvc.ReadPassword(os.Stdin)
		if err != nil {
			return err
		}
		opts.Password = pw
	}
	cfg, err := authsvc.LoadConfig()
	if err != nil {
		fmt.Printf("configuration: FAILED\n%v\n", err)
		return errors.New("invalid configuration")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Level()}))
	return authsvc.Check(ctx, cfg, opts, os.Stdout, logger)
}
