package ecremu_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

func TestStartRegistry(t *testing.T) {
	if _, err := os.Stat(ecremu.RegistryBinary); err != nil {
		t.Skipf("docker-registry not installed: %v", err)
	}
	dir := t.TempDir()
	reg, err := ecremu.StartRegistry(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(reg.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("got status %d; want 200 without credentials", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.yml")); err != nil {
		t.Errorf("got no config in the state dir: %v", err)
	}

	if err := reg.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := reg.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if resp, err := client.Get(reg.URL() + "/v2/"); err == nil {
		resp.Body.Close()
		t.Errorf("got status %d after Stop; want connection refused", resp.StatusCode)
	}
}
