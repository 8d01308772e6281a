package authsvc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/kelseyhightower/envconfig"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

// env is the environment as envconfig reads it. Every field is a string so that a
// bad duration is reported together with every other problem instead of stopping
// envconfig at the first one. The defaults live here and only here.
type env struct {
	LDAPURL                  string `envconfig:"LDAP_URL"`
	LDAPBindDN               string `envconfig:"LDAP_BIND_DN"`
	LDAPBindPassword         string `envconfig:"LDAP_BIND_PASSWORD"`
	LDAPBindPasswordFile     string `envconfig:"LDAP_BIND_PASSWORD_FILE"`
	LDAPRequireGroup         string `envconfig:"LDAP_REQUIRE_GROUP"`
	LDAPGroupMemberAttribute string `envconfig:"LDAP_GROUP_MEMBER_ATTRIBUTE"` // no default: unset means the preset's
	LDAPDialTimeout          string `envconfig:"LDAP_DIAL_TIMEOUT" default:"5s"`
	LDAPTimeout              string `envconfig:"LDAP_TIMEOUT" default:"10s"`
	ListenAddr               string `envconfig:"AUTH_LISTEN_ADDR" default:"127.0.0.1:9000"`
	Realm                    string `envconfig:"AUTH_REALM" default:"aws-ecr-ldap"`
	LogLevel                 string `envconfig:"LOG_LEVEL" default:"info"`
}

// Config is authsvc's configuration. Each field names its environment variable.
type Config struct {
	LDAPURL                  string           // LDAP_URL, RFC 4516, several separated by spaces (required)
	LDAPBindDN               string           // LDAP_BIND_DN, the service account
	LDAPBindPassword         Secret           // LDAP_BIND_PASSWORD
	LDAPBindPasswordFile     string           // LDAP_BIND_PASSWORD_FILE, read once at start
	LDAPRequireGroup         string           // LDAP_REQUIRE_GROUP, group DNs separated by ';' (any of them)
	LDAPGroupMemberAttribute string           // LDAP_GROUP_MEMBER_ATTRIBUTE: member, uniqueMember or memberUid; "" the preset's (member)
	LDAPDialTimeout          time.Duration    // LDAP_DIAL_TIMEOUT, each connect
	LDAPTimeout              time.Duration    // LDAP_TIMEOUT, one whole authentication
	ListenAddr               string           // AUTH_LISTEN_ADDR: host:port or unix:/path
	Realm                    string           // AUTH_REALM, in the Basic challenge
	LogLevel                 string           // LOG_LEVEL: debug, info, warn or error
	Directory                LDAPDirectory    // LDAP_PRESET, LDAP_*TLS*, LDAP_POOL_*, LDAP_GROUP_*, ...: see LDAPDirectory
	Service                  ServiceConfig    // AUTH_CACHE_*, AUTH_GRACE_PERIOD, AUTH_MAX_FAILURES*, AUTH_METRICS_ADDR: config_service.go
	Policy                   PolicyConfig     // AUTH_POLICY_FILE, AUTH_POLICY_POLL: config_policy.go
	Repositories             RepositoryConfig // AUTH_CREATE_REPOSITOR*, AWS_*: create-on-push, config_repos.go

	passwordFromFile bool // LDAPBindPassword was read from LDAPBindPasswordFile
}

// problem is one configuration error about one variable.
type problem struct {
	name string // the environment variable
	msg  string
}

func (p problem) Error() string { return p.name + ": " + p.msg }

