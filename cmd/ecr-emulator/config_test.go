package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c Config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c Config) {
			if c.AccessKey != "demo" || c.SecretKey != "demo-secret" || c.Region != "us-east-1" ||
				c.Account != "123456789012" || c.TokenSize != 6400 || c.TokenTTL != 12*time.Hour || c.S3Host != "localhost" {
				t.Errorf("got %+v; want the documented defaults", c)
			}
		}},
		{"environment", map[string]string{"ECR_EMULATOR_REGION": "eu-central-1", "ECR_EMULATOR_REPOS": "a, b/c"}, nil, func(t *testing.T, c Config) {
			if c.Region != "eu-central-1" || !slices.Equal(c.Repos, []string{"a", "b/c"}) {
				t.Errorf("got region %q repos %q; want eu-central-1 [a b/c]", c.Region, c.Repos)
			}
		}},
		{"flag beats environment", map[string]string{"ECR_EMULATOR_TOKEN_SIZE": "8192"}, []string{"-token-size", "16384", "-secret-key", "s3cr3t", "-repos", "x,,y"}, func(t *testing.T, c Config) {
			if c.TokenSize != 16384 || c.SecretKey != "s3cr3t" || !slices.Equal(c.Repos, []string{"x", "y"}) {
				t.Errorf("got size %d repos %q; want 16384 [x y] and the flag's secret", c.TokenSize, c.Repos)
			}
		}},
		{"listen defaults", nil, nil, func(t *testing.T, c Config) {
			if c.APIAddr != "127.0.0.1:0" || c.RegistryAddr != "127.0.0.1:0" || c.S3Addr != "127.0.0.1:0" ||
				c.RegistryHost != "localhost" || len(c.CertHosts) != 0 {
				t.Errorf("got addresses %q %q %q, registry host %q, cert hosts %q; want free loopback ports, localhost, none",
					c.APIAddr, c.RegistryAddr, c.S3Addr, c.RegistryHost, c.CertHosts)
			}
		}},
		{"addresses and hosts from the environment", map[string]string{
			"ECR_EMULATOR_API_ADDR": "0.0.0.0:8080", "ECR_EMULATOR_REGISTRY_ADDR": ":5443", "ECR_EMULATOR_S3_ADDR": "0.0.0.0:5002",
			"ECR_EMULATOR_REGISTRY_HOST": "demo-ecr:5443", "ECR_EMULATOR_S3_HOST": "localhost:5002", "ECR_EMULATOR_CERT_HOSTS": "a.test, 10.0.0.2",
		}, nil, func(t *testing.T, c Config) {
			if c.APIAddr != "0.0.0.0:8080" || c.RegistryAddr != ":5443" || c.S3Addr != "0.0.0.0:5002" ||
				c.RegistryHost != "demo-ecr:5443" || c.S3Host != "localhost:5002" || !slices.Equal(c.CertHosts, []string{"a.test", "10.0.0.2"}) {
				t.Errorf("got %+v; want the environment's addresses and hosts", c)
			}
		}},
		{"addresses and hosts from flags", map[string]string{"ECR_EMULATOR_CERT_HOSTS": "env.test", "ECR_EMULATOR_API_ADDR": "0.0.0.0:1"},
			[]string{"-api-addr", "0.0.0.0:8080", "-registry-addr", "0.0.0.0:5443", "-s3-addr", "0.0.0.0:5002",
				"-registry-host", "demo-ecr:5443", "-s3-host", "localhost:5002",
				"-cert-host", "demo-ecr", "-cert-host", "b.test,10.0.0.3"},
			func(t *testing.T, c Config) {
				if c.APIAddr != "0.0.0.0:8080" || c.RegistryAddr != "0.0.0.0:5443" || c.S3Addr != "0.0.0.0:5002" ||
					c.RegistryHost != "demo-ecr:5443" || c.S3Host != "localhost:5002" {
					t.Errorf("got %+v; want the flags' addresses and hosts", c)
				}
				// The first -cert-host replaces the environment's list; the next add to it.
				if want := []string{"demo-ecr", "b.test", "10.0.0.3"}; !slices.Equal(c.CertHosts, want) {
					t.Errorf("cert hosts got %q; want %q", c.CertHosts, want)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := loadConfig(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	t.Setenv("ECR_EMULATOR_ACCOUNT", "12")
	_, err := loadConfig([]string{"-access-key", "", "-backend", "ftp://x", "-token-ttl", "0s"}, io.Discard)
	if err == nil {
		t.Fatal("got nil; want errors")
	}
	for _, want := range []string{"ECR_EMULATOR_ACCOUNT (-account)", "ECR_EMULATOR_ACCESS_KEY (-access-key)",
		"ECR_EMULATOR_BACKEND (-backend)", "ECR_EMULATOR_TOKEN_TTL (-token-ttl)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q; want a problem naming %s", err, want)
		}
	}
}

func TestValidateAddresses(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-api-addr", "0.0.0.0"}, "ECR_EMULATOR_API_ADDR (-api-addr)"},
		{[]string{"-registry-addr", "demo-ecr"}, "ECR_EMULATOR_REGISTRY_ADDR (-registry-addr)"},
		{[]string{"-s3-addr", ":99999"}, "ECR_EMULATOR_S3_ADDR (-s3-addr)"},
		{[]string{"-registry-host", "https://demo-ecr"}, "ECR_EMULATOR_REGISTRY_HOST (-registry-host)"},
		{[]string{"-registry-host", ""}, "ECR_EMULATOR_REGISTRY_HOST (-registry-host)"},
		{[]string{"-s3-host", "localhost:http"}, "ECR_EMULATOR_S3_HOST (-s3-host)"},
		{[]string{"-s3-host", "a/b"}, "ECR_EMULATOR_S3_HOST (-s3-host)"},
		{[]string{"-cert-host", "ok.test,demo-ecr:5443"}, "ECR_EMULATOR_CERT_HOSTS (-cert-host)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := loadConfig(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want a problem naming %s", err, tt.want)
			}
		})
	}
}

