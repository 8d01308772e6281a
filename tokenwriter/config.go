package tokenwriter

import (
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config is tokenwriter's configuration, read from the environment by Load.
type Config struct {
	// AWSRegion is the region of the ECR API; Region is the old image's name for
	// it and is used only when AWS_REGION is unset.
	AWSRegion string `envconfig:"AWS_REGION"`
	Region    string `envconfig:"REGION"`
	// AWSKey and AWSSecret are the old image's static credentials. When they are
	// unset the SDK's default chain is used: environment, shared config and
	// profiles, web identity, ECS, EC2 (IMDSv2).
	AWSKey    string `envconfig:"AWS_KEY"`
	AWSSecret Secret `envconfig:"AWS_SECRET"`

	// RegistryID is sent as registryIds and picks among several authorizationData entries.
	RegistryID string `envconfig:"ECR_REGISTRY_ID"`
	// RegistryHost (host[:port]) overrides the host of the proxyEndpoint ECR returns.
	RegistryHost string `envconfig:"ECR_REGISTRY_HOST"`
	// Registries (ECR_REGISTRIES) fronts several registries, chosen by the
	// gateway host name: see Routes and the package documentation. It
	// excludes ECR_REGISTRY_ID and ECR_REGISTRY_HOST.
	Registries string `envconfig:"ECR_REGISTRIES"`

	TokenFile     string   `envconfig:"TOKEN_FILE" default:"/etc/nginx/ecr/ecr.conf"`
	TokenFileMode FileMode `envconfig:"TOKEN_FILE_MODE" default:"0600"`

	RefreshInterval time.Duration `envconfig:"TOKEN_REFRESH_INTERVAL" default:"6h"`
	// ExpiryMargin: refresh when the token has less than this left.
	ExpiryMargin time.Duration `envconfig:"TOKEN_EXPIRY_MARGIN" default:"1h"`
	RetryMin     time.Duration `envconfig:"TOKEN_RETRY_MIN" default:"5s"`
	RetryMax     time.Duration `envconfig:"TOKEN_RETRY_MAX" default:"5m"`
	CallTimeout  time.Duration `envconfig:"AWS_CALL_TIMEOUT" default:"30s"`

	// NginxTestCommand is split with strings.Fields; it must fail on a bad include.
	NginxTestCommand string `envconfig:"NGINX_TEST_COMMAND" default:"nginx -t -q"`
	// NginxPIDFile: nginx is reloaded by SIGHUP to the pid in it, and counts as
	// running only while that process exists.
	NginxPIDFile string `envconfig:"NGINX_PID_FILE"`
	// NginxReloadCommand (e.g. "nginx -s reload") reloads nginx instead of SIGHUP.
	NginxReloadCommand string `envconfig:"NGINX_RELOAD_COMMAND"`

	// ListenAddr serves /healthz, /readyz and /metrics; empty: no server.
	ListenAddr string `envconfig:"TOKENWRITER_LISTEN_ADDR"`
	// ReadyMargin: /readyz fails when the token in place has less than this left.
	ReadyMargin time.Duration `envconfig:"TOKEN_READY_MARGIN" default:"30m"`
	// ProbeInterval: how often the token in place is tried on the registry's
	// /v2/; a rejected token is replaced at once. 0 turns the probe off.
	ProbeInterval time.Duration `envconfig:"TOKEN_PROBE_INTERVAL" default:"10s"`
	// RejectedRefreshGap is the least time between two refreshes that a
	// rejected token starts, so a registry that rejects every token is not hammered.
	RejectedRefreshGap time.Duration `envconfig:"TOKEN_REJECTED_REFRESH_GAP" default:"10s"`
	// ECRCAFile verifies the registry for the probe; empty: the system roots.
	// The gateway runner's variable of the same name gives nginx the same bundle.
	ECRCAFile string `envconfig:"ECR_CA_FILE"`

	LogLevel slog.Level `envconfig:"LOG_LEVEL" default:"info"`
}

// Load reads the Config from the environment and validates it.
func Load() (Config, error) {
	// envconfig stops at the first value it cannot parse; check them all first so
	// that every bad variable is named at once.
	if err := parseProblems(os.LookupEnv); err != nil {
		// ECR_REGISTRIES is a string: it always parses, and is the variable
		// most likely to be wrong next to a mistyped duration.
		c := Config{Registries: os.Getenv("ECR_REGISTRIES"), AWSRegion: os.Getenv("AWS_REGION"), Region: os.Getenv("REGION")}
		if _, _, _, rerr := c.Routes(); rerr != nil {
			err = errors.Join(err, rerr) // names ECR_REGISTRIES itself
		}
		return Config{}, err
	}
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

var registryIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// Validate reports every problem in c at once, each naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.region() == "" {
		bad("AWS_REGION: required (or REGION)")
	}
	if c.AWSKey != "" && c.AWSSecret == "" {
		bad("AWS_SECRET: required when AWS_KEY is set")
	}
	if c.AWSKey == "" && c.AWSSecret != "" {
		bad("AWS_KEY: required when AWS_SECRET is set")
	}
	if c.RegistryID != "" && !registryIDPattern.MatchString(c.RegistryID) {
		bad("ECR_REGISTRY_ID: must be a 12-digit account id, got %q", c.RegistryID)
	}
	if c.RegistryHost != "" {
		if _, _, err := parseHostPort(c.RegistryHost); err != nil {
			bad("ECR_REGISTRY_HOST: %w", err)
		}
	}
	if strings.TrimSpace(c.Registries) != "" {
		var both []string
		if c.RegistryID != "" {
			both = append(both, "ECR_REGISTRY_ID")
		}
		if c.RegistryHost != "" {
			both = append(both, "ECR_REGISTRY_HOST")
		}
		if len(both) > 0 {
			bad("ECR_REGISTRIES: cannot be set together with %s: name the account (and @host) in ECR_REGISTRIES", strings.Join(both, " or "))
		} else if _, _, _, err := c.Routes(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.TokenFile == "" {
		bad("TOKEN_FILE: required")
	}
	if c.TokenFileMode > 0o777 {
		bad("TOKEN_FILE_MODE: must be at most 0777, got %#o", uint32(c.TokenFileMode))
	}
	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{"TOKEN_REFRESH_INTERVAL", c.RefreshInterval},
		{"TOKEN_RETRY_MIN", c.RetryMin},
		{"TOKEN_RETRY_MAX", c.RetryMax},
		{"AWS_CALL_TIMEOUT", c.CallTimeout},
	} {
		if d.val <= 0 {
			bad("%s: must be positive, got %s", d.name, d.val)
		}
	}
	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{"TOKEN_READY_MARGIN", c.ReadyMargin},
		{"TOKEN_PROBE_INTERVAL", c.ProbeInterval},
		{"TOKEN_REJECTED_REFRESH_GAP", c.RejectedRefreshGap},
	} {
		if d.val < 0 {
			bad("%s: must not be negative, got %s", d.name, d.val)
		}
	}
	if c.ListenAddr != "" {
		if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
			bad("TOKENWRITER_LISTEN_ADDR: want host:port, got %q", c.ListenAddr)
		}
	}
	if c.ExpiryMargin < 0 {
		bad("TOKEN_EXPIRY_MARGIN: must not be negative, got %s", c.ExpiryMargin)
	}
	if c.RetryMin > c.RetryMax {
		bad("TOKEN_RETRY_MIN: must not exceed TOKEN_RETRY_MAX (%s > %s)", c.RetryMin, c.RetryMax)
	}
	if len(strings.Fields(c.NginxTestCommand)) == 0 {
		bad("NGINX_TEST_COMMAND: required: the include must be checked before a reload")
	}
	return errors.Join(errs...)
}

func (c Config) region() string {
	if c.AWSRegion != "" {
		return c.AWSRegion
	}
	return c.Region
}

// FileMode is a file permission written in octal ("0600" or "600").
type FileMode uint32

// Decode implements envconfig.Decoder.
func (m *FileMode) Decode(s string) error {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return fmt.Errorf("want an octal mode such as 0600, got %q", s)
	}
	*m = FileMode(v)
	return nil
}

// parseProblems names every variable whose value cannot be parsed into its field.
func parseProblems(lookup func(string) (string, bool)) error {
	var errs []error
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		s, ok := lookup(name)
		if !ok {
			continue
		}
		if err := parseAs(f.Type, s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func parseAs(t reflect.Type, s string) error {
	if t == reflect.TypeFor[time.Duration]() {
		_, err := time.ParseDuration(s)
		return err
	}
	switch v := reflect.New(t).Interface().(type) {
	case envconfig.Decoder:
		return v.Decode(s)
	case encoding.TextUnmarshaler:
		return v.UnmarshalText([]byte(s))
	}
	return nil
}
