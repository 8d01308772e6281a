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
	"github.com/toanc/aws-ecr-ldap/internal/policy"
	"github.com/toanc/aws-ecr-ldap/internal/regpath"
)

// CheckOptions says what `authsvc check` looks at beyond the servers.
type CheckOptions struct {
	Username    string // look this user up; "" checks the servers only
	Password    Secret // tried with a bind when TryPassword is set
	TryPassword bool
	// Repository, with Username and AUTH_POLICY_FILE, shows the policy's
	// decision for each action on it (-repo).
	Repository string
}

// Check is `authsvc check`: what an ops engineer runs first when logins fail.
// It connects to every LDAP server in LDAP_URL and binds as the service
// account; given a username, it shows the entry found, the canonical name, the
// groups and whether they satisfy LDAP_REQUIRE_GROUP; given a password, it
// tries the login. The report goes to out; the error says how many steps
// failed. With AUTH_POLICY_FILE it also shows the policy (LoadConfig has
// checked it) and, given a user, the user's actions rule by rule and, given a
// repository, the decision for each action there. cfg must have been loaded
// by LoadConfig.
func Check(ctx context.Context, cfg Config, opts CheckOptions, out io.Writer, logger *slog.Logger) error {
	if opts.Repository != "" && !regpath.ValidRepository(opts.Repository) {
		err := fmt.Errorf("-repo %q: not a valid repository name (lower case components joined by '/')", opts.Repository)
		fmt.Fprintf(out, "FAILED: %v\n", err)
		return err
	}
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
	pol, err := checkPolicy(out, cfg.Policy)
	if err != nil {
		return err
	}

	failures, answered := 0, 0
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
		answered++
		fmt.Fprintf(out, "server %s: ok (%s, service account bound, %s)\n", p.URL, tls, round(p.Elapsed))
	}

	switch {
	case opts.Username == "":
	case answered == 0:
		// Another round of dial timeouts would say nothing new.
		fmt.Fprintf(out, "user %q: skipped: no LDAP server answered\n", opts.Username)
	default:
		failures += checkUser(ctx, out, client, opts, pol)
	}
	if failures > 0 {
		fmt.Fprintf(out, "result: %d check(s) FAILED\n", failures)
		return fmt.Errorf("%d check(s) failed", failures)
	}
	fmt.Fprintln(out, "result: ok")
	return nil
}

// describe prints the settings as ldapauth uses them, presets and defaults
// applied, and the configuration's warnings.
func describe(out io.Writer, cfg Config, client *ldapauth.Client) {
	st := client.Settings()
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(out, "  %-17s %s\n", k+":", v)
		}
	}
	line("preset", string(st.Preset))
	line("bind DN", cfg.LDAPBindDN)
	line("user base", st.BaseDN+" (scope "+st.Scope+")")
	line("login attribute", st.LoginAttribute)
	line("user filter", st.UserFilter)
	line("required groups", strings.Join(st.RequiredGroups, " | "))
	if st.ResolveGroups {
		line("group base", st.GroupBase)
		line("group filter", st.GroupFilter)
		line("member attribute", st.MemberAttribute)
		line("membership", string(st.Membership))
		switch st.NestedGroups {
		case "":
			line("nested groups", "no")
		case ldapauth.NestedWalk:
			line("nested groups", fmt.Sprintf("walk, at most %d levels", st.NestedDepth))
		default:
			line("nested groups", string(st.NestedGroups)+" (Active Directory matching rule)")
		}
	} else {
		line("groups", "not resolved (set LDAP_GROUP_BASE or LDAP_REQUIRE_GROUP)")
	}
	line("TLS", st.TLS)
	if cfg.Directory.InsecureSkipVerify {
		line("TLS verification", "DISABLED (LDAP_INSECURE_SKIP_VERIFY)")
	}
	line("CA file", cfg.Directory.CAFile)
	line("timeouts", fmt.Sprintf("dial %s, whole request %s; a failed server is skipped for %s, doubling to 1m",
		st.DialTimeout, st.Timeout, st.Backoff))
	line("create on push", describeCreate(cfg.Repositories))
	for _, w := range st.Warnings {
		fmt.Fprintf(out, "WARNING: %s\n", w)
	}
}