func TestSecretNotPrinted(t *testing.T) {
	c := Config{SecretKey: "demo-secret"}
	if got := c.SecretKey.String(); strings.Contains(got, "demo") {
		t.Errorf("got %q; want ***", got)
	}
}

// TestRun starts the whole command with its own docker-registry, waits for
// the endpoints, checks the CA file and stops it with the context.
func TestRun(t *testing.T) {
	if _, err := os.Stat("/usr/bin/docker-registry"); err != nil {
		t.Skipf("docker-registry not installed: %v", err)
	}
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-dir", t.TempDir(), "-ca-out", caPath, "-repos", "team/app"}, pw, io.Discard)
		pw.Close()
	}()

	vars := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		vars[k] = v
		if k == "ECR_EMULATOR_BACKEND" {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(vars["AWS_ENDPOINT_URL_ECR"], "http://127.0.0.1:") || !strings.HasPrefix(vars["ECR_REGISTRY_HOST"], "localhost:") {
		t.Errorf("got %v; want the API URL and registry host", vars)
	}
	if pem, err := os.ReadFile(caPath); err != nil || !strings.Contains(string(pem), "BEGIN CERTIFICATE") {
		t.Errorf("got CA file error %v; want a PEM certificate", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("got run error %v; want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestLoadConfigAccounts(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		accounts []string // Config.Accounts
		ids      []string // accountIDs
	}{
		{"none", nil, nil, nil, []string{"123456789012"}},
		{"environment", map[string]string{"ECR_EMULATOR_ACCOUNTS": "111111111111, 222222222222=127.0.0.1:5444"}, nil,
			[]string{"111111111111", "222222222222=127.0.0.1:5444"}, []string{"123456789012", "111111111111", "222222222222"}},
		// The first -accounts replaces the environment's list; the next add to it.
		{"flags", map[string]string{"ECR_EMULATOR_ACCOUNTS": "333333333333"},
			[]string{"-account", "999999999999", "-accounts", "111111111111", "-accounts", "222222222222,"},
			[]string{"111111111111", "222222222222"}, []string{"999999999999", "111111111111", "222222222222"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := loadConfig(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Accounts, tt.accounts) {
				t.Errorf("accounts got %q; want %q", c.Accounts, tt.accounts)
			}
			if got := c.accountIDs(); !slices.Equal(got, tt.ids) {
				t.Errorf("account ids got %q; want %q", got, tt.ids)
			}
		})
	}
}

func TestValidateAccounts(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error; "" for none
	}{
		{"several in -account", []string{"-account", "111111111111,222222222222"}, "ECR_EMULATOR_ACCOUNT (-account): want 12 digits, got \"111111111111,222222222222\"; more accounts go in ECR_EMULATOR_ACCOUNTS"},
		{"not 12 digits", []string{"-accounts", "111111111111,12345"}, "ECR_EMULATOR_ACCOUNTS (-accounts): want a 12-digit account id or id=host:port, got \"12345\""},
		{"empty id", []string{"-accounts", "=127.0.0.1:1"}, "ECR_EMULATOR_ACCOUNTS (-accounts): want a 12-digit account id"},
		{"the main account again", []string{"-accounts", "123456789012"}, "ECR_EMULATOR_ACCOUNTS (-accounts): account 123456789012 is ECR_EMULATOR_ACCOUNT already"},
		{"twice", []string{"-accounts", "111111111111", "-accounts", "111111111111=127.0.0.1:0"}, "ECR_EMULATOR_ACCOUNTS (-accounts): account 111111111111 is listed twice"},
		{"bad front address", []string{"-accounts", "111111111111=localhost"}, "ECR_EMULATOR_ACCOUNTS (-accounts): 111111111111=localhost: want host:port"},
		{"repo in an unknown account", []string{"-accounts", "111111111111", "-repos", "a,333333333333:b"}, "ECR_EMULATOR_REPOS (-repos): account 333333333333 in \"333333333333:b\" is neither"},
		{"repo prefix not an account", []string{"-repos", "team:app"}, "ECR_EMULATOR_REPOS (-repos): want <repository> or <account>:<repository>, got \"team:app\""},
		{"repo name missing", []string{"-repos", "123456789012:"}, "ECR_EMULATOR_REPOS (-repos): want <repository> or <account>:<repository>"},
		{"s3 port with accounts", []string{"-accounts", "111111111111", "-s3-host", "localhost:5002"}, "ECR_EMULATOR_S3_HOST (-s3-host): give no port"},
		{"valid", []string{"-accounts", "111111111111,222222222222=127.0.0.1:0", "-repos", "a,123456789012:b,111111111111:c", "-s3-host", "localhost"}, ""},
		{"s3 port with one account", []string{"-s3-host", "localhost:5002"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.args, io.Discard)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v; want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v; want a problem %q", err, tt.want)
			}
		})
	}
}

