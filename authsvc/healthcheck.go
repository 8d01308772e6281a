package authsvc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// DefaultListenAddr is AUTH_LISTEN_ADDR's default.
const DefaultListenAddr = "127.0.0.1:9000"

// HealthCheck asks the authsvc listening on listenAddr (AUTH_LISTEN_ADDR
// syntax: host:port or unix:/path) for /healthz. It is what a container
// health check (`authsvc -healthcheck`) and the native runner use; it touches
// nothing but the process itself.
func HealthCheck(ctx context.Context, listenAddr string) error {
	transport := &http.Transport{DisableKeepAlives: true}
	url := "http://authsvc/healthz"
	if path, ok := strings.CutPrefix(listenAddr, "unix:"); ok {
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	} else {
		host, port, err := net.SplitHostPort(listenAddr)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		switch host { // a wildcard listener answers on loopback
		case "", "0.0.0.0":
			host = "127.0.0.1"
		case "::":
			host = "::1"
		}
		url = "http://" + net.JoinHostPort(host, port) + "/healthz"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s", resp.Status)
	}
	return nil
}
