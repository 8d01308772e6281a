package tokenwriter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// ErrTokenRejected reports that the registry refused the token in place
// (expired early, revoked, or its credentials withdrawn).
var ErrTokenRejected = errors.New("registry rejected the ecr token")

// probeTimeout bounds one probe request.
const probeTimeout = 5 * time.Second

// prober tells whether the registry accepts a token.
type prober interface {
	Probe(ctx context.Context, tok Token) error
}

// registryProber sends GET /v2/ to the token's registry with the token, as
// nginx would. /v2/ needs no right beyond a valid token, so a 401 or 403 there
// can only mean the token itself is refused: ErrTokenRejected. Any other
// failure (network, 5xx) says nothing about the token and is returned as is.
type registryProber struct {
	client *http.Client
}

var _ prober = registryProber{}

// newRegistryProber verifies the registry with the PEM bundle in caFile, or
// with the system roots when caFile is empty.
func newRegistryProber(caFile string) (registryProber, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return registryProber{}, fmt.Errorf("ECR_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return registryProber{}, fmt.Errorf("ECR_CA_FILE: no certificate in %s", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	return registryProber{client: &http.Client{
		Timeout: probeTimeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: probeTimeout}).DialContext,
			TLSClientConfig:     tlsCfg,
			TLSHandshakeTimeout: probeTimeout,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     time.Minute,
		},
		// A redirect would carry the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Probe implements prober.
func (p registryProber) Probe(ctx context.Context, tok Token) error {
	host := net.JoinHostPort(tok.Host, tok.Port)
	url := "https://" + host + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if tok.Port == "443" {
		req.Host = tok.Host // as nginx names it in $ecr_registry_host
	}
	req.Header.Set("Authorization", "Basic "+string(tok.Value))
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: GET /v2/ answered %d", ErrTokenRejected, resp.StatusCode)
	default:
		return fmt.Errorf("probe %s: status %d", url, resp.StatusCode)
	}
}
