package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/testpki"
)

// assembleConfDir lays out an nginx configuration directory in a temporary
// directory: files maps a path inside it (nginx.conf, local/http.conf...) to
// its text, and each rewrite must match exactly its count (so that an edit of
// a snippet cannot make a rewrite silently miss). The rewrites map the
// deployment's absolute paths and ports into the test's. existing are the
// directories (inside dir) that the deployment itself provides, such as a
// volume or a directory systemd creates; nothing else is created for nginx,
// so a temp path whose parent no one makes fails `nginx -t` here as it would
// there. ecrConf, if not nil, becomes ecr/ecr.conf.
func assembleConfDir(t *testing.T, dir string, files map[string]string, rewrites []rewrite, existing []string, ecrConf []byte) {
	t.Helper()
	for name, data := range files {
		for _, r := range rewrites {
			if r.file != name {
				continue
			}
			if n := strings.Count(data, r.old); n != r.count {
				t.Fatalf("%s: %q occurs %d times; want %d (update this test with the file)", name, r.old, n, r.count)
			}
			data = strings.ReplaceAll(data, r.old, r.new)
		}
		writeFile(t, filepath.Join(dir, name), data)
	}
	for _, d := range existing {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if ecrConf != nil {
		writeFile(t, filepath.Join(dir, "ecr", "ecr.conf"), string(ecrConf))
	}
}

// writeCA writes a throwaway CA certificate (PEM), as ecr-emulator -ca-out does.
func writeCA(t *testing.T, name string) {
	t.Helper()
	ca, err := testpki.NewCA("deploy test CA")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, name, string(ca.CertPEM()))
}
