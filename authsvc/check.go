package authsvc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

// CheckOptions says what `authsvc check` looks at beyond the servers.
type CheckOptions struct {
	Username    string // look this user up; "" checks the servers only
	Password    Secret // tried with a bind when TryPassword is set
	TryPassword bool
}

// Check is `authsvc check`: what an ops engineer runs first when logins fail.
// It connects to every LDAP server in LDAP_URL and binds as the service
// account; given a username, it shows the entry found, the canonical name, the
// groups and whether they satisfy LDAP_REQUIRE_GROUP; given a password, it
// tries the login. The report goes to out; the error says how many steps
// failed. cfg must have been loaded by LoadConfig.
func Check(ctx context.Context, cfg Config, opts CheckOptions, out io.Writer, logger *slog.Logger) error {
	lc, err := cfg.LDAPConfig()
	if err != nil {
		fmt.Fprintf(out, "configuration: FAILED: %v\n", err)
		return err
	}
	client, err := ldapauth.New(lc, logger)
	if err != nil {
		fmt.Fprintf(out, "configuration: FAILED: %v\n", err)
		return err
	}
	defer client.Close()
	fmt.Fprintln(out, "configuration: ok")
	describe(out, cfg, client)

	failures := 0
	for _, p := range client.ProbeAll(ctx) {
		tls := p.TLS
		if tls == "" {
			tls = "no TLS"
		}
		if p.Err != nil {
			failures++
			fmt.Fprintf(out, "server %s: FAILED after %s: %v\n", p.URL, round(p.Elapsed), p.Err)
			continue
		}
		fmt.Fprintf(out, "server %s: ok (%s, service account bound, %s)\n", p.URL, tls, round(p.Elapsed))
	}

	if opts.Username != "" {
		failures += checkUser(ctx, out, client, opts)
	}
	if failures > 0 {
		fmt.Fprintf(out, "result: %d check(s) FAILED\n", failures)
		return fmt.Errorf("%d check(s) failed", failures)
	}
	fmt.Fprintln(out, "result: ok")
	return nil
}

func describe(out io.Writer, cfg Config, client *ldapauth.Client) {
	d := cfg.Directory
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(out, "  %-17s %s\n", k+":", v)
		}
	}
	line("preset", d.Preset)
	line("bind DN", cfg.LDAPBindDN)
	line("required groups", strings.Join(client.RequiredGroups(), " | "))
	line("group base", d.GroupBase)
	line("group filter", d.GroupFilter)
	line("member attribute", cfg.LDAPGroupMemberAttribute)
	line("membership", d.GroupMembership)
	if d.NestedGroups {
		line("nested groups", "yes")
	}
	if d.StartTLS {
		line("StartTLS", "yes")
	}
	if d.InsecureSkipVerify {
		line("TLS verification", "DISABLED (LDAP_INSECURE_SKIP_VERIFY)")
	}
	line("CA file", d.CAFile)
}

// checkUser reports on one user and returns the number of failed steps.
func checkUser(ctx context.Context, out io.Writer, client *ldapauth.Client, opts CheckOptions) int {
	id, err := client.Lookup(ctx, opts.Username)
	if err != nil {
		fmt.Fprintf(out, "user %q: FAILED: %s\n", opts.Username, explain(err))
		return 1
	}
	fmt.Fprintf(out, "user %q: found\n  DN:               %s\n  canonical name:   %s\n", opts.Username, id.DN, id.Name)
	if id.Groups == nil {
		fmt.Fprintln(out, "  groups:           not resolved (set LDAP_GROUP_BASE or LDAP_REQUIRE_GROUP)")
	} else {
		fmt.Fprintf(out, "  groups:           %d\n", len(id.Groups))
		for _, g := range id.Groups {
			fmt.Fprintf(out, "    %s\n", g)
		}
	}
	failures := 0
	if len(client.RequiredGroups()) > 0 {
		if err := client.CheckGroups(ctx, id); err != nil {
			failures++
			fmt.Fprintf(out, "required groups: FAILED: %s\n", explain(err))
		} else {
			fmt.Fprintln(out, "required groups: ok (member of at least one)")
		}
	}
	if opts.TryPassword {
		if _, err := client.Authenticate(ctx, opts.Username, opts.Password.Reveal()); err != nil {
			failures++
			fmt.Fprintf(out, "login with the password: FAILED: %s\n", explain(err))
		} else {
			fmt.Fprintln(out, "login with the password: ok (authsvc would answer 204)")
		}
	}
	return failures
}

// explain gives the answer authsvc would send along with the reason.
func explain(err error) string {
	switch {
	case errors.Is(err, ldapauth.ErrUnavailable):
		return "directory unavailable, authsvc would answer 503: " + err.Error()
	case errors.Is(err, ldapauth.ErrInvalidCredentials):
		return "authsvc would answer 401: " + err.Error()
	case errors.Is(err, ldapauth.ErrForbidden):
		return "authsvc would answer 403: " + err.Error()
	}
	return err.Error()
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// ReadPassword reads one line from r (for -password-stdin), without its line
// ending. An empty line is an error: an empty password is never sent.
func ReadPassword(r io.Reader) (Secret, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("read password: empty")
	}
	return Secret(line), nil
}