// checkUser reports on one user and returns the number of failed steps.
func checkUser(ctx context.Context, out io.Writer, client *ldapauth.Client, opts CheckOptions, pol *policy.Policy) int {
	id, err := client.Lookup(ctx, opts.Username)
	if err != nil {
		fmt.Fprintf(out, "user %q: FAILED: %s\n", opts.Username, explain(err))
		return 1
	}
	fmt.Fprintf(out, "user %q: found\n  DN:               %s\n  canonical name:   %s\n", opts.Username, id.DN, id.Name)
	switch {
	case id.Groups == nil:
		fmt.Fprintln(out, "  groups:           not resolved (set LDAP_GROUP_BASE or LDAP_REQUIRE_GROUP)")
	case len(id.Groups) == 0:
		fmt.Fprintf(out, "  groups:           0 (resolved: in no group under %s)\n", client.Settings().GroupBase)
	default:
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
	if pol != nil {
		showPolicy(out, pol, policy.NewSubject(id), opts.Repository)
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

// checkPolicy reports the policy file; nil, nil without one.
func checkPolicy(out io.Writer, pc PolicyConfig) (*policy.Policy, error) {
	if pc.File == "" {
		fmt.Fprintln(out, "policy: none (AUTH_POLICY_FILE unset: every user LDAP accepts may pull, push and delete)")
		return nil, nil
	}
	p := pc.Loaded()
	if p == nil {
		var err error
		if p, err = policy.Load(pc.File); err != nil {
			fmt.Fprintf(out, "policy %s: FAILED\n%v\n", pc.File, err)
			return nil, err
		}
	}
	fmt.Fprintf(out, "policy %s: ok (%d rules, default: %s)\n", pc.File, len(p.Rules), p.Default)
	return p, nil
}

// showPolicy prints what s may do: the rules that include s, in order (the
// first of them whose repositories match a repository decides there), the
// default, the catalog, and with repo the decision for each action on it.
func showPolicy(out io.Writer, p *policy.Policy, s *policy.Subject, repo string) {
	fmt.Fprintf(out, "policy for %s (first matching rule wins):\n", s.Name)
	named := false
	for _, r := range p.Rules {
		if !r.Includes(s) {
			continue
		}
		named = true
		fmt.Fprintf(out, "  %-28s line %-4d %s on %s\n", ruleTitle(r)+":", r.Line, r.Actions, strings.Join(r.Repositories, ", "))
	}
	if !named {
		fmt.Fprintln(out, "  no rule names this user or their groups")
	}
	fmt.Fprintf(out, "  %-28s           %s on every other repository\n", "default:", p.Default)
	if v := p.Authorize(s, regpath.Request{Action: regpath.ActionCatalog}); v.Allowed {
		fmt.Fprintf(out, "  catalog: allowed by %s\n", v.Rule)
	} else {
		fmt.Fprintf(out, "  catalog: denied by %s\n", v.Rule)
	}
	if repo == "" {
		return
	}
	if !regpath.ValidRepository(repo) {
		fmt.Fprintf(out, "repository %q: not a valid repository name (lower case components joined by '/')\n", repo)
		return
	}
	fmt.Fprintf(out, "decisions on %s:\n", repo)
	for _, a := range []regpath.Action{regpath.ActionPull, regpath.ActionPush, regpath.ActionDelete} {
		v := p.Authorize(s, regpath.Request{Action: a, Repository: repo})
		if v.Allowed {
			fmt.Fprintf(out, "  %-7s allowed by %s\n", a+":", v.Rule)
		} else {
			fmt.Fprintf(out, "  %-7s denied by %s: %s\n", a+":", v.Rule, v.Reason)
		}
	}
}

func ruleTitle(r *policy.Rule) string {
	if r.Name == "" {
		return r.Label
	}
	return fmt.Sprintf("rule %d %q", r.Index, r.Name)
}

// describeCreate says what AUTH_CREATE_REPOSITORIES does with these settings.
func describeCreate(rc RepositoryConfig) string {
	if !rc.Create {
		return "off (AUTH_CREATE_REPOSITORIES)"
	}
	var parts []string
	if region := rc.DefaultRegion(); region != "" {
		parts = append(parts, "region "+region+" unless nginx names one")
	} else {
		parts = append(parts, "region from the AWS profile or EC2 metadata")
	}
	if rc.TagMutability != "" {
		parts = append(parts, "tags "+rc.TagMutability)
	}
	if rc.ScanOnPush != nil {
		parts = append(parts, fmt.Sprintf("scan on push %v", *rc.ScanOnPush))
	}
	return "on: " + strings.Join(parts, ", ")
}
