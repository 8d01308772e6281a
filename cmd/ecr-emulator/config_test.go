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
