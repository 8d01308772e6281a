package ecremu

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/toanc/aws-ecr-ldap/internal/testpki"
)

const (
	// DefaultRegion and DefaultAccountID apply when Config leaves them empty.
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
	// DefaultS3Host names the "S3" listener in blob redirects. Not 127.0.0.1:
	// go-containerregistry (crane) refuses a redirect from a host name to a
	// private or loopback IP literal. Clients that set Authorization on the
	// request itself (not in their transport) carry it across a redirect to
	// the same host name on another port, so a gateway under test should be
	// addressed by another name (127.0.0.1, say), as ECR and S3 differ in real life.
	DefaultS3Host = "localhost"
	// DefaultRegistryHost names the registry front in proxyEndpoint.
	DefaultRegistryHost = "localhost"
	// DefaultListenAddr is where each listener listens unless Config says:
	// a free loopback port.
	DefaultListenAddr = "127.0.0.1:0"

	readHeaderTimeout = 10 * time.Second
	maxHeaderBytes    = 1 << 20 // room for 16 KB tokens and more
)

// Config describes an Emulator. Zero values take the documented defaults.
type Config struct {
	Backend         string // URL of the docker-registry behind the front; required
	AccessKeyID     string // the only access key the API accepts; required
	SecretAccessKey string // its secret; required
	Region          string // SigV4 region; default DefaultRegion
	AccountID       string // 12-digit registry id; default DefaultAccountID
	TokenSize       int    // length of the base64 authorizationToken; default DefaultTokenSize
	TokenTTL        time.Duration
	CreateOnPush    bool // create missing repositories on the first write, instead of NAME_UNKNOWN
	// S3Host is the host, or host:port, in blob download redirects; default
	// DefaultS3Host. Without a port, the S3 listener's own port is used. The
	// client that follows the redirect must reach the S3 listener there: with
	// the listener in a container, the host and port it is published on. See
	// DefaultS3Host.
	S3Host string
	// RegistryHost is the registry front as clients name it, host or
	// host:port: the host of proxyEndpoint, repositoryUri and the front's
	// absolute Locations. Default "localhost"; without a port, the front
	// listener's own port is used. Its host is always in the front's certificate.
	RegistryHost string
	// CertHosts are more DNS names or IP addresses for the front's certificate,
	// besides localhost, 127.0.0.1 and RegistryHost's host.
	CertHosts []string
	// APIAddr, RegistryAddr and S3Addr are the listen addresses (host:port) of
	// the ECR API, the registry front and the S3 endpoint; default
	// DefaultListenAddr, a free loopback port.
	APIAddr      string
	RegistryAddr string
	S3Addr       string

	// Accounts are more registries, each with its own front, behind the same
	// API and credentials; see Account.
	Accounts []Account

	CA     *testpki.CA // signs the front's certificate; nil makes one
	Logger *slog.Logger
	Now    func() time.Time // clock; nil is time.Now
}

// withDefaults returns a copy of c with defaults filled in.
func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.AccountID == "" {
		c.AccountID = DefaultAccountID
	}
	if c.S3Host == "" {
		c.S3Host = DefaultS3Host
	}
	if c.RegistryHost == "" {
		c.RegistryHost = DefaultRegistryHost
	}
	for _, a := range []*string{&c.APIAddr, &c.RegistryAddr, &c.S3Addr} {
		if *a == "" {
			*a = DefaultListenAddr
		}
	}
	c.TokenSize = normalizeTokenSize(c.TokenSize)
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.Backend); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("Backend: want an http(s) URL, got %q", c.Backend))
	}
	if c.AccessKeyID == "" {
		errs = append(errs, errors.New("AccessKeyID: required"))
	}
	if c.SecretAccessKey == "" {
		errs = append(errs, errors.New("SecretAccessKey: required"))
	}
	if c.AccountID != "" && !registryIDPattern.MatchString(c.AccountID) {
		errs = append(errs, fmt.Errorf("AccountID: want 12 digits, got %q", c.AccountID))
	}
	if c.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("TokenTTL: must not be negative, got %v", c.TokenTTL))
	}
	for _, h := range []struct{ field, value string }{{"S3Host", c.S3Host}, {"RegistryHost", c.RegistryHost}} {
		if _, _, err := SplitHost(h.value); h.value != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.field, err))
		}
	}
	for _, a := range []struct{ field, value string }{{"APIAddr", c.APIAddr}, {"RegistryAddr", c.RegistryAddr}, {"S3Addr", c.S3Addr}} {
		if err := CheckListenAddr(a.value); a.value != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.field, err))
		}
	}
	if err := CheckCertHosts(c.CertHosts); err != nil {
		errs = append(errs, fmt.Errorf("CertHosts: %w", err))
	}
	errs = append(errs, c.validateAccounts()...)
	return errors.Join(errs...)
}