// LoadConfig reads the environment, checks it and reads the bind password file.
// The error lists every problem, one per line, each naming its variable.
func LoadConfig() (Config, error) {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		return Config{}, fmt.Errorf("read environment: %w", err)
	}
	applyDefaultsToEmpty(&e)
	cfg := Config{
		LDAPURL:                  e.LDAPURL,
		LDAPBindDN:               e.LDAPBindDN,
		LDAPBindPassword:         Secret(e.LDAPBindPassword),
		LDAPBindPasswordFile:     e.LDAPBindPasswordFile,
		LDAPRequireGroup:         e.LDAPRequireGroup,
		LDAPGroupMemberAttribute: e.LDAPGroupMemberAttribute,
		ListenAddr:               e.ListenAddr,
		Realm:                    e.Realm,
		LogLevel:                 e.LogLevel,
	}
	var errs []error
	failed := map[string]bool{}
	for _, d := range []struct {
		name, value string
		dst         *time.Duration
	}{
		{"LDAP_DIAL_TIMEOUT", e.LDAPDialTimeout, &cfg.LDAPDialTimeout},
		{"LDAP_TIMEOUT", e.LDAPTimeout, &cfg.LDAPTimeout},
	} {
		v, err := time.ParseDuration(d.value)
		if err != nil {
			errs = append(errs, problem{d.name, fmt.Sprintf("not a duration such as 5s or 1m30s, got %q", d.value)})
			failed[d.name] = true
			continue
		}
		*d.dst = v
	}
	errs = append(errs, cfg.Directory.load(failed)...)
	errs = append(errs, cfg.Service.load(failed)...)
	errs = append(errs, cfg.Policy.load(failed)...)
	errs = append(errs, cfg.Repositories.load(failed)...)
	for _, p := range cfg.problems() {
		if !failed[p.name] {
			errs = append(errs, p)
		}
	}
	if len(errs) == 0 && cfg.LDAPBindPasswordFile != "" {
		if err := cfg.readPasswordFile(); err != nil {
			errs = append(errs, err)
		}
	}
	return cfg, errors.Join(errs...)
}

func (c *Config) readPasswordFile() error {
	b, err := os.ReadFile(c.LDAPBindPasswordFile)
	if err != nil {
		return problem{"LDAP_BIND_PASSWORD_FILE", err.Error()}
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return problem{"LDAP_BIND_PASSWORD_FILE", fmt.Sprintf("%s is empty (an empty-password bind is anonymous)", c.LDAPBindPasswordFile)}
	}
	c.LDAPBindPassword, c.passwordFromFile = Secret(pw), true
	return nil
}

