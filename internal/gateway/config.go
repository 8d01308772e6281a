package gateway

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/kelseyhightower/envconfig"
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
		if _, _, err := net.SplitHostPort(v.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: want host:port, got %q", v.name, v.addr))
		}
	}
	if c.HTTPSAddr != "" {
		errs = append(errs, readable("TLS_CERT_FILE", c.TLSCertFile), readable("TLS_KEY_FILE", c.TLSKeyFile))
	}
	errs = append(errs, readable("GATEWAY_NGINX_CONF", c.NginxConf), readable("ECR_CA_FILE", c.ECRCAFile))
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
