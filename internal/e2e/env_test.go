package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
	"github.com/toanc/aws-ecr-ldap/internal/slapd"
	"github.com/toanc/aws-ecr-ldap/internal/testpki"
)

// env is the one gateway under test and everything around it. Tests run in
// order, not in parallel: some stop LDAP or break the token file on purpose.
type env struct {
	dir      string
	ldap     *slapd.Server
	registry *ecremu.Registry
	// registryB backs account B, the second registry the gateway fronts (registries_test.go).
	registryB *ecremu.Registry
	emu       *ecremu.Emulator
	ca        *testpki.CA

	httpAddr, httpsAddr string
	tokenwriterAddr     string // tokenwriter's /healthz, /readyz, /metrics
	policyFile          string
	runDir              string
	gateway             *exec.Cmd
	gatewayDone         chan error
	gatewayLog          *os.File

	client *http.Client // trusts the test CA, does not follow redirects
}

const (
	awsAccessKey = "AKIDE2ETEST"
	awsSecretKey = "e2e-secret-key"
	awsRegion    = "eu-west-1"
	repoName     = "team-a/app"
)

var e *env

// e2ePolicy is the repository policy of the gateway under test: registry-users
// own team-a and may pull team-b; only the ops group may delete in team-a; no
// one may pull team-c.
const e2ePolicy = `default: []
rules:
  - name: ops delete in team-a
    repositories: ["team-a", "team-a/**"]
    actions: [pull, push, delete]
    groups: ["ops, registry"]
  - name: team-a developers
    repositories: ["team-a", "team-a/**"]
    actions: [pull, push]
    groups: [registry-users]
  - name: readers
    repositories: ["team-b/**"]
    actions: [pull]
    groups: ["` + slapd.GroupRegistryUsers + `"]
`

func TestMain(m *testing.M) {
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "aws-ecr-ldap-e2e-")
	if err != nil {
		return 0, err
	}
	// nginx's workers (another user under a root master) reach authsvc's
	// socket in here.
	if err := os.Chmod(dir, 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	e = &env{dir: dir}
	defer e.close()
	if err := e.start(); err != nil {
		if e.gatewayLog != nil {
			out, _ := os.ReadFile(e.gatewayLog.Name())
			fmt.Fprintf(os.Stderr, "gateway log:\n%s\n", tail(string(out), 6000))
		}
		return 0, err
	}
	code := m.Run()
	if code != 0 {
		out, _ := os.ReadFile(e.gatewayLog.Name())
		fmt.Fprintf(os.Stderr, "gateway log (tail):\n%s\n", tail(string(out), 8000))
	}
	return code, nil
}

