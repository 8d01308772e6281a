package authsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
	"github.com/toanc/aws-ecr-ldap/internal/policy"
	"github.com/toanc/aws-ecr-ldap/internal/regpath"
)

// Authenticator checks a username and password. Errors wrapping
// ldapauth.ErrInvalidCredentials mean 401 and ldapauth.ErrForbidden 403; any other
// error (ldapauth.ErrUnavailable above all) means the answer is unknown: 503.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (ldapauth.Identity, error)
}

var _ Authenticator = (*ldapauth.Client)(nil)

// RepositoryHeader and ReferenceHeader carry what the request addresses back
// to nginx, for its access log.
const (
	RepositoryHeader = "X-Auth-Request-Repository"
	ReferenceHeader  = "X-Auth-Request-Reference"
)

// UserHeader carries the authenticated name back to nginx.
const UserHeader = "X-Auth-Request-User"

// ReasonHeader carries the reason of a 403 to nginx, which shows it to the
// docker client inside a JSON error; see reasonValue.
const ReasonHeader = "X-Auth-Reason"

// Longest user and URI written to a log line.
const (
	maxLoggedUser = ldapauth.MaxUsernameBytes
	maxLoggedURI  = 1024
)

// Options configure the /auth handler beyond the authenticator. The zero
// value is a plain handler: no cache, no limits, no grace, no metrics.
type Options struct {
	Realm  string       // AUTH_REALM, in the Basic challenge
	Logger *slog.Logger // nil discards
	// Metrics records decisions, latency, cache and limiter counts; nil
	// records into a registry nobody reads.
	Metrics *Metrics
	// Pinger answers /readyz; nil makes /readyz answer like /healthz.
	Pinger Pinger
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	CacheTTL    time.Duration // AUTH_CACHE_TTL: how long a verified login is trusted; 0 = no cache
	CacheSize   int           // AUTH_CACHE_SIZE: most credentials remembered
	GracePeriod time.Duration // AUTH_GRACE_PERIOD: how long a verified login survives an LDAP outage; 0 = off
	Limits      Limits        // failed-login limits; zero = off
	// QuietHits logs allowed cache hits at debug level instead of info
	// (AUTH_LOG_CACHE_HITS=false): the JSON line is most of a hit's cost, and
	// nginx's access log already records each request with its user.
	QuietHits bool
	// Policy is the repository policy (AUTH_POLICY_FILE) in force; nil keeps
	// the policy-free behaviour: any user LDAP accepts may do anything.
	Policy *policy.Store
	// Repositories, when set (AUTH_CREATE_REPOSITORIES), makes sure the
	// repository of an allowed upload start exists before answering 204.
	Repositories *RepositoryCreator
}

// NewHandler serves /auth (any method), /healthz and /readyz with no cache, no
// limits and no grace. realm goes into the Basic challenge; Config.Validate
// keeps it to printable ASCII without quotes.
func NewHandler(auth Authenticator, realm string, logger *slog.Logger) http.Handler {
	return NewHandlerWith(auth, Options{Realm: realm, Logger: logger})
}