// Emulator is a running ECR stand-in; see the package documentation.
type Emulator struct {
	cfg           Config
	log           *slog.Logger
	now           func() time.Time
	ca            *testpki.CA
	backend       *url.URL
	backendClient *http.Client
	proxy         *httputil.ReverseProxy
	verifier      *sigV4Verifier
	tokens        *tokenStore
	repos         *repoSet
	s3            *blobSigner
	faults        faults
	apiFaults     apiFaults
	uploads       uploadParts // ECR's chunk minimum (uploads.go)
	blobsDirect   atomic.Bool // ServeBlobsDirectly

	apiURL       string
	registryHost string

	servers []*http.Server
	serving sync.WaitGroup

	mu         sync.Mutex
	tokenSize  int
	tokenCalls int
	failLeft   int
	failKind   FailKind
	accounts   accountState // Config.Accounts; guarded by mu after Start
}

// Start starts the three listeners, by default on free loopback ports. ctx
// bounds the start only; call Close to stop.
func Start(ctx context.Context, cfg Config) (*Emulator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ecremu: config: %w", err)
	}
	backend, _ := url.Parse(cfg.Backend)
	ca := cfg.CA
	if ca == nil {
		var err error
		if ca, err = testpki.NewCA("ecremu CA"); err != nil {
			return nil, err
		}
	}
	registryHostname, _, _ := SplitHost(cfg.RegistryHost)
	dnsNames, ips := certNames(append([]string{"localhost", "127.0.0.1", registryHostname}, cfg.CertHosts...))
	serverTLS, err := ca.ServerTLSConfig(dnsNames, ips)
	if err != nil {
		return nil, err
	}

	var lc net.ListenConfig
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	for _, addr := range []string{cfg.APIAddr, cfg.RegistryAddr, cfg.S3Addr} {
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("ecremu: listen: %w", err)
		}
		lns = append(lns, l)
	}
	apiLn, frontLn, s3Ln := lns[0], lns[1], lns[2]
	s3, err := newBlobSigner("http://"+advertised(cfg.S3Host, s3Ln), cfg.Region)
	if err != nil {
		closeAll()
		return nil, err
	}

	e := &Emulator{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		ca:      ca,
		backend: backend,
		backendClient: &http.Client{Transport: &http.Transport{
			Proxy:                 nil, // loopback only, whatever HTTP_PROXY says
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ResponseHeaderTimeout: time.Minute,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
		}},
		verifier: &sigV4Verifier{
			creds:  aws.Credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey},
			region: cfg.Region,
			signer: v4.NewSigner(),
			now:    cfg.Now,
		},
		tokens:       newTokenStore(),
		repos:        newRepoSet(),
		s3:           s3,
		apiURL:       "http://" + localHostPort(apiLn),
		registryHost: advertised(cfg.RegistryHost, frontLn),
		tokenSize:    cfg.TokenSize,
	}
	e.proxy = e.newProxy()
	if err := e.startAccounts(ctx); err != nil {
		closeAll()
		e.Close()
		return nil, err
	}

	e.serve(apiLn, http.HandlerFunc(e.serveAPI))
	e.serve(tls.NewListener(frontLn, serverTLS), http.HandlerFunc(e.serveFront))
	e.serve(s3Ln, http.HandlerFunc(e.serveS3))
	e.log.Info("ecr emulator started", slog.String("api", e.apiURL),
		slog.String("registry", e.registryHost), slog.String("s3", s3.base), slog.String("backend", backend.String()))
	return e, nil
}

