// Command demo runs the whole gateway on loopback with no AWS account and no
// directory of your own: a throwaway OpenLDAP with sample users, Debian's
// docker-registry behind the project's ECR emulator, and the gateway itself
// (nginx, authsvc, tokenwriter) exactly as `make run` starts it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
	"github.com/toanc/aws-ecr-ldap/internal/gateway"
	"github.com/toanc/aws-ecr-ldap/internal/slapd"
	"github.com/toanc/aws-ecr-ldap/internal/testpki"
)

const usage = `usage: demo

Runs the whole gateway on loopback with no AWS account and no directory of your
own: a throwaway OpenLDAP with sample users, Debian's docker-registry behind the
project's ECR emulator, and the gateway (nginx, authsvc, tokenwriter) as
make run starts it. Stop it with Ctrl-C; it removes everything it made.

Environment: DEMO_HTTP_ADDR (default 127.0.0.1:5080), DEMO_HTTPS_ADDR (default
127.0.0.1:5443).
`

func main() {
	flag.Usage = func() { fmt.Fprint(flag.CommandLine.Output(), usage) }
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	httpAddr := env("DEMO_HTTP_ADDR", "127.0.0.1:5080")
	httpsAddr := env("DEMO_HTTPS_ADDR", "127.0.0.1:5443")
	for _, a := range []string{httpAddr, httpsAddr} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s is taken; set DEMO_HTTP_ADDR / DEMO_HTTPS_ADDR to free addresses: %w", a, err)
		}
		l.Close()
	}
	dir, err := os.MkdirTemp("", "aws-ecr-ldap-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	ldap, err := slapd.Start(ctx, slapd.Options{Dir: filepath.Join(dir, "ldap")})
	if err != nil {
		return fmt.Errorf("slapd: %w", err)
	}
	defer ldap.Stop()
	reg, err := ecremu.StartRegistry(ctx, filepath.Join(dir, "registry"))
	if err != nil {
		return fmt.Errorf("docker-registry: %w", err)
	}
	defer reg.Stop()
	ca, err := testpki.NewCA("aws-ecr-ldap demo")
	if err != nil {
		return err
	}
	const accessKey, secretKey, region = "AKIDDEMO", "demo-secret", "us-east-1"
	emu, err := ecremu.Start(ctx, ecremu.Config{
		Backend: reg.URL(), AccessKeyID: accessKey, SecretAccessKey: secretKey,
		Region: region, AccountID: "123456789012", CA: ca, CreateOnPush: true, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("ECR emulator: %w", err)
	}
	defer emu.Close()
	tlsFiles, err := ca.WriteFiles(filepath.Join(dir, "tls"), "gateway", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	sample := filepath.Join(dir, "sample-image")
	if err := writeSampleImage(sample); err != nil {
		return err
	}

	// The gateway reads its configuration from the environment, as in
	// production; these are the values an ops engineer would set.
	for k, v := range map[string]string{
		"LDAP_URL":                  ldap.URL() + slapd.SearchPath,
		"LDAP_BIND_DN":              slapd.ServiceDN,
		"LDAP_BIND_PASSWORD":        slapd.ServicePassword,
		"LDAP_REQUIRE_GROUP":        slapd.GroupRegistryUsers,
		"AUTH_REALM":                "aws-ecr-ldap demo",
		"AUTH_LISTEN_ADDR":          freeAddr(),
		"AWS_REGION":                region,
		"AWS_ACCESS_KEY_ID":         accessKey,
		"AWS_SECRET_ACCESS_KEY":     secretKey,
		"AWS_ENDPOINT_URL_ECR":      emu.APIURL(),
		"AWS_EC2_METADATA_DISABLED": "true",
		"GATEWAY_HTTP_ADDR":         httpAddr,
		"GATEWAY_HTTPS_ADDR":        httpsAddr,
		"TLS_CERT_FILE":             tlsFiles.Cert,
		"TLS_KEY_FILE":              tlsFiles.Key,
		"ECR_CA_FILE":               tlsFiles.CA,
		"GATEWAY_RUN_DIR":           filepath.Join(dir, "run"),
	} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_KEY", "AWS_SECRET", "REGION", "ECR_REGISTRY_ID", "ECR_REGISTRY_HOST"} {
		os.Unsetenv(k)
	}
	cfg, err := gateway.LoadAll()
	if err != nil {
		return err
	}
	go announce(ctx, httpAddr, httpsAddr, tlsFiles.CA, sample, ldap.URL()+slapd.SearchPath, emu.APIURL())
	return gateway.Run(ctx, cfg, logger)
}

// writeSampleImage leaves a small OCI image on disk, so the demo can be tried
// with skopeo on a machine without Docker.
func writeSampleImage(dir string) error {
	img, err := random.Image(512<<10, 2)
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img)
}

func announce(ctx context.Context, httpAddr, httpsAddr, caFile, sample, ldapURL, ecrAPI string) {
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)
	fmt.Printf(`
aws-ecr-ldap demo is running. Stop it with Ctrl-C.

  registry (plain HTTP): %[1]s
  registry (HTTPS):      localhost:%[2]s   CA: %[3]s

LDAP users (password) — the gateway requires group registry-users:
  alice  (alice-secret)   member
  bob    (p@ss:wörd)      member
  carol  (carol-secret)   not a member: 403

With Docker (127.0.0.0/8 is an insecure registry Docker accepts over HTTP):
  docker login %[1]s -u alice            # password: alice-secret
  docker tag busybox %[1]s/team-a/hello:1
  docker push %[1]s/team-a/hello:1
  docker pull %[1]s/team-a/hello:1

Without Docker (skopeo, a sample image on disk):
  skopeo copy --dest-creds alice:alice-secret --dest-tls-verify=false \
      oci:%[4]s docker://%[1]s/team-a/hello:1
  skopeo inspect --creds alice:alice-secret --tls-verify=false docker://%[1]s/team-a/hello:1
  curl -i http://%[1]s/v2/                           # 401: a password is required
  curl -i -u carol:carol-secret http://%[1]s/v2/     # 403: not in the group

The demo's ECR emulator creates a missing repository on the first push (like an
ECR creation template with CREATE_ON_PUSH); real ECR answers NAME_UNKNOWN unless
you have such a template or set AUTH_CREATE_REPOSITORIES=true.

To run a second gateway of your own against this directory and emulator, in
another shell:
  export LDAP_URL='%[5]s'
  export LDAP_BIND_DN='%[6]s' LDAP_BIND_PASSWORD='%[7]s'
  export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDDEMO AWS_SECRET_ACCESS_KEY=demo-secret
  export AWS_ENDPOINT_URL_ECR=%[8]s ECR_CA_FILE=%[3]s
  export GATEWAY_RUN_DIR=/tmp/my-gateway GATEWAY_HTTP_ADDR=127.0.0.1:7080 AUTH_LISTEN_ADDR=127.0.0.1:7090
  make run

`, httpAddr, httpsPort, caFile, sample, ldapURL, slapd.ServiceDN, slapd.ServicePassword, ecrAPI)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:9000"
	}
	defer l.Close()
	return l.Addr().String()
}