// NewHandlerWith serves /auth, /healthz and /readyz as configured by opts.
func NewHandlerWith(auth Authenticator, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	h := &authHandler{
		auth:      auth,
		challenge: []string{`Basic realm="` + quoteEscape(opts.Realm) + `", charset="UTF-8"`},
		logger:    opts.Logger,
		now:       opts.Now,
		metrics:   opts.Metrics,
		keys:      newKeyer(),
		grace:     opts.GracePeriod,
		hitLevel:  slog.LevelInfo,
		policy:    opts.Policy,
		repos:     opts.Repositories,
	}
	if opts.QuietHits {
		h.hitLevel = slog.LevelDebug
	}
	if opts.CacheTTL > 0 || opts.GracePeriod > 0 {
		h.cache = newCredCache(opts.CacheTTL, opts.GracePeriod, opts.CacheSize, opts.Metrics)
	}
	if opts.CacheTTL > 0 {
		h.failures = newFailureMemory()
	}
	if opts.Limits.enabled() {
		h.limiter = newLimiter(opts.Limits)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth", h)
	mux.HandleFunc("/healthz", healthz)
	mux.Handle("/readyz", &readiness{pinger: opts.Pinger, now: opts.Now, logger: opts.Logger})
	return router{auth: h, mux: mux}
}

// router sends /auth, every request nginx makes, straight to its handler and
// the rest through the mux: pattern matching is a fifth of a warm hit.
type router struct {
	auth *authHandler
	mux  *http.ServeMux
}

func (rt router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/auth" {
		rt.auth.ServeHTTP(w, r)
		return
	}
	rt.mux.ServeHTTP(w, r)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

type authHandler struct {
	auth      Authenticator
	challenge []string // the WWW-Authenticate value, shared by every 401
	logger    *slog.Logger
	now       func() time.Time
	metrics   *Metrics
	keys      *keyer
	cache     *credCache     // nil: no cache and no grace
	failures  *failureMemory // nil with the cache off
	grace     time.Duration
	limiter   *limiter // nil: no limits
	flights   singleflight.Group
	hitLevel  slog.Level         // of the line for an allowed cache hit
	policy    *policy.Store      // nil: no policy
	repos     *RepositoryCreator // nil: no create-on-push
}

// How a request was answered with respect to the cache, for the log line.
const (
	cacheNone  = ""      // no credentials to look up
	cacheHit   = "hit"   // answered from the cache
	cacheMiss  = "miss"  // asked LDAP (or refused by the limiter)
	cacheGrace = "grace" // LDAP unavailable; allowed from the grace cache
)

// decision is what one /auth request came to, for its single log line.
type decision struct {
	status int
	result string   // resultAllow, resultDeny401, ...
	user   string   // canonical when known, else as given
	header []string // X-Auth-Request-User on 204
	cache  string   // cacheHit, ...
	shared bool     // waited for another request's identical LDAP check
	reason error

	subject *policy.Subject // the user, for the policy (on an allowed identity)
	req     regpath.Request // what the request does, when parsed
	parsed  bool
	rule    string // what decided: a policy rule, "default", "login", "required-group"
	denial  string // the 403's reason for the user (X-Auth-Reason); never for a 401
}

// Fixed denials. The unsupported one does not echo the path.
const (
	reasonUnsupported = "unsupported registry request"
	reasonNotInGroup  = " is not in a group allowed to use this registry"
)

// Header values shared by every response; net/http only reads them.

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	d := h.decide(r, start)
	if h.repos != nil && d.status == http.StatusNoContent {
		d = h.ensureRepository(r, d)
	}
	hdr := w.Header()
	switch d.status {
	case http.StatusNoContent, http.StatusForbidden:
		// The user proved the password either way: nginx's access log names
		// who was allowed or denied, with what the request does, so that "who
		// pushed this tag" is one grep of it, outcome included.
		if d.header != nil {
			hdr[UserHeader] = d.header
		} else if d.user != "" && d.status == http.StatusForbidden {
			hdr[UserHeader] = []string{d.user}
		}
		if !d.parsed && h.policy == nil {
			d.req, d.parsed = parseOriginal(r.Header)
		}
		if d.parsed && d.req.Repository != "" {
			hdr[RepositoryHeader] = []string{d.req.Repository}
			if d.req.Reference != "" {
				hdr[ReferenceHeader] = []string{d.req.Reference}
			}
		}
		if d.status == http.StatusForbidden && d.denial != "" {
			hdr[ReasonHeader] = []string{reasonValue(d.denial)}
		}
	case http.StatusUnauthorized:
		hdr["Www-Authenticate"] = h.challenge
	}
	w.WriteHeader(d.status)
	elapsed := h.now().Sub(start)
	h.metrics.decisions[d.result].Inc()
	if d.cache == cacheHit {
		h.metrics.latencyHit.Observe(elapsed.Seconds())
	} else {
		h.metrics.latencyMiss.Observe(elapsed.Seconds())
	}
	h.log(r, d, elapsed)
}

