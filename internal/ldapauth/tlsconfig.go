package ldapauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSOptions are the TLS settings of the environment (LDAP_CA_FILE,
// LDAP_CLIENT_CERT_FILE, LDAP_CLIENT_KEY_FILE, LDAP_INSECURE_SKIP_VERIFY).
type TLSOptions struct {
	CAFile             string // PEM bundle trusted instead of the system roots; "" keeps the system roots
	CertFile, KeyFile  string // client certificate, both or neither
	InsecureSkipVerify bool   // accept any server certificate; New logs a warning
}

// NewTLSConfig builds the client TLS configuration: TLS 1.2 at least, the CA
// bundle if given, the client certificate if given. ServerName is left empty:
// each server gets its URL's host.
func NewTLSConfig(o TLSOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificate found", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case o.CertFile != "" || o.KeyFile != "":
		return nil, errors.New("client certificate and key must be set together")
	}
	return cfg, nil
}