func TestSplitRepo(t *testing.T) {
	tests := []struct {
		entry, account, name string
		prefixed             bool
	}{
		{"team/app", "", "team/app", false},
		{"111111111111:team/app", "111111111111", "team/app", true},
		{" 111111111111 : app", "111111111111", "app", true},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			account, name, prefixed := splitRepo(tt.entry)
			if account != tt.account || name != tt.name || prefixed != tt.prefixed {
				t.Errorf("got %q %q %v; want %q %q %v", account, name, prefixed, tt.account, tt.name, tt.prefixed)
			}
		})
	}
}

// TestSharedBackend: with -backend, every account's front proxies to it and
// nothing is started; the other fronts are named as -registry-host, on their
// own ports, and a pinned address is passed on.
func TestSharedBackend(t *testing.T) {
	c, err := loadConfig([]string{"-backend", "http://127.0.0.1:5000", "-registry-host", "demo-ecr:5443",
		"-accounts", "111111111111,222222222222=0.0.0.0:5444"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startBackends(t.Context(), c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://127.0.0.1:5000", "http://127.0.0.1:5000", "http://127.0.0.1:5000"}; !slices.Equal(b.urls, want) || len(b.started) != 0 {
		t.Errorf("got backends %q, %d started; want %q, none started", b.urls, len(b.started), want)
	}
	want := []ecremu.Account{
		{ID: "111111111111", Backend: "http://127.0.0.1:5000", RegistryHost: "demo-ecr"},
		{ID: "222222222222", Backend: "http://127.0.0.1:5000", RegistryHost: "demo-ecr", RegistryAddr: "0.0.0.0:5444"},
	}
	if got := emulatorAccounts(c, b); !slices.Equal(got, want) {
		t.Errorf("got %+v; want %+v", got, want)
	}
}