// Validate reports every problem in c at once, each naming its variable. It does
// not read the password file; LoadConfig does.
func (c Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

func (c Config) problems() []problem {
	var ps []problem
	add := func(name, format string, args ...any) {
		ps = append(ps, problem{name, fmt.Sprintf(format, args...)})
	}

	if c.LDAPURL == "" {
		add("LDAP_URL", "required, e.g. ldap://ldap.corp:389/ou=people,dc=corp,dc=com?uid?sub?(objectClass=inetOrgPerson)")
	} else if _, err := ldapauth.ParseURLs(c.LDAPURL); err != nil {
		add("LDAP_URL", "%v", err)
	}
	ps = append(ps, c.Directory.problems(c)...)

	hasPassword := c.LDAPBindPassword != "" && !c.passwordFromFile
	hasFile := c.LDAPBindPasswordFile != ""
	switch {
	case hasPassword && hasFile:
		add("LDAP_BIND_PASSWORD", "set either LDAP_BIND_PASSWORD or LDAP_BIND_PASSWORD_FILE, not both")
	case c.LDAPBindDN != "" && !hasPassword && !hasFile:
		add("LDAP_BIND_PASSWORD", "required when LDAP_BIND_DN is set (or set LDAP_BIND_PASSWORD_FILE)")
	case c.LDAPBindDN == "" && (hasPassword || hasFile):
		add("LDAP_BIND_DN", "required when a bind password is set")
	}
	if c.LDAPBindDN != "" {
		if _, err := ldap.ParseDN(c.LDAPBindDN); err != nil {
			add("LDAP_BIND_DN", "not a DN: %v", err)
		}
	}
	var badGroups []string
	for _, g := range RequiredGroups(c.LDAPRequireGroup) {
		if _, err := ldap.ParseDN(g); err != nil {
			badGroups = append(badGroups, fmt.Sprintf("%q: %v", g, err))
		}
	}
	if len(badGroups) > 0 {
		add("LDAP_REQUIRE_GROUP", "not a DN (separate several with ';'): %s", strings.Join(badGroups, "; "))
	}
	switch strings.ToLower(c.LDAPGroupMemberAttribute) {
	case "", "member", "uniquemember", "memberuid":
	default:
		add("LDAP_GROUP_MEMBER_ATTRIBUTE", "must be member, uniqueMember or memberUid, got %q", c.LDAPGroupMemberAttribute)
	}
	if c.LDAPDialTimeout <= 0 {
		add("LDAP_DIAL_TIMEOUT", "must be positive, got %s", c.LDAPDialTimeout)
	}
	if c.LDAPTimeout <= 0 {
		add("LDAP_TIMEOUT", "must be positive, got %s", c.LDAPTimeout)
	}
	if err := checkListenAddr(c.ListenAddr); err != nil {
		add("AUTH_LISTEN_ADDR", "%v", err)
	}
	if c.Realm == "" || strings.ContainsFunc(c.Realm, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' }) {
		add("AUTH_REALM", "must be non-empty printable ASCII without quotes or backslashes, got %q", c.Realm)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		add("LOG_LEVEL", "%v", err)
	}
	ps = append(ps, c.Service.problems()...)
	ps = append(ps, c.Policy.problems(c)...)
	ps = append(ps, c.Repositories.problems()...)
	return ps
}

func checkListenAddr(addr string) error {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("unix socket path must be absolute, got %q", addr)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port or unix:/path, got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port must be a number from 0 to 65535, got %q", port)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("must be debug, info, warn or error, got %q", s)
}

// Level is LogLevel as a slog level (info if LogLevel is not valid).
func (c Config) Level() slog.Level {
	l, err := parseLevel(c.LogLevel)
	if err != nil {
		return slog.LevelInfo
	}
	return l
}

// LDAPConfig turns c into the LDAP client's configuration.
// It reads the TLS files. Metrics is left nil for the caller to set.
func (c Config) LDAPConfig() (ldapauth.Config, error) {
	urls, err := ldapauth.ParseURLs(c.LDAPURL)
	if err != nil {
		return ldapauth.Config{}, problem{"LDAP_URL", err.Error()}
	}
	d := c.Directory
	preset, err := ldapauth.ParsePreset(d.Preset)
	if err != nil {
		return ldapauth.Config{}, problem{"LDAP_PRESET", err.Error()}
	}
	membership, err := ldapauth.ParseMembership(d.GroupMembership)
	if err != nil {
		return ldapauth.Config{}, problem{"LDAP_GROUP_MEMBERSHIP", err.Error()}
	}
	tlsCfg, err := ldapauth.NewTLSConfig(ldapauth.TLSOptions{CAFile: d.CAFile, CertFile: d.ClientCertFile,
		KeyFile: d.ClientKeyFile, InsecureSkipVerify: d.InsecureSkipVerify})
	if err != nil {
		return ldapauth.Config{}, problem{"LDAP_CA_FILE", err.Error()}
	}
	return ldapauth.Config{
		URLs:                 urls,
		URL:                  urls[0],
		BindDN:               c.LDAPBindDN,
		BindPassword:         c.LDAPBindPassword.Reveal(),
		Preset:               preset,
		RequireGroups:        RequiredGroups(c.LDAPRequireGroup),
		GroupBaseDN:          d.GroupBase,
		GroupFilter:          d.GroupFilter,
		GroupMemberAttribute: c.LDAPGroupMemberAttribute,
		GroupMembership:      membership,
		NestedGroups:         d.NestedGroups,
		ADDomain:             d.ADDomain,
		DialTimeout:          c.LDAPDialTimeout,
		Timeout:              c.LDAPTimeout,
		StartTLS:             d.StartTLS,
		TLSConfig:            tlsCfg,
		PoolSize:             d.PoolSize,
		PoolIdleTimeout:      d.PoolIdleTimeout,
	}, nil
}

// RequiredGroups splits LDAP_REQUIRE_GROUP: DNs separated by ';' (DNs contain
// commas), surrounding spaces trimmed, empty items dropped.
func RequiredGroups(s string) []string {
	var out []string
	for _, g := range strings.Split(s, ";") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// LDAPDirectory holds the LDAP variables of several servers, TLS, the
// connection pool, groups and presets. Zero values mean ldapauth's defaults.
type LDAPDirectory struct {
	Preset             string        // LDAP_PRESET: activedirectory, okta or openldap
	StartTLS           bool          // LDAP_START_TLS: upgrade ldap:// URLs, never fall back
	CAFile             string        // LDAP_CA_FILE: PEM bundle, instead of the system roots
	ClientCertFile     string        // LDAP_CLIENT_CERT_FILE
	ClientKeyFile      string        // LDAP_CLIENT_KEY_FILE
	InsecureSkipVerify bool          // LDAP_INSECURE_SKIP_VERIFY: logged as a warning
	PoolSize           int           // LDAP_POOL_SIZE: default 8 per pool
	PoolIdleTimeout    time.Duration // LDAP_POOL_IDLE_TIMEOUT: default 1m
	GroupBase          string        // LDAP_GROUP_BASE: default the LDAP_URL base DN
	GroupFilter        string        // LDAP_GROUP_FILTER: default (objectClass=*)
	GroupMembership    string        // LDAP_GROUP_MEMBERSHIP: entries (default) or memberof
	NestedGroups       bool          // LDAP_NESTED_GROUPS
	ADDomain           string        // LDAP_AD_DOMAIN: the only domain accepted in DOMAIN\user
}

type directoryEnv struct {
	Preset             string `envconfig:"LDAP_PRESET"`
	StartTLS           string `envconfig:"LDAP_START_TLS"`
	CAFile             string `envconfig:"LDAP_CA_FILE"`
	ClientCertFile     string `envconfig:"LDAP_CLIENT_CERT_FILE"`
	ClientKeyFile      string `envconfig:"LDAP_CLIENT_KEY_FILE"`
	InsecureSkipVerify string `envconfig:"LDAP_INSECURE_SKIP_VERIFY"`
	PoolSize           string `envconfig:"LDAP_POOL_SIZE"`
	PoolIdleTimeout    string `envconfig:"LDAP_POOL_IDLE_TIMEOUT"`
	GroupBase          string `envconfig:"LDAP_GROUP_BASE"`
	GroupFilter        string `envconfig:"LDAP_GROUP_FILTER"`
	GroupMembership    string `envconfig:"LDAP_GROUP_MEMBERSHIP"`
	NestedGroups       string `envconfig:"LDAP_NESTED_GROUPS"`
	ADDomain           string `envconfig:"LDAP_AD_DOMAIN"`
}

// load reads the directory variables; values that do not parse are reported
// and marked failed so that problems() does not report them twice.
func (d *LDAPDirectory) load(failed map[string]bool) []error {
	var e directoryEnv
	if err := envconfig.Process("", &e); err != nil {
		return []error{fmt.Errorf("read environment: %w", err)}
	}
	*d = LDAPDirectory{Preset: e.Preset, CAFile: e.CAFile, ClientCertFile: e.ClientCertFile,
		ClientKeyFile: e.ClientKeyFile, GroupBase: e.GroupBase, GroupFilter: e.GroupFilter,
		GroupMembership: e.GroupMembership, ADDomain: e.ADDomain}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, problem{name, fmt.Sprintf(format, args...)})
		failed[name] = true
	}
	for _, b := range []struct {
		name, value string
		dst         *bool
	}{
		{"LDAP_START_TLS", e.StartTLS, &d.StartTLS},
		{"LDAP_INSECURE_SKIP_VERIFY", e.InsecureSkipVerify, &d.InsecureSkipVerify},
		{"LDAP_NESTED_GROUPS", e.NestedGroups, &d.NestedGroups},
	} {
		if b.value == "" {
			continue
		}
		v, err := strconv.ParseBool(b.value)
		if err != nil {
			bad(b.name, "must be true or false, got %q", b.value)
			continue
		}
		*b.dst = v
	}
	if e.PoolSize != "" {
		n, err := strconv.Atoi(e.PoolSize)
		if err != nil {
			bad("LDAP_POOL_SIZE", "not a number, got %q", e.PoolSize)
		}
		d.PoolSize = n
	}
	if e.PoolIdleTimeout != "" {
		v, err := time.ParseDuration(e.PoolIdleTimeout)
		if err != nil {
			bad("LDAP_POOL_IDLE_TIMEOUT", "not a duration such as 30s or 5m, got %q", e.PoolIdleTimeout)
		}
		d.PoolIdleTimeout = v
	}
	return errs
}

