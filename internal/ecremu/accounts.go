package ecremu

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Account is one more AWS account the emulator serves besides
// Config.AccountID: its own registry front (own listener, own RegistryHost in
// proxyEndpoint, own repositories) over its own docker-registry, and its own
// "S3" listener for that registry's blobs. The ECR API, the credentials and
// the tokens are shared: one IAM principal, whose token works on every front.
type Account struct {
	ID           string // 12-digit registry id; required, distinct
	Backend      string // URL of this account's docker-registry; required
	RegistryHost string // as Config.RegistryHost; default DefaultRegistryHost
	RegistryAddr string // listen address of its front; default DefaultListenAddr
	S3Addr       string // listen address of its "S3"; default DefaultListenAddr
}

// TokenCall is one GetAuthorizationToken call the API verified.
type TokenCall struct {
	RegistryIDs []string // as sent; nil when the call named none
	Failed      bool     // answered with an injected failure
}

// accountState is what the API keeps about the further accounts.
type accountState struct {
	byID     map[string]*Emulator
	order    []*Emulator
	calls    []TokenCall
	failLeft map[string]int
	failKind map[string]FailKind
}

func (c Config) validateAccounts() []error {
	var errs []error
	seen := map[string]bool{c.AccountID: true}
	for i, a := range c.Accounts {
		field := fmt.Sprintf("Accounts[%d]", i)
		if !registryIDPattern.MatchString(a.ID) {
			errs = append(errs, fmt.Errorf("%s.ID: want 12 digits, got %q", field, a.ID))
		} else if seen[a.ID] {
			errs = append(errs, fmt.Errorf("%s.ID: account %s is already served", field, a.ID))
		}
		seen[a.ID] = true
		if u, err := url.Parse(a.Backend); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s.Backend: want an http(s) URL, got %q", field, a.Backend))
		}
		if _, _, err := SplitHost(a.RegistryHost); a.RegistryHost != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s.RegistryHost: %w", field, err))
		}
		for _, l := range []struct{ name, value string }{{"RegistryAddr", a.RegistryAddr}, {"S3Addr", a.S3Addr}} {
			if err := CheckListenAddr(l.value); l.value != "" && err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w", field, l.name, err))
			}
		}
	}
	return errs
}

// startAccounts starts the front and "S3" of every Config.Accounts entry.
// Their servers are e's: Close stops them.
func (e *Emulator) startAccounts(ctx context.Context) error {
	e.accounts.byID = map[string]*Emulator{}
	for _, a := range e.cfg.Accounts {
		child, err := e.startAccount(ctx, a)
		if err != nil {
			return err
		}
		e.accounts.byID[a.ID] = child
		e.accounts.order = append(e.accounts.order, child)
	}
	return nil
}