func (h *authHandler) decide(r *http.Request, now time.Time) decision {
	var header string
	switch values := r.Header["Authorization"]; len(values) {
	case 0:
	case 1:
		header = values[0]
	default:
		return decision{status: http.StatusUnauthorized, result: resultDeny401, reason: errSeveralHeaders}
	}
	user, password, err := parseBasic(header)
	if err != nil {
		return decision{status: http.StatusUnauthorized, result: resultDeny401, reason: err}
	}
	key := h.keys.key(user, password)
	if h.cache != nil {
		if e, ok := h.cache.get(key, now); ok {
			h.metrics.cacheHits.Inc()
			return h.authorize(r, decision{status: http.StatusNoContent, result: resultAllow, user: e.id.Name,
				header: e.userHeader, cache: cacheHit, subject: e.subject})
		}
		h.metrics.cacheMisses.Inc()
	}

	if h.failures != nil && h.failures.has(key, now) {
		return decision{status: http.StatusUnauthorized, result: resultDeny401, user: user, cache: cacheMiss, reason: errRepeatedFailure}
	}
	addr := firstHeader(r.Header, "X-Real-Ip")
	if h.limiter != nil {
		if scope, ok := h.limiter.allow(user, addr, now); !ok {
			// The same answer as a wrong password: nginx turns a 429 into a 500,
			// and a different answer would tell an attacker something.
			return decision{status: http.StatusUnauthorized, result: resultLimited, user: user, cache: cacheMiss,
				reason: fmt.Errorf("%w (%s)", errLimited, scope)}
		}
	}

	id, err, shared := h.check(r.Context(), key, user, password)
	d := decision{user: user, cache: cacheMiss, shared: shared, reason: err}
	switch {
	case err == nil:
		if h.limiter != nil {
			h.limiter.success(user, addr, h.now())
		}
		d.status, d.result, d.user, d.header = http.StatusNoContent, resultAllow, id.Name, []string{id.Name}
		if h.policy != nil {
			d.subject = policy.NewSubject(id)
		}
		return h.authorize(r, d)
	case errors.Is(err, ldapauth.ErrUnavailable):
		if h.grace > 0 {
			if e, ok := h.cache.graceGet(key, now); ok {
				h.metrics.graceAllows.Inc()
				return h.authorize(r, decision{status: http.StatusNoContent, result: resultAllow, user: e.id.Name, header: e.userHeader,
					cache: cacheGrace, shared: shared, reason: err, subject: e.subject})
			}
		}
		d.status, d.result = http.StatusServiceUnavailable, resultError
	case errors.Is(err, ldapauth.ErrInvalidCredentials):
		if h.failures != nil {
			h.failures.add(key, h.now())
		}
		if h.limiter != nil {
			for _, scope := range h.limiter.failure(user, addr, h.now()) {
				h.metrics.trips[scope].Inc()
				h.logger.LogAttrs(r.Context(), slog.LevelWarn, "failed-login limit reached; further attempts refused without asking ldap",
					slog.String("scope", scope), slog.String("user", clip(user, maxLoggedUser)),
					slog.String("client_ip", clip(addr, 64)), slog.Duration("window", h.limiter.limits.Window))
			}
		}
		d.status, d.result = http.StatusUnauthorized, resultDeny401
	case errors.Is(err, ldapauth.ErrForbidden):
		// Not cached: group changes take effect on the next request, and a 403
		// ends a docker session at once, so there is no stream of them to save.
		// The password is proven, so the reason may name the user as given.
		d.status, d.result = http.StatusForbidden, resultDeny403
		d.rule, d.denial = "required-group", user+reasonNotInGroup
	default:
		d.status, d.result = http.StatusServiceUnavailable, resultError
	}
	return d
}

// authorize applies the policy, if any, to a request whose identity is
// established (d is a 204). It parses the original method and URI nginx
// passed; a request the parser refuses is denied as unsupported.
func (h *authHandler) authorize(r *http.Request, d decision) decision {
	if h.policy == nil {
		return d
	}
	methods, uris := r.Header["X-Original-Method"], r.Header["X-Original-Uri"]
	var err error
	if len(methods) != 1 || len(uris) != 1 {
		err = errOriginal
	} else {
		d.req, err = regpath.Parse(methods[0], uris[0])
	}
	if err != nil {
		d.status, d.result, d.header, d.rule, d.denial = http.StatusForbidden, resultDeny403, nil, "", reasonUnsupported
		d.reason = err
		return d
	}
	d.parsed = true
	v := h.policy.Policy().Authorize(d.subject, d.req)
	d.rule = v.Rule
	if !v.Allowed {
		// The denial is the reason to log, even over a grace allowance's
		// "ldap unavailable".
		d.status, d.result, d.header, d.denial, d.reason = http.StatusForbidden, resultDeny403, nil, v.Reason, nil
	}
	return d
}

// ensureRepository creates the repository of an allowed upload start (a
// blob upload or mount, the first write of every push) when it does not
// exist. Only there: a pull or a denied request never creates anything, and
// every push starts with one. It answers before nginx does, so the upload
// finds the repository; whatever happens, the request stays allowed.
func (h *authHandler) ensureRepository(r *http.Request, d decision) decision {
	if !d.parsed && h.policy == nil {
		// No policy: any user LDAP accepts may push anywhere.
		d.req, d.parsed = parseOriginal(r.Header)
	}
	if !d.parsed || d.req.Action != regpath.ActionPush || d.req.Endpoint != regpath.EndpointUploadStart {
		return d
	}
	h.repos.ensure(r.Context(), d.user, firstHeader(r.Header, "X-Ecr-Registry-Id"), firstHeader(r.Header, "X-Ecr-Region"), d.req.Repository)
	return d
}