func (d LDAPDirectory) problems(c Config) []problem {
	var ps []problem
	add := func(name, format string, args ...any) {
		ps = append(ps, problem{name, fmt.Sprintf(format, args...)})
	}
	preset, err := ldapauth.ParsePreset(d.Preset)
	if err != nil {
		add("LDAP_PRESET", "%v", err)
	}
	if d.ADDomain != "" && err == nil && preset != ldapauth.PresetActiveDirectory {
		add("LDAP_AD_DOMAIN", "needs LDAP_PRESET=activedirectory")
	}
	if urls, err := ldapauth.ParseURLs(c.LDAPURL); err == nil && d.StartTLS && allLDAPS(urls) {
		add("LDAP_START_TLS", "contradicts ldaps:// in LDAP_URL: ldaps:// is TLS from the first byte, StartTLS upgrades ldap://; use one of them")
	}
	if d.CAFile != "" {
		if _, err := ldapauth.NewTLSConfig(ldapauth.TLSOptions{CAFile: d.CAFile}); err != nil {
			add("LDAP_CA_FILE", "%v", err)
		}
	}
	switch {
	case d.ClientCertFile != "" && d.ClientKeyFile == "":
		add("LDAP_CLIENT_KEY_FILE", "required with LDAP_CLIENT_CERT_FILE")
	case d.ClientCertFile == "" && d.ClientKeyFile != "":
		add("LDAP_CLIENT_CERT_FILE", "required with LDAP_CLIENT_KEY_FILE")
	case d.ClientCertFile != "":
		if _, err := ldapauth.NewTLSConfig(ldapauth.TLSOptions{CertFile: d.ClientCertFile, KeyFile: d.ClientKeyFile}); err != nil {
			add("LDAP_CLIENT_CERT_FILE", "%v", err)
		}
	}
	if d.PoolSize < 0 || d.PoolSize > 1000 {
		add("LDAP_POOL_SIZE", "must be from 1 to 1000 (0 or unset: 8), got %d", d.PoolSize)
	}
	if d.PoolIdleTimeout < 0 {
		add("LDAP_POOL_IDLE_TIMEOUT", "must not be negative, got %s", d.PoolIdleTimeout)
	}
	if d.GroupBase != "" {
		if _, err := ldap.ParseDN(d.GroupBase); err != nil {
			add("LDAP_GROUP_BASE", "not a DN: %v", err)
		}
	}
	if f := d.GroupFilter; f != "" {
		if !strings.HasPrefix(f, "(") {
			f = "(" + f + ")"
		}
		if _, err := ldap.CompileFilter(f); err != nil {
			add("LDAP_GROUP_FILTER", "%v", err)
		}
	}
	if _, err := ldapauth.ParseMembership(d.GroupMembership); err != nil {
		add("LDAP_GROUP_MEMBERSHIP", "%v", err)
	}
	if d.NestedGroups && strings.EqualFold(c.LDAPGroupMemberAttribute, "memberUid") && preset == ldapauth.PresetActiveDirectory {
		add("LDAP_NESTED_GROUPS", "Active Directory nesting needs LDAP_GROUP_MEMBER_ATTRIBUTE=member")
	}
	return ps
}

func allLDAPS(urls []*ldapauth.URL) bool {
	for _, u := range urls {
		if u.Scheme != "ldaps" {
			return false
		}
	}
	return true
}

// applyDefaultsToEmpty gives a variable that is set but empty its default, as if
// unset: compose files often pass VAR: ${VAR:-}, and envconfig keeps "" then.
func applyDefaultsToEmpty(e *env) {
	v := reflect.ValueOf(e).Elem()
	for i := range v.NumField() {
		if def, ok := v.Type().Field(i).Tag.Lookup("default"); ok && v.Field(i).String() == "" {
			v.Field(i).SetString(def)
		}
	}
}
