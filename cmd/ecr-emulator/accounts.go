package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

// accountSpec is one ECR_EMULATOR_ACCOUNTS entry: "<id>" or
// "<id>=<registry front listen address>".
type accountSpec struct {
	ID           string
	RegistryAddr string // "" unless pinned: a free loopback port
	pinned       bool
}

func parseAccount(entry string) accountSpec {
	id, addr, pinned := strings.Cut(entry, "=")
	return accountSpec{ID: strings.TrimSpace(id), RegistryAddr: strings.TrimSpace(addr), pinned: pinned}
}

// accountIDs lists every account, ECR_EMULATOR_ACCOUNT first.
func (c Config) accountIDs() []string {
	ids := []string{c.Account}
	for _, entry := range c.Accounts {
		ids = append(ids, parseAccount(entry).ID)
	}
	return ids
}

// splitRepo splits an ECR_EMULATOR_REPOS entry, "[<account>:]<name>".
// Repository names cannot hold a colon, so the first one ends the account.
func splitRepo(entry string) (account, name string, prefixed bool) {
	if account, name, prefixed = strings.Cut(entry, ":"); prefixed {
		return strings.TrimSpace(account), strings.TrimSpace(name), true
	}
	return "", entry, false
}

// backends are the registries behind the fronts, in the order of
// Config.accountIDs.
type backends struct {
	urls    []string
	started []*ecremu.Registry
}

// startBackends gives every account cfg.Backend when it is set (the
// accounts then share its storage: the same repository name in two accounts
// holds the same images), else a docker-registry of its own in dir:
// "registry" for ECR_EMULATOR_ACCOUNT, as before there were more,
// "registry-<id>" for the others.
func startBackends(ctx context.Context, cfg Config, dir string) (*backends, error) {
	b := &backends{}
	for i, id := range cfg.accountIDs() {
		if cfg.Backend != "" {
			b.urls = append(b.urls, cfg.Backend)
			continue
		}
		sub := "registry"
		if i > 0 {
			sub = "registry-" + id
		}
		reg, err := ecremu.StartRegistry(ctx, filepath.Join(dir, sub))
		if err != nil {
			b.stop()
			return nil, fmt.Errorf("account %s: %w", id, err)
		}
		b.started = append(b.started, reg)
		b.urls = append(b.urls, reg.URL())
	}
	return b, nil
}

func (b *backends) stop() error {
	var errs []error
	for _, reg := range b.started {
		errs = append(errs, reg.Stop())
	}
	return errors.Join(errs...)
}

// emulatorAccounts are the ecremu.Config.Accounts entries of the accounts
// after the first. Their fronts are named like the first one's, on their own
// ports.
func emulatorAccounts(cfg Config, b *backends) []ecremu.Account {
	host, _, _ := ecremu.SplitHost(cfg.RegistryHost)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	var out []ecremu.Account
	for i, entry := range cfg.Accounts {
		a := parseAccount(entry)
		out = append(out, ecremu.Account{ID: a.ID, Backend: b.urls[i+1], RegistryHost: host, RegistryAddr: a.RegistryAddr})
	}
	return out
}

// createRepos creates the ECR_EMULATOR_REPOS repositories, each in its account.
func createRepos(emu *ecremu.Emulator, cfg Config) error {
	for _, entry := range cfg.Repos {
		account, name, prefixed := splitRepo(entry)
		if !prefixed {
			account = cfg.Account
		}
		if err := emu.Account(account).CreateRepository(name); err != nil {
			return fmt.Errorf("account %s: %w", account, err)
		}
	}
	return nil
}

// printEndpoints writes what clients and the gateway need: KEY=value lines
// for the first account (as before there were more), a comment line per
// account, and, with several, an ECR_REGISTRIES line for the gateway.
func printEndpoints(w io.Writer, emu *ecremu.Emulator, cfg Config, b *backends) {
	fmt.Fprintf(w, "AWS_ENDPOINT_URL_ECR=%s\nECR_REGISTRY_HOST=%s\nECR_EMULATOR_S3_URL=%s\nECR_EMULATOR_BACKEND=%s\n",
		emu.APIURL(), emu.RegistryHost(), emu.S3URL(), b.urls[0])
	ids := cfg.accountIDs()
	var routes []string
	for i, id := range ids {
		a := emu.Account(id)
		repos := strings.Join(a.Repositories(), " ")
		if repos == "" {
			repos = "(none)"
		}
		fmt.Fprintf(w, "# account %s: registry https://%s, s3 %s, backend %s, repositories: %s\n",
			id, a.RegistryHost(), a.S3URL(), b.urls[i], repos)
		// The gateway's own names for the registries: the first answers to
		// localhost, the others to <id>.localhost.
		gatewayHost := "localhost"
		if i > 0 {
			gatewayHost = id + ".localhost"
		}
		routes = append(routes, gatewayHost+"="+id+"@"+a.RegistryHost())
	}
	if len(ids) > 1 {
		fmt.Fprintln(w, `# For the gateway, instead of ECR_REGISTRY_HOST; point each name before "=" at the gateway:`)
		fmt.Fprintf(w, "ECR_REGISTRIES=%s\n", strings.Join(routes, ","))
	}
}