// errOriginal: nginx must send exactly one X-Original-Method and X-Original-URI.
var errOriginal = fmt.Errorf("%w: want one X-Original-Method and one X-Original-URI header", regpath.ErrUnsupported)

// errLimited is the logged reason of a request refused by the limiter.
var (
	errLimited         = errors.New("too many failed logins; not asking ldap")
	errRepeatedFailure = errors.New("the same credentials failed moments ago; not asking ldap")
)

// check asks the authenticator, sharing one call among concurrent requests
// with the same credentials. The call runs without the caller's cancellation
// (the authenticator has its own timeout), so that one impatient client does
// not fail the others waiting on it; a success is cached before the group
// ends, so a request arriving later finds the cache.
func (h *authHandler) check(ctx context.Context, key credKey, user, password string) (ldapauth.Identity, error, bool) {
	led := false
	ch := h.flights.DoChan(string(key[:]), func() (any, error) {
		led = true
		if h.cache != nil {
			// A request that missed the cache just as an earlier group for the
			// same credentials ended finds that group's answer here.
			if e, ok := h.cache.get(key, h.now()); ok {
				return e.id, nil
			}
		}
		h.metrics.ldapChecks.Inc()
		id, err := h.auth.Authenticate(context.WithoutCancel(ctx), user, password)
		if err == nil && h.cache != nil {
			h.cache.put(key, id, h.keys.key(id.Name, password), h.now())
		}
		return id, err
	})
	select {
	case res := <-ch:
		if !led {
			h.metrics.shared.Inc()
		}
		id, _ := res.Val.(ldapauth.Identity)
		return id, res.Err, !led
	case <-ctx.Done():
		return ldapauth.Identity{}, fmt.Errorf("%w: request ended while waiting: %w", ldapauth.ErrUnavailable, context.Cause(ctx)), false
	}
}

func firstHeader(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h *authHandler) log(r *http.Request, d decision, elapsed time.Duration) {
	level, msg := slog.LevelInfo, "auth decision"
	switch {
	case d.cache == cacheHit:
		level = h.hitLevel
	case d.cache == cacheGrace && d.status == http.StatusNoContent:
		level, msg = slog.LevelWarn, "ldap unavailable; allowing from grace cache"
	case d.status == http.StatusServiceUnavailable:
		level = slog.LevelError
	}
	if !h.logger.Enabled(r.Context(), level) {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("decision", d.result),
		slog.Int("status", d.status),
		slog.String("user", clip(d.user, maxLoggedUser)),
		slog.String("client_ip", clip(firstHeader(r.Header, "X-Real-Ip"), 64)),
		slog.String("method", clip(firstHeader(r.Header, "X-Original-Method"), 32)),
		slog.String("uri", clip(firstHeader(r.Header, "X-Original-Uri"), maxLoggedURI)),
		slog.String("cache", d.cache),
		slog.Duration("duration", elapsed),
		{}, {}, {}, {}, {}, {}, {},
	}
	n := 8
	if !d.parsed && h.policy == nil {
		// Without a policy nothing was parsed to decide; parse for the audit
		// trail only, and leave the fields out of a request it refuses.
		d.req, d.parsed = parseOriginal(r.Header)
	}
	if d.parsed {
		attrs[n] = slog.String("action", string(d.req.Action))
		attrs[n+1] = slog.String("repository", d.req.Repository)
		attrs[n+2] = slog.String("reference", d.req.Reference)
		n += 3
		if d.req.MountFrom != "" {
			attrs[n] = slog.String("mount_from", d.req.MountFrom)
			n++
		}
	}
	if d.rule != "" {
		attrs[n] = slog.String("rule", d.rule)
		n++
	}
	if d.shared {
		attrs[n] = slog.Bool("shared", true)
		n++
	}
	switch {
	case d.reason != nil:
		attrs[n] = slog.String("reason", d.reason.Error())
		n++
	case d.denial != "":
		attrs[n] = slog.String("reason", d.denial)
		n++
	}
	h.logger.LogAttrs(r.Context(), level, msg, attrs[:n]...)
}

// clip shortens s for a log line and makes it valid UTF-8.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// quoteEscape escapes s for an HTTP quoted-string.
func quoteEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