func (e *Emulator) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		// TLS handshake noise (clients probing http:// first) is debug only.
		ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	e.servers = append(e.servers, srv)
	e.serving.Go(func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("ecr emulator listener stopped", slog.Any("error", err))
		}
	})
}

// Close stops all three listeners and cuts requests in flight: a graceful
// shutdown would wait for clients that connected and never spoke, such as
// the http:// probe crane sends to the TLS port.
func (e *Emulator) Close() error {
	var errs []error
	for _, srv := range e.servers {
		if err := srv.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	e.serving.Wait()
	e.backendClient.CloseIdleConnections()
	for _, a := range e.accounts.order {
		a.backendClient.CloseIdleConnections()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ecremu: close: %w", err)
	}
	return nil
}

// APIURL is the ECR API endpoint, for AWS_ENDPOINT_URL_ECR or BaseEndpoint.
// With an unspecified listen address (0.0.0.0, ::) it names 127.0.0.1.
func (e *Emulator) APIURL() string { return e.apiURL }

// RegistryHost is the registry front as host:port (Config.RegistryHost,
// "localhost:<port>" by default), the host of the proxyEndpoint
// GetAuthorizationToken returns.
func (e *Emulator) RegistryHost() string { return e.registryHost }

// S3URL is the base URL blob downloads are redirected to.
func (e *Emulator) S3URL() string { return e.s3.base }

// CA returns the CA that signed the front's certificate.
func (e *Emulator) CA() *testpki.CA { return e.ca }

// CACertPEM returns the CA certificate clients need to trust the front.
func (e *Emulator) CACertPEM() []byte { return e.ca.CertPEM() }

// WriteCACert writes the CA certificate to path, for nginx's
// proxy_ssl_trusted_certificate. The file is replaced atomically, so that a
// reader waiting for it never sees it half written.
func (e *Emulator) WriteCACert(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, e.ca.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("ecremu: write ca certificate: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ecremu: write ca certificate: %w", err)
	}
	return nil
}

// SetTokenSize changes the length of tokens issued from now on; see
// Config.TokenSize. Sizes are rounded up to a multiple of 4 (base64).
func (e *Emulator) SetTokenSize(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokenSize = normalizeTokenSize(n)
}

// FailTokenCalls makes the next n GetAuthorizationToken calls fail with kind.
// The SDK retries both kinds, by default 3 attempts per operation.
func (e *Emulator) FailTokenCalls(n int, kind FailKind) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failLeft, e.failKind = n, kind
}

// TokenCalls counts GetAuthorizationToken calls that passed signature
// verification, including those failed on purpose.
func (e *Emulator) TokenCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tokenCalls
}

// RevokeTokens invalidates every token issued so far.
func (e *Emulator) RevokeTokens() { e.tokens.revokeAll() }

// ForeignAuthorizations returns every Authorization value the front received
// that was never issued by this emulator, such as a user's LDAP credentials.
// Expired or revoked tokens are refused too but are not recorded here.
func (e *Emulator) ForeignAuthorizations() []string { return e.tokens.foreignValues() }

// S3Requests counts requests to the "S3" listener (and to those of
// Config.Accounts), and those among them that carried an Authorization
// header (and were refused).
func (e *Emulator) S3Requests() (total, withAuthorization int) {
	total, withAuthorization = e.s3.counts()
	for _, a := range e.accounts.order {
		t, w := a.s3.counts()
		total, withAuthorization = total+t, withAuthorization+w
	}
	return total, withAuthorization
}

// CreateRepository creates a repository as the CreateRepository API does.
func (e *Emulator) CreateRepository(name string) error {
	_, err := e.repos.create(name, e.now())
	return err
}

// Repositories returns the names of all repositories, sorted.
func (e *Emulator) Repositories() []string { return e.repos.names() }
