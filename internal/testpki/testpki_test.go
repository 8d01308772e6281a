package testpki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/testpki"
)

func TestIssuedCertificateVerifies(t *testing.T) {
	ca, err := testpki.NewCA("test ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("key pair: %v", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM block in certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("got key %T; want ECDSA P-256", cert.PublicKey)
	}
	if left := time.Until(cert.NotAfter); left > testpki.Validity || left < testpki.Validity-time.Minute {
		t.Errorf("got validity left %v; want about %v", left, testpki.Validity)
	}

	tests := []struct {
		name    string
		dnsName string
		wantErr bool
	}{
		{"dns name", "localhost", false},
		{"ip address", "127.0.0.1", false},
		{"other name", "example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cert.Verify(x509.VerifyOptions{
				DNSName:   tt.dnsName,
				Roots:     ca.CertPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("got error %v; want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestIssueWithoutNames(t *testing.T) {
	ca, err := testpki.NewCA("test ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Issue(nil, nil); !errors.Is(err, testpki.ErrNoNames) {
		t.Errorf("got %v; want ErrNoNames", err)
	}
}

func TestClientTrustsOnlyItsCA(t *testing.T) {
	ca, err := testpki.NewCA("test ca")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("other ca")
	if err != nil {
		t.Fatal(err)
	}
	srvConf, err := ca.ServerTLSConfig([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = srvConf
	srv.StartTLS()
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		conf    *tls.Config
		wantErr bool
	}{
		{"issuing ca", ca.ClientTLSConfig(), false},
		{"other ca", other.ClientTLSConfig(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: tt.conf}, Timeout: 5 * time.Second}
			resp, err := client.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("got error %v; want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestWriteFiles(t *testing.T) {
	ca, err := testpki.NewCA("test ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tls")
	files, err := ca.WriteFiles(dir, "server", []string{"localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(files.Cert, files.Key); err != nil {
		t.Errorf("load written pair: %v", err)
	}
	info, err := os.Stat(files.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("got key mode %v; want 0600", got)
	}
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	if string(caPEM) != string(ca.CertPEM()) {
		t.Error("got written CA different from CertPEM")
	}
	if got := filepath.Base(files.Cert); got != "server.crt" {
		t.Errorf("got cert file %q; want server.crt", got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("got leftover temp file %q", e.Name())
		}
	}
}
