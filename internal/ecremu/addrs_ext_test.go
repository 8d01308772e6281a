package ecremu_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

// freeAddr returns a loopback address no one listens on at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestFixedAddresses: with listen addresses, a registry host and certificate
// names given, as in the compose demo, clients find the front by that name,
// its certificate verifies for it and for every extra name, and blob
// downloads are redirected to the S3 host and port given (a published port).
func TestFixedAddresses(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK) // every blob exists
	}))
	t.Cleanup(backend.Close)
	apiAddr, frontAddr, s3Addr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, frontPort, _ := net.SplitHostPort(frontAddr)
	e := startEmulator(t, ecremu.Config{
		Backend:      backend.URL,
		APIAddr:      apiAddr,
		RegistryAddr: frontAddr,
		S3Addr:       s3Addr,
		RegistryHost: "demo-ecr.test",
		CertHosts:    []string{"ecr.example.test", "10.9.8.7"},
		S3Host:       "s3.example.test:5002",
	})
	if err := e.CreateRepository("team/app"); err != nil {
		t.Fatal(err)
	}

	if got, want := e.APIURL(), "http://"+apiAddr; got != want {
		t.Errorf("APIURL got %q; want %q", got, want)
	}
	if got, want := e.RegistryHost(), "demo-ecr.test:"+frontPort; got != want {
		t.Errorf("RegistryHost got %q; want %q", got, want)
	}
	out, err := ecrClient(t, e, testAccessKey, testSecret, testRegion).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.AuthorizationData[0].ProxyEndpoint), "https://demo-ecr.test:"+frontPort; got != want {
		t.Errorf("proxyEndpoint got %q; want %q", got, want)
	}

	// The front listens on frontAddr; its certificate names the registry
	// host, the extra names, and still localhost, and nothing else.
	for _, tt := range []struct {
		serverName string
		ok         bool
	}{
		{"demo-ecr.test", true},
		{"ecr.example.test", true},
		{"10.9.8.7", true},
		{"localhost", true},
		{"other.test", false},
	} {
		t.Run(tt.serverName, func(t *testing.T) {
			conn, err := tls.Dial("tcp", frontAddr, &tls.Config{RootCAs: e.CA().CertPool(), ServerName: tt.serverName})
			if err == nil {
				conn.Close()
			}
			if (err == nil) != tt.ok {
				t.Errorf("TLS to %s as %q: got %v; want ok %v", frontAddr, tt.serverName, err, tt.ok)
			}
		})
	}

	_, password, _ := decodeToken(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+frontAddr+"/v2/team/app/blobs/sha256:"+strings.Repeat("a", 64), nil)
	req.Header.Set("Authorization", basic("AWS", password))
	client := frontClient(e)
	client.Transport.(*http.Transport).TLSClientConfig.ServerName = "demo-ecr.test"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusTemporaryRedirect || loc.Scheme != "http" || loc.Host != "s3.example.test:5002" {
		t.Fatalf("blob download got %d Location %q; want 307 to http://s3.example.test:5002/...", resp.StatusCode, loc)
	}
	if got := e.S3URL(); got != "http://s3.example.test:5002" {
		t.Errorf("S3URL got %q; want http://s3.example.test:5002", got)
	}
	// The S3 listener is where S3Addr says; the redirect's own port is only
	// where clients reach it (a published port).
	s3, err := http.Get("http://" + s3Addr + loc.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	s3.Body.Close()
	if s3.StatusCode != http.StatusOK {
		t.Errorf("GET the redirect on %s: got %d; want 200", s3Addr, s3.StatusCode)
	}
	if total, _ := e.S3Requests(); total != 1 {
		t.Errorf("S3Requests got %d; want 1", total)
	}
}

func TestConfigValidateAddresses(t *testing.T) {
	base := ecremu.Config{Backend: "http://127.0.0.1:5000", AccessKeyID: "a", SecretAccessKey: "s"}
	for _, tt := range []struct {
		name string
		edit func(*ecremu.Config)
		want string
	}{
		{"S3Host with a path", func(c *ecremu.Config) { c.S3Host = "localhost/x" }, "S3Host"},
		{"RegistryHost bad port", func(c *ecremu.Config) { c.RegistryHost = "demo-ecr:99999" }, "RegistryHost"},
		{"APIAddr without port", func(c *ecremu.Config) { c.APIAddr = "0.0.0.0" }, "APIAddr"},
		{"RegistryAddr bad port", func(c *ecremu.Config) { c.RegistryAddr = ":https" }, "RegistryAddr"},
		{"S3Addr", func(c *ecremu.Config) { c.S3Addr = "nope" }, "S3Addr"},
		{"CertHosts", func(c *ecremu.Config) { c.CertHosts = []string{"demo-ecr:5443"} }, "CertHosts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want a problem naming %s", err, tt.want)
			}
		})
	}
	if err := base.Validate(); err != nil {
		t.Errorf("valid config: got %v", err)
	}
}
