package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

// envPrefix prefixes every environment variable; a flag overrides its variable.
const envPrefix = "ECR_EMULATOR"

// Config is the emulator's configuration. The demo credentials are public
// on purpose: the emulator guards nothing, and listens on loopback only
// unless told otherwise (in the compose demo, on its container's network).
type Config struct {
	Dir          string        `envconfig:"DIR"`                                 // state dir; empty: a temporary one, removed on exit
	Backend      string        `envconfig:"BACKEND"`                             // registry URL; empty: start docker-registry in Dir
	AccessKey    string        `envconfig:"ACCESS_KEY" default:"demo"`           // the only access key the API accepts
	SecretKey    secret        `envconfig:"SECRET_KEY" default:"demo-secret"`    // its secret
	Region       string        `envconfig:"REGION" default:"us-east-1"`          // SigV4 region
	Account      string        `envconfig:"ACCOUNT" default:"123456789012"`      // registry id
	Accounts     []string      `envconfig:"ACCOUNTS"`                            // more registry ids: id or id=registryAddr
	TokenSize    int           `envconfig:"TOKEN_SIZE" default:"6400"`           // base64 token length
	TokenTTL     time.Duration `envconfig:"TOKEN_TTL" default:"12h"`             // token lifetime
	CAOut        string        `envconfig:"CA_OUT"`                              // write the front's CA certificate here
	Repos        []string      `envconfig:"REPOS"`                               // repositories to create at start: [account:]name
	CreateOnPush bool          `envconfig:"CREATE_ON_PUSH" default:"false"`      // create repositories on first push
	S3Host       string        `envconfig:"S3_HOST" default:"localhost"`         // host[:port] in blob redirects
	RegistryHost string        `envconfig:"REGISTRY_HOST" default:"localhost"`   // host[:port] in proxyEndpoint
	CertHosts    []string      `envconfig:"CERT_HOSTS"`                          // more names for the front's certificate
	APIAddr      string        `envconfig:"API_ADDR" default:"127.0.0.1:0"`      // listen address of the ECR API
	RegistryAddr string        `envconfig:"REGISTRY_ADDR" default:"127.0.0.1:0"` // of the registry front
	S3Addr       string        `envconfig:"S3_ADDR" default:"127.0.0.1:0"`       // of the S3 endpoint
}

// listFlag is a repeatable, comma-separated flag: its first use replaces the
// environment's list, later ones add to it.
type listFlag struct {
	list *[]string
	set  bool
}

func (f *listFlag) String() string {
	if f.list == nil {
		return ""
	}
	return strings.Join(*f.list, ",")
}

func (f *listFlag) Set(v string) error {
	if !f.set {
		*f.list, f.set = nil, true
	}
	*f.list = append(*f.list, splitList(v)...)
	return nil
}

// secret keeps the secret key out of logs, usage text and %v.
type secret string

func (s secret) String() string { return "***" }

