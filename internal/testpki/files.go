package testpki

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// CAFileName is the name WriteFiles gives the CA certificate.
const CAFileName = "ca.crt"

// Files names the PEM files WriteFiles wrote.
type Files struct {
	Cert string // <prefix>.crt, the server certificate
	Key  string // <prefix>.key, its private key, mode 0600
	CA   string // ca.crt, the CA certificate
}

// WriteFiles issues a server certificate for the given names and addresses and
// writes <prefix>.crt, <prefix>.key (0600) and ca.crt into dir, which is
// created if needed.
func (ca *CA) WriteFiles(dir, prefix string, dnsNames []string, ips []net.IP) (Files, error) {
	certPEM, keyPEM, err := ca.Issue(dnsNames, ips)
	if err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("testpki: create dir: %w", err)
	}
	f := Files{
		Cert: filepath.Join(dir, prefix+".crt"),
		Key:  filepath.Join(dir, prefix+".key"),
		CA:   filepath.Join(dir, CAFileName),
	}
	if err := writeFile(f.Key, keyPEM, 0o600); err != nil {
		return Files{}, err
	}
	if err := writeFile(f.Cert, certPEM, 0o644); err != nil {
		return Files{}, err
	}
	if err := ca.WriteCACert(f.CA); err != nil {
		return Files{}, err
	}
	return f, nil
}

// WriteCACert writes the CA certificate in PEM form to path.
func (ca *CA) WriteCACert(path string) error {
	return writeFile(path, ca.certPEM, 0o644)
}

// writeFile writes through a temporary file and a rename, so a reader such as
// nginx never sees half a file, and a key never exists with a looser mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("testpki: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("testpki: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("testpki: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("testpki: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("testpki: write %s: %w", path, err)
	}
	return nil
}