func (e *Emulator) startAccount(ctx context.Context, a Account) (*Emulator, error) {
	cfg := e.cfg
	cfg.AccountID, cfg.Backend, cfg.Accounts = a.ID, a.Backend, nil
	cfg.RegistryHost, cfg.RegistryAddr, cfg.S3Addr = a.RegistryHost, a.RegistryAddr, a.S3Addr
	if cfg.RegistryHost == "" {
		cfg.RegistryHost = DefaultRegistryHost
	}
	for _, p := range []*string{&cfg.RegistryAddr, &cfg.S3Addr} {
		if *p == "" {
			*p = DefaultListenAddr
		}
	}
	backend, _ := url.Parse(cfg.Backend)
	hostname, _, _ := SplitHost(cfg.RegistryHost)
	dnsNames, ips := certNames(append([]string{"localhost", "127.0.0.1", hostname}, cfg.CertHosts...))
	serverTLS, err := e.ca.ServerTLSConfig(dnsNames, ips)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	frontLn, err := lc.Listen(ctx, "tcp", cfg.RegistryAddr)
	if err != nil {
		return nil, fmt.Errorf("ecremu: account %s: listen: %w", a.ID, err)
	}
	s3Ln, err := lc.Listen(ctx, "tcp", cfg.S3Addr)
	if err != nil {
		frontLn.Close()
		return nil, fmt.Errorf("ecremu: account %s: listen: %w", a.ID, err)
	}
	s3, err := newBlobSigner("http://"+advertised(cfg.S3Host, s3Ln), cfg.Region)
	if err != nil {
		frontLn.Close()
		s3Ln.Close()
		return nil, err
	}
	child := &Emulator{
		cfg:     cfg,
		log:     e.log.With(slog.String("account", a.ID)),
		now:     e.now,
		ca:      e.ca,
		backend: backend,
		backendClient: &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ResponseHeaderTimeout: time.Minute,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
		}},
		verifier:     e.verifier,
		tokens:       e.tokens,
		repos:        newRepoSet(),
		s3:           s3,
		apiURL:       e.apiURL,
		registryHost: advertised(cfg.RegistryHost, frontLn),
		tokenSize:    e.tokenSize,
	}
	child.proxy = child.newProxy()
	e.serve(tls.NewListener(frontLn, serverTLS), http.HandlerFunc(child.serveFront))
	e.serve(s3Ln, http.HandlerFunc(child.serveS3))
	e.log.Info("ecr emulator account started", slog.String("account", a.ID),
		slog.String("registry", child.registryHost), slog.String("s3", s3.base), slog.String("backend", backend.String()))
	return child, nil
}

// Account returns the registry of account id: e itself for Config.AccountID,
// the front of a Config.Accounts entry, or nil. On another account's
// registry use only the registry-side methods (RegistryHost, S3URL,
// CreateRepository, Repositories, DenyPush, AllowPush, ThrottleRequests,
// S3Requests); the API's (tokens, failures, calls) are those of e.
func (e *Emulator) Account(id string) *Emulator {
	if id == e.cfg.AccountID {
		return e
	}
	return e.accounts.byID[id]
}

// registryHostFor is the front of registry id in proxyEndpoint: that
// account's, or e's own for any other id (as before accounts existed).
func (e *Emulator) registryHostFor(id string) string {
	if a := e.accounts.byID[id]; a != nil {
		return a.registryHost
	}
	return e.registryHost
}

// FailTokenCallsFor makes the next n GetAuthorizationToken calls that name
// registry id in registryIds fail with kind; other calls are answered. The
// SDK retries both kinds, by default 3 attempts per operation.
func (e *Emulator) FailTokenCallsFor(id string, n int, kind FailKind) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.accounts.failLeft == nil {
		e.accounts.failLeft, e.accounts.failKind = map[string]int{}, map[string]FailKind{}
	}
	e.accounts.failLeft[id], e.accounts.failKind[id] = n, kind
}

// TokenCallLog returns every GetAuthorizationToken call that passed
// signature verification, oldest first.
func (e *Emulator) TokenCallLog() []TokenCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]TokenCall, len(e.accounts.calls))
	for i, c := range e.accounts.calls {
		out[i] = TokenCall{RegistryIDs: slices.Clone(c.RegistryIDs), Failed: c.Failed}
	}
	return out
}

// CrossAccountTokenUses counts registry requests, on any front, that carried
// a valid token minted by a call that did not name that front's account (a
// call naming none names Config.AccountID). ECR accepts such a token when the
// principal may use both registries, and so does the emulator; a gateway
// that sends each registry its own token keeps this at 0.
func (e *Emulator) CrossAccountTokenUses() int { return e.tokens.crossAccountUses() }

// accountFailure is called with e.mu held: the injected failure of a call
// naming ids, or nil.
func (e *Emulator) accountFailure(ids []string) *apiError {
	for _, id := range ids {
		if e.accounts.failLeft[id] > 0 {
			e.accounts.failLeft[id]--
			return e.accounts.failKind[id].apiError()
		}
	}
	return nil
}
