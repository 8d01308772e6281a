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
	LDAPGroupMemberAttribute string `envconfig:"LDAP_GROUP_MEMBER_ATTRIBUTE" default:"member"`
	LDAPDialTimeout          string `envconfig:"LDAP_DIAL_TIMEOUT" default:"5s"`
	LDAPTimeout              string `envconfig:"LDAP_TIMEOUT" default:"10s"`
	ListenAddr               string `envconfig:"AUTH_LISTEN_ADDR" default:"127.0.0.1:9000"`
	Realm                    string `envconfig:"AUTH_REALM" default:"aws-ecr-ldap"`
	LogLevel                 string `envconfig:"LOG_LEVEL" default:"info"`
}

// Config is authsvc's configuration. Each field names its environment variable.
type Config struct {
	LDAPURL                  string        // LDAP_URL, RFC 4516 (required)
	LDAPBindDN               string        // LDAP_BIND_DN, the service account
	LDAPBindPassword         Secret        // LDAP_BIND_PASSWORD
	LDAPBindPasswordFile     string        // LDAP_BIND_PASSWORD_FILE, read once at start
	LDAPRequireGroup         string        // LDAP_REQUIRE_GROUP, a group DN
	LDAPGroupMemberAttribute string        // LDAP_GROUP_MEMBER_ATTRIBUTE: member, uniqueMember or memberUid
	LDAPDialTimeout          time.Duration // LDAP_DIAL_TIMEOUT, each connect
	LDAPTimeout              time.Duration // LDAP_TIMEOUT, one whole authentication
	ListenAddr               string        // AUTH_LISTEN_ADDR: host:port or unix:/path
	Realm                    string        // AUTH_REALM, in the Basic challenge
	LogLevel                 string        // LOG_LEVEL: debug, info, warn or error

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
	} else if _, err := ldapauth.ParseURL(c.LDAPURL); err != nil {
		add("LDAP_URL", "%v", err)
	}

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
	if c.LDAPRequireGroup != "" {
		if _, err := ldap.ParseDN(c.LDAPRequireGroup); err != nil {
			add("LDAP_REQUIRE_GROUP", "not a DN: %v", err)
		}
	}
	switch strings.ToLower(c.LDAPGroupMemberAttribute) {
	case "member", "uniquemember", "memberuid":
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
func (c Config) LDAPConfig() (ldapauth.Config, error) {
	u, err := ldapauth.ParseURL(c.LDAPURL)
	if err != nil {
		return ldapauth.Config{}, problem{"LDAP_URL", err.Error()}
	}
	return ldapauth.Config{
		URL:                  u,
		BindDN:               c.LDAPBindDN,
		BindPassword:         c.LDAPBindPassword.Reveal(),
		RequireGroup:         c.LDAPRequireGroup,
		GroupMemberAttribute: c.LDAPGroupMemberAttribute,
		DialTimeout:          c.LDAPDialTimeout,
		Timeout:              c.LDAPTimeout,
	}, nil
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
