package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/kelseyhightower/envconfig"

	"github.com/toanc/aws-ecr-ldap/authsvc"
	"github.com/toanc/aws-ecr-ldap/tokenwriter"
)

// Config is the native runner's configuration. authsvc and tokenwriter read
// their own variables from the same environment.
type Config struct {
	HTTPAddr    string `envconfig:"GATEWAY_HTTP_ADDR"`
	HTTPSAddr   string `envconfig:"GATEWAY_HTTPS_ADDR"`
	TLSCertFile string `envconfig:"TLS_CERT_FILE"`
	TLSKeyFile  string `envconfig:"TLS_KEY_FILE"`
	RunDir      string `envconfig:"GATEWAY_RUN_DIR" default:".run"`
	// NginxConf is the hand-edited nginx.conf copied into the run directory.
	NginxConf string `envconfig:"GATEWAY_NGINX_CONF" default:"nginx/nginx.conf"`
	// BinDir holds authsvc and tokenwriter; empty means next to this
	// executable, then PATH.
	BinDir         string `envconfig:"GATEWAY_BIN_DIR"`
	AuthListenAddr string `envconfig:"AUTH_LISTEN_ADDR" default:"127.0.0.1:9000"`
	// ECRCAFile verifies ECR's certificate (proxy_ssl_trusted_certificate).
	ECRCAFile string `envconfig:"ECR_CA_FILE" default:"/etc/ssl/certs/ca-certificates.crt"`
}

// LoadAll reads and validates the runner's configuration and, before anything
// starts, authsvc's and tokenwriter's from the same environment, so that every
// problem of all three is reported at once.
func LoadAll() (Config, error) {
	c, err := LoadConfig()
	_, authErr := authsvc.LoadConfig()
	_, tokenErr := tokenwriter.Load()
	return c, errors.Join(err, authErr, tokenErr)
}

// LoadConfig reads the environment and validates it.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports every problem at once, each naming its variable.
func (c Config) Validate() error {
	var errs []error
	if c.HTTPAddr == "" && c.HTTPSAddr == "" {
		errs = append(errs, errors.New("GATEWAY_HTTP_ADDR or GATEWAY_HTTPS_ADDR: at least one listener is required"))
	}
	for _, v := range []struct{ name, addr string }{{"GATEWAY_HTTP_ADDR", c.HTTPAddr}, {"GATEWAY_HTTPS_ADDR", c.HTTPSAddr}} {
		if v.addr == "" {
			continue
		}
		if host, _, err := net.SplitHostPort(v.addr); err != nil || host == "" {
			errs = append(errs, fmt.Errorf("%s: want host:port (0.0.0.0:443 for every address), got %q", v.name, v.addr))
		}
	}
	if c.HTTPSAddr != "" {
		certErr, keyErr := readable("TLS_CERT_FILE", c.TLSCertFile), readable("TLS_KEY_FILE", c.TLSKeyFile)
		errs = append(errs, certErr, keyErr)
		if certErr == nil && keyErr == nil {
			if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
				errs = append(errs, fmt.Errorf("TLS_CERT_FILE, TLS_KEY_FILE: not a matching PEM certificate and key: %w", err))
			}
		}
	}
	errs = append(errs, readable("GATEWAY_NGINX_CONF", c.NginxConf))
	if err := readable("ECR_CA_FILE", c.ECRCAFile); err != nil {
		errs = append(errs, err)
	} else if pem, _ := os.ReadFile(c.ECRCAFile); !x509.NewCertPool().AppendCertsFromPEM(pem) {
		errs = append(errs, fmt.Errorf("ECR_CA_FILE: %s holds no PEM certificate", c.ECRCAFile))
	}
	if _, err := authUpstream(c.AuthListenAddr); err != nil {
		errs = append(errs, fmt.Errorf("AUTH_LISTEN_ADDR: %w", err))
	}
	if strings.TrimSpace(c.RunDir) == "" {
		errs = append(errs, errors.New("GATEWAY_RUN_DIR: must not be empty"))
	}
	return errors.Join(errs...)
}

func readable(name, path string) error {
	if path == "" {
		return fmt.Errorf("%s: required", name)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	f.Close()
	return nil
}

// authUpstream turns authsvc's listen address into the address nginx dials.
func authUpstream(listen string) (string, error) {
	if path, ok := strings.CutPrefix(listen, "unix:"); ok {
		if path == "" {
			return "", errors.New("empty unix socket path")
		}
		return "unix:" + path, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("want host:port or unix:/path, got %q", listen)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}