func (s *secret) Set(v string) error {
	*s = secret(v)
	return nil
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// loadConfig reads the environment, then lets args override it.
func loadConfig(args []string, usage io.Writer) (Config, error) {
	var c Config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		return Config{}, fmt.Errorf("environment: %w", err)
	}
	fs := flag.NewFlagSet("ecr-emulator", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.Dir, "dir", c.Dir, "state directory (env "+envPrefix+"_DIR; default: temporary, removed on exit)")
	fs.StringVar(&c.Backend, "backend", c.Backend, "URL of a running registry (env "+envPrefix+"_BACKEND; default: start docker-registry)")
	fs.StringVar(&c.AccessKey, "access-key", c.AccessKey, "accepted AWS access key id (env "+envPrefix+"_ACCESS_KEY)")
	fs.Var(&c.SecretKey, "secret-key", "its secret access key (env "+envPrefix+"_SECRET_KEY; default demo-secret)")
	fs.StringVar(&c.Region, "region", c.Region, "SigV4 region (env "+envPrefix+"_REGION)")
	fs.StringVar(&c.Account, "account", c.Account, "12-digit account / registry id (env "+envPrefix+"_ACCOUNT)")
	fs.Var(&listFlag{list: &c.Accounts}, "accounts", "more 12-digit accounts besides -account, each with its own registry front (named as -registry-host, on its own port) "+
		"and S3 on free loopback ports, its own repositories and its own docker-registry in <dir>/registry-<account> "+
		"(with -backend, all share that registry's storage); id=host:port pins the front's listen address; "+
		"repeatable or comma-separated (env "+envPrefix+"_ACCOUNTS)")
	fs.IntVar(&c.TokenSize, "token-size", c.TokenSize, "length of the base64 authorization token (env "+envPrefix+"_TOKEN_SIZE)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.TokenTTL, "token lifetime (env "+envPrefix+"_TOKEN_TTL)")
	fs.StringVar(&c.CAOut, "ca-out", c.CAOut, "write the registry front's CA certificate (PEM) to this path once every listener is up; "+
		"a file left there is removed at start (env "+envPrefix+"_CA_OUT)")
	fs.Func("repos", "comma-separated repositories to create in -account; <account>:<name> creates one in another of -account or -accounts (env "+envPrefix+"_REPOS)", func(v string) error {
		c.Repos = splitList(v)
		return nil
	})
	fs.BoolVar(&c.CreateOnPush, "create-on-push", c.CreateOnPush, "create missing repositories on push (env "+envPrefix+"_CREATE_ON_PUSH)")
	fs.StringVar(&c.S3Host, "s3-host", c.S3Host, "host or host:port in blob redirect URLs, where the client that follows them reaches -s3-addr; "+
		"without a port, -s3-addr's (env "+envPrefix+"_S3_HOST)")
	fs.StringVar(&c.RegistryHost, "registry-host", c.RegistryHost, "host or host:port of the registry front in proxyEndpoint, as the gateway reaches -registry-addr; "+
		"without a port, -registry-addr's; always in the front's certificate (env "+envPrefix+"_REGISTRY_HOST)")
	fs.Var(&listFlag{list: &c.CertHosts}, "cert-host", "more DNS names or IP addresses for the front's certificate, besides localhost, 127.0.0.1 and "+
		"-registry-host's; repeatable or comma-separated (env "+envPrefix+"_CERT_HOSTS)")
	fs.StringVar(&c.APIAddr, "api-addr", c.APIAddr, "listen address of the ECR API, host:port; port 0 picks a free one (env "+envPrefix+"_API_ADDR)")
	fs.StringVar(&c.RegistryAddr, "registry-addr", c.RegistryAddr, "listen address of the registry front (HTTPS) (env "+envPrefix+"_REGISTRY_ADDR)")
	fs.StringVar(&c.S3Addr, "s3-addr", c.S3Addr, "listen address of the S3 endpoint blob downloads are redirected to (env "+envPrefix+"_S3_ADDR)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.Repos = splitList(strings.Join(c.Repos, ","))
	c.CertHosts = splitList(strings.Join(c.CertHosts, ","))
	c.Accounts = splitList(strings.Join(c.Accounts, ","))
	return c, c.Validate()
}

// Validate reports every problem at once, naming the variable and flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s_%s (-%s): %s", envPrefix, name, flag, fmt.Sprintf(format, args...)))
	}
	if c.Backend != "" {
		if u, err := url.Parse(c.Backend); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("BACKEND", "backend", "want an http(s) URL, got %q", c.Backend)
		}
	}
	if c.AccessKey == "" {
		bad("ACCESS_KEY", "access-key", "required")
	}
	if c.SecretKey == "" {
		bad("SECRET_KEY", "secret-key", "required")
	}
	if c.Region == "" {
		bad("REGION", "region", "required")
	}
	if !accountRE.MatchString(c.Account) {
		hint := ""
		if strings.Contains(c.Account, ",") {
			hint = "; more accounts go in " + envPrefix + "_ACCOUNTS (-accounts)"
		}
		bad("ACCOUNT", "account", "want 12 digits, got %q%s", c.Account, hint)
	}
	seen := map[string]bool{c.Account: true}
	for _, entry := range c.Accounts {
		a := parseAccount(entry)
		switch {
		case !accountRE.MatchString(a.ID):
			bad("ACCOUNTS", "accounts", "want a 12-digit account id or id=host:port, got %q", entry)
		case a.ID == c.Account:
			bad("ACCOUNTS", "accounts", "account %s is "+envPrefix+"_ACCOUNT already", a.ID)
		case seen[a.ID]:
			bad("ACCOUNTS", "accounts", "account %s is listed twice", a.ID)
		}
		seen[a.ID] = true
		if a.pinned {
			if err := ecremu.CheckListenAddr(a.RegistryAddr); err != nil {
				bad("ACCOUNTS", "accounts", "%s: %v", entry, err)
			}
		}
	}
	for _, entry := range c.Repos {
		account, name, prefixed := splitRepo(entry)
		switch {
		case name == "" || (prefixed && !accountRE.MatchString(account)):
			bad("REPOS", "repos", "want <repository> or <account>:<repository>, got %q", entry)
		case prefixed && !seen[account]:
			bad("REPOS", "repos", "account %s in %q is neither "+envPrefix+"_ACCOUNT nor in "+envPrefix+"_ACCOUNTS", account, entry)
		}
	}
	if c.TokenSize < 0 {
		bad("TOKEN_SIZE", "token-size", "must not be negative, got %d", c.TokenSize)
	}
	if c.TokenTTL <= 0 {
		bad("TOKEN_TTL", "token-ttl", "must be positive, got %v", c.TokenTTL)
	}
	for _, h := range []struct{ name, flag, value string }{
		{"S3_HOST", "s3-host", c.S3Host},
		{"REGISTRY_HOST", "registry-host", c.RegistryHost},
	} {
		if _, _, err := ecremu.SplitHost(h.value); err != nil {
			bad(h.name, h.flag, "%v", err)
		}
	}
	// Every account's blob redirects would name the one port.
	if _, port, _ := ecremu.SplitHost(c.S3Host); port != "" && len(c.Accounts) > 0 {
		bad("S3_HOST", "s3-host", "give no port with %s_ACCOUNTS, got %q: each account has its own S3 port", envPrefix, c.S3Host)
	}
	for _, a := range []struct{ name, flag, value string }{
		{"API_ADDR", "api-addr", c.APIAddr},
		{"REGISTRY_ADDR", "registry-addr", c.RegistryAddr},
		{"S3_ADDR", "s3-addr", c.S3Addr},
	} {
		if err := ecremu.CheckListenAddr(a.value); err != nil {
			bad(a.name, a.flag, "%v", err)
		}
	}
	if err := ecremu.CheckCertHosts(c.CertHosts); err != nil {
		bad("CERT_HOSTS", "cert-host", "%v", err)
	}
	return errors.Join(errs...)
}

func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