func (e *env) start() error {
	ctx := context.Background()
	bin := filepath.Join(e.dir, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/authsvc", "./cmd/tokenwriter", "./cmd/gateway")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}

	var err error
	if e.ldap, err = slapd.Start(ctx, slapd.Options{Dir: mkdir(e.dir, "ldap")}); err != nil {
		return fmt.Errorf("slapd: %w", err)
	}
	if e.registry, err = ecremu.StartRegistry(ctx, mkdir(e.dir, "registry")); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if e.registryB, err = ecremu.StartRegistry(ctx, mkdir(e.dir, "registry-b")); err != nil {
		return fmt.Errorf("registry b: %w", err)
	}
	if e.ca, err = testpki.NewCA("aws-ecr-ldap e2e"); err != nil {
		return err
	}
	e.emu, err = ecremu.Start(ctx, ecremu.Config{
		Backend:         e.registry.URL(),
		AccessKeyID:     awsAccessKey,
		SecretAccessKey: awsSecretKey,
		Region:          awsRegion,
		AccountID:       accountA,
		Accounts:        []ecremu.Account{{ID: accountB, Backend: e.registryB.URL()}},
		CA:              e.ca,
	})
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	for _, r := range []string{repoName, "team-b/api", "team-c/secret"} {
		if err := e.emu.CreateRepository(r); err != nil {
			return err
		}
	}
	// The gateway creates missing repositories on push (AUTH_CREATE_REPOSITORIES);
	// IAM refuses this one, so it stays missing and a push there still ends
	// in ECR's NAME_UNKNOWN (G8).
	e.emu.DenyCreateRepository(missingRepo)
	if err := e.emu.Account(accountB).CreateRepository(repoName); err != nil {
		return err
	}
	caFile := filepath.Join(e.dir, "ca.pem")
	if err := e.ca.WriteCACert(caFile); err != nil {
		return err
	}
	tlsFiles, err := e.ca.WriteFiles(mkdir(e.dir, "tls"), "gateway", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	e.client = &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.CertPool()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       60 * time.Second,
	}

	policyFile := filepath.Join(e.dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(e2ePolicy), 0o644); err != nil {
		return err
	}
	e.policyFile = policyFile

	e.httpAddr, e.httpsAddr, e.tokenwriterAddr = freeAddr(), freeAddr(), freeAddr()
	e.runDir = filepath.Join(e.dir, "run")
	cmd := exec.Command(filepath.Join(bin, "gateway"))
	cmd.Env = append(cleanEnv(),
		"GATEWAY_HTTP_ADDR="+e.httpAddr,
		"GATEWAY_HTTPS_ADDR="+e.httpsAddr,
		"TLS_CERT_FILE="+tlsFiles.Cert,
		"TLS_KEY_FILE="+tlsFiles.Key,
		"GATEWAY_RUN_DIR="+e.runDir,
		"GATEWAY_NGINX_CONF="+filepath.Join(repoRoot(), "nginx", "nginx.conf"),
		"GATEWAY_BIN_DIR="+bin,
		// A unix socket, as the README recommends: nginx's workers run as
		// another user than its root master and must still reach it.
		"AUTH_LISTEN_ADDR=unix:"+filepath.Join(e.dir, "authsvc.sock"),
		"ECR_CA_FILE="+caFile,
		"LDAP_URL="+e.ldap.URL()+slapd.SearchPath,
		"LDAP_BIND_DN="+slapd.ServiceDN,
		"LDAP_BIND_PASSWORD="+slapd.ServicePassword,
		"LDAP_REQUIRE_GROUP="+slapd.GroupRegistryUsers,
		"LDAP_GROUP_BASE="+slapd.GroupsDN,
		"AUTH_POLICY_FILE="+policyFile,
		"AUTH_POLICY_POLL=200ms",
		"AUTH_CREATE_REPOSITORIES=true",
		"LDAP_DIAL_TIMEOUT=2s",
		"LDAP_TIMEOUT=5s",
		"AUTH_REALM=e2e registry",
		// The old image's variable names: tokenwriter must accept them.
		"REGION="+awsRegion,
		"AWS_KEY="+awsAccessKey,
		"AWS_SECRET="+awsSecretKey,
		"AWS_ENDPOINT_URL_ECR="+e.emu.APIURL(),
		"TOKEN_REFRESH_INTERVAL=4s",
		"TOKEN_RETRY_MIN=200ms",
		"TOKEN_RETRY_MAX=1s",
		"TOKENWRITER_LISTEN_ADDR="+e.tokenwriterAddr,
		"ECR_REGISTRIES="+e2eRegistries,
		"TOKEN_PROBE_INTERVAL=500ms",
		"TOKEN_REJECTED_REFRESH_GAP=1s",
	)
	e.gatewayLog, err = os.Create(filepath.Join(e.dir, "gateway.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = e.gatewayLog, e.gatewayLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	e.gateway = cmd
	e.gatewayDone = make(chan error, 1)
	go func() { e.gatewayDone <- cmd.Wait() }()
	return e.waitHealthy(60 * time.Second)
}

// cleanEnv is this process's environment without anything that could point
// the AWS SDK at real credentials.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "LDAP_") || strings.HasPrefix(kv, "GATEWAY_") ||
			strings.HasPrefix(kv, "TOKEN_") || strings.HasPrefix(kv, "NGINX_") || strings.HasPrefix(kv, "REGION=") {
			continue
		}
		if path, ok := strings.CutPrefix(kv, "PATH="); ok {
			kv = "PATH=" + withCurrentNginx(path)
		}
		out = append(out, kv)
	}
	empty := filepath.Join(os.TempDir(), "aws-ecr-ldap-e2e-empty")
	_ = os.WriteFile(empty, nil, 0o644)
	return append(out, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+empty, "AWS_SHARED_CREDENTIALS_FILE="+empty)
}

func (e *env) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := e.client.Get("http://" + e.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-e.gatewayDone:
			return fmt.Errorf("gateway exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway not healthy after %s: %v", timeout, err)
		}
	}
}

func (e *env) close() {
	if e.gateway != nil && e.gateway.Process != nil {
		_ = e.gateway.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.gatewayDone:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-e.gateway.Process.Pid, syscall.SIGKILL)
		}
	}
	if e.emu != nil {
		e.emu.Close()
	}
	if e.registry != nil {
		_ = e.registry.Stop()
	}
	if e.registryB != nil {
		_ = e.registryB.Stop()
	}
	if e.ldap != nil {
		_ = e.ldap.Stop()
	}
	if e.gatewayLog != nil {
		e.gatewayLog.Close()
	}
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

func mkdir(parent, name string) string {
	d := filepath.Join(parent, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
