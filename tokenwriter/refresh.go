package tokenwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"
)

// ecrAPI is the part of the ECR client tokenwriter uses.
type ecrAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

var _ ecrAPI = (*ecr.Client)(nil)

// credentialsSource is the SDK's credentials cache: what minted the token, and
// when that stops working.
type credentialsSource interface {
	Retrieve(ctx context.Context) (aws.Credentials, error)
}

// Refresher fetches ECR tokens and puts them in front of nginx, one token per
// registry of Config.Routes.
type Refresher struct {
	api        ecrAPI            // for AWS_REGION, and any region without its own client
	clients    map[string]ecrAPI // by region
	reloader   Reloader          // nil: nginx is not reloaded
	creds      credentialsSource // nil: the credentials' expiry is not known
	probe      prober            // nil: the tokens in place are never probed
	cfg        Config
	routes     []Route
	registries []Registry
	multi      bool // ECR_REGISTRIES is set
	test       []string
	backoff    backoff
	now        func() time.Time
	log        *slog.Logger
	state      *status
	wake       chan struct{} // a probe found a token in place rejected
	installMu  sync.Mutex    // one include write, test and reload at a time (refresh, probe)
}

// NewRefresher returns a Refresher for a validated cfg. A nil reloader means
// nginx is never reloaded. api serves every region until fromConfig gives
// other regions their own client.
func NewRefresher(api ecrAPI, reloader Reloader, cfg Config, logger *slog.Logger) *Refresher {
	routes, registries, multi, err := cfg.Routes()
	if err != nil {
		// cfg was not validated: serve what single mode would, and say so.
		logger.Error("invalid ECR_REGISTRIES; using ECR_REGISTRY_ID and ECR_REGISTRY_HOST", "error", err)
		cfg.Registries = ""
		routes, registries, multi, _ = cfg.Routes()
	}
	return &Refresher{
		api:        api,
		reloader:   reloader,
		cfg:        cfg,
		routes:     routes,
		registries: registries,
		multi:      multi,
		test:       strings.Fields(cfg.NginxTestCommand),
		backoff:    backoff{min: cfg.RetryMin, max: cfg.RetryMax, rand: rand.Float64},
		now:        time.Now,
		log:        logger,
		state:      newStatus(registries),
		wake:       make(chan struct{}, 1),
	}
}

// ErrIncomplete reports a refresh that could not write the include because
// a registry has no token yet: the include always carries one per registry.
var ErrIncomplete = errors.New("no ecr token yet for every registry")

// Refresh fetches a token for every registry, writes the include, tests it
// with nginx and reloads nginx. A registry whose fetch fails keeps the token
// it has in place, and the others are still replaced; the error names every
// registry that failed. The include is written only when every registry has
// a token; on any failure to write, test or load it, it is left, or put
// back, as it was.
func (r *Refresher) Refresh(ctx context.Context) error {
	all := make([]int, len(r.registries))
	for i := range all {
		all[i] = i
	}
	return r.refreshRegistries(ctx, all)
}

// refreshRegistries refreshes the registries in due (indexes into
// r.registries) and schedules their next refresh.
func (r *Refresher) refreshRegistries(ctx context.Context, due []int) error {
	now := r.now()
	r.state.attempted(due, now)
	tokens := r.state.tokens()
	var errs []error
	var fresh, failed []int
	errOf := map[int]error{}
	for _, i := range due {
		tok, err := r.fetch(ctx, i)
		if err != nil {
			errOf[i] = r.named(i, err)
			errs = append(errs, errOf[i])
			failed = append(failed, i)
			continue
		}
		tokens[i] = tok
		fresh = append(fresh, i)
	}
	if len(fresh) > 0 {
		var missing []string
		for i, t := range tokens {
			if t.Value == "" {
				missing = append(missing, r.registries[i].String())
			}
		}
		var err error
		if len(missing) > 0 {
			err = fmt.Errorf("%w: none for %s", ErrIncomplete, strings.Join(missing, ", "))
		} else {
			err = r.install(ctx, tokens)
		}
		if err != nil {
			errs = append(errs, err)
			for _, i := range fresh {
				errOf[i] = err
			}
			failed, fresh = append(failed, fresh...), nil
		}
	}
	var credsExpires time.Time
	if len(fresh) > 0 {
		credsExpires = r.credentialsExpiry(ctx)
	}
	now = r.now()
	for _, i := range fresh {
		r.state.succeeded(i, tokens[i], credsExpires, now)
		until := r.state.registryValidUntil(i)
		next := nextAfterSuccess(now, until, r.cfg.RefreshInterval, r.cfg.ExpiryMargin)
		r.state.setNext(i, next)
		r.log.Info("ecr token refreshed", "registry", tokens[i].Host, "registry_id", r.registries[i].String(),
			"expires", tokens[i].ExpiresAt, "valid_until", until, "next_refresh", next)
		if life := until.Sub(now); life <= r.cfg.ReadyMargin {
			r.log.Warn("a fresh ecr token lives no longer than TOKEN_READY_MARGIN: /readyz stays unready; lower TOKEN_READY_MARGIN",
				"registry_id", r.registries[i].String(), "valid_for", life.Round(time.Second), "ready_margin", r.cfg.ReadyMargin)
		}
	}
	for _, i := range failed {
		n := r.state.failed(i)
		until := r.state.registryValidUntil(i) // zero while there is none
		next := nextAfterFailure(now, until, r.backoff.delay(n-1), min(r.cfg.RetryMin, time.Second))
		r.state.setNext(i, next)
		r.log.Warn("ecr token refresh failed", "registry_id", r.registries[i].String(), "error", errOf[i],
			"failures", n, "token_valid_until", until, "next_refresh", next)
	}
	return errors.Join(errs...)
}

// named prefixes err with the registry it is about, in multi-registry mode.
func (r *Refresher) named(i int, err error) error {
	if !r.multi {
		return err
	}
	return fmt.Errorf("registry %s: %w", r.registries[i], err)
}

// credentialsExpiry is when the credentials that minted the tokens just
// fetched expire, zero when they do not or are unknown. The SDK's cache hands
// back the credentials it just signed with.
func (r *Refresher) credentialsExpiry(ctx context.Context) time.Time {
	if r.creds == nil {
		return time.Time{}
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	c, err := r.creds.Retrieve(ctx)
	if err != nil || !c.CanExpire {
		return time.Time{}
	}
	return c.Expires
}

// install writes the include for tokens (one per registry), tests it and
// reloads nginx, putting the previous include back on any failure.
func (r *Refresher) install(ctx context.Context, tokens []Token) error {
	r.installMu.Lock()
	defer r.installMu.Unlock()
	path, mode := r.cfg.TokenFile, os.FileMode(r.cfg.TokenFileMode)
	prev, err := readCurrent(path)
	if err != nil {
		return err
	}
	undo := func(err error) error {
		if rerr := restore(path, prev, mode); rerr != nil {
			return errors.Join(err, fmt.Errorf("put back previous include: %w", rerr))
		}
		return err
	}
	if err := writeAtomic(path, renderFlagged(r.routes, tokens, r.multi, r.state.rejectedFlags(tokens)), mode); err != nil {
		return undo(err)
	}
	secrets := make([]string, len(tokens))
	for i, t := range tokens {
		secrets[i] = string(t.Value)
	}
	if err := runCommand(ctx, r.test, secrets...); err != nil {
		return undo(fmt.Errorf("%w: %w", ErrNginxTest, err))
	}
	if r.reloader != nil {
		if err := r.reloader.Reload(ctx); err != nil {
			return undo(err)
		}
	}
	if err := saveTokens(savedFile(path), r.registries, tokens, mode); err != nil {
		// Only a restart with a registry failing misses it.
		r.log.Warn("cannot save the tokens in place for the next start", "error", err)
	}
	return nil
}

// seed takes the tokens the last install saved as the tokens in place, for
// the registries that have none yet. Their next refresh stays due at once.
func (r *Refresher) seed() {
	saved, err := loadTokens(savedFile(r.cfg.TokenFile), r.registries)
	if err != nil {
		r.log.Warn("cannot read the saved tokens; starting without", "error", err)
		return
	}
	r.state.seed(saved)
}

// fetch asks ECR for registry i's token: in multi-registry mode always with
// registryIds naming it (cross-account registries need it), in single mode
// only when ECR_REGISTRY_ID is set.
func (r *Refresher) fetch(ctx context.Context, i int) (Token, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	reg := r.registries[i]
	in := &ecr.GetAuthorizationTokenInput{}
	if reg.AccountID != "" {
		in.RegistryIds = []string{reg.AccountID}
	}
	out, err := r.clientFor(reg.Region).GetAuthorizationToken(ctx, in)
	if err != nil {
		return Token{}, fmt.Errorf("ecr GetAuthorizationToken: %w", err)
	}
	return tokenFrom(out.AuthorizationData, reg, r.now())
}

func (r *Refresher) clientFor(region string) ecrAPI {
	if c, ok := r.clients[region]; ok {
		return c
	}
	return r.api
}

// Loop refreshes every registry on its own schedule until ctx is done, then
// returns nil. A registry's schedule follows its token in place and the
// credentials that minted it, whichever expires first; registries due within
// a moment of each other share one reload. A rejection found by the probe
// brings that registry's refresh forward (see ProbeLoop).
func (r *Refresher) Loop(ctx context.Context) error {
	window := min(r.cfg.RetryMin, time.Second)
	for {
		due, earliest := r.state.due(r.now(), window)
		if len(due) == 0 {
			if !r.waitUntil(ctx, earliest) {
				return nil
			}
			continue
		}
		r.refreshRegistries(ctx, due) // logs each registry's outcome
		if ctx.Err() != nil {
			return nil
		}
	}
}

// nextAfterSuccess is when to refresh after a success at now: see the
// function of the same name, applied to the tokens in place or their
// credentials, whichever expires first.
func (r *Refresher) nextAfterSuccess(now time.Time) time.Time {
	return nextAfterSuccess(now, r.state.validUntil(), r.cfg.RefreshInterval, r.cfg.ExpiryMargin)
}

// waitUntil sleeps until t, or less when a probe reports a token in place
// rejected (the probe has brought that registry's schedule forward). It
// reports whether ctx is still live.
func (r *Refresher) waitUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(t.Sub(r.now()))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
	case <-r.wake:
	}
	return true
}

// ProbeLoop tries each registry's token in place every ProbeInterval until
// ctx is done; a rejected token brings that registry's refresh forward, at
// most once per RejectedRefreshGap, and wakes Loop.
func (r *Refresher) ProbeLoop(ctx context.Context) error {
	if r.probe == nil || r.cfg.ProbeInterval <= 0 {
		return nil
	}
	tick := time.NewTicker(r.cfg.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for i, tok := range r.state.tokens() {
			if tok.Value == "" {
				continue
			}
			err := r.probe.Probe(ctx, tok)
			switch {
			case err == nil:
				if r.state.accepted(i, tok.Value) {
					r.reinstall(ctx, "the registry accepts the ecr token again")
				}
			case errors.Is(err, ErrTokenRejected):
				was := r.state.isRejected(i)
				wait, current := r.state.rejected(i, tok.Value, r.now(), r.cfg.RejectedRefreshGap)
				if !current {
					continue // replaced while the probe ran
				}
				if !was {
					// Until the refresh lands, nginx answers 503 "renewing" on
					// every path of this registry instead of ECR's refusals.
					r.reinstall(ctx, "the registry rejected the ecr token in place")
				}
				r.log.Warn("the registry rejected the ecr token in place; refreshing now",
					"registry", tok.Host, "registry_id", r.registries[i].String(), "wait", max(wait, 0))
				select {
				case r.wake <- struct{}{}:
				default: // a wake-up is already pending
				}
			case ctx.Err() == nil:
				// Says nothing about the token; nginx sees the same registry.
				r.log.Debug("registry probe failed", "registry", tok.Host, "error", err)
			}
		}
	}
}

// reinstall writes the include again for the tokens in place, so that nginx
// follows a change of their rejected flags.
func (r *Refresher) reinstall(ctx context.Context, why string) {
	tokens := r.state.tokens()
	for _, t := range tokens {
		if t.Value == "" {
			return
		}
	}
	if err := r.install(ctx, tokens); err != nil {
		r.log.Warn("cannot rewrite the include", "reason", why, "error", err)
		return
	}
	r.log.Info("include rewritten", "reason", why)
}

// Once refreshes until a refresh gives every registry a token, retrying with
// backoff for at most within. Its error names the registries that failed.
func (r *Refresher) Once(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		err := r.Refresh(ctx)
		if err == nil {
			for i, tok := range r.state.tokens() {
				r.log.Info("ecr token written", "registry", tok.Host, "registry_id", r.registries[i].String(), "expires", tok.ExpiresAt)
			}
			return nil
		}
		if ctx.Err() != nil && last != nil {
			err = last // the deadline cut this attempt short; the one before says why
		}
		if permanent(err) {
			// Retrying wrong credentials only delays the answer (and, with
			// -once, start-up) by minutes.
			return fmt.Errorf("no ecr token: %w", err)
		}
		delay := r.backoff.delay(attempt)
		r.log.Warn("ecr token refresh failed", "error", err, "attempt", attempt+1, "retry_in", delay)
		if ctx.Err() != nil || !sleep(ctx, delay) {
			return fmt.Errorf("no ecr token within %s: %w", within, err)
		}
		last = err
	}
}

// permanentCodes are AWS error codes that no retry can fix: the credentials or
// their rights are wrong.
var permanentCodes = map[string]bool{
	"UnrecognizedClientException":         true,
	"InvalidSignatureException":           true,
	"IncompleteSignatureException":        true,
	"MissingAuthenticationTokenException": true,
	"InvalidClientTokenId":                true,
	"SignatureDoesNotMatch":               true,
	"AccessDeniedException":               true,
}

// permanent reports whether err is an AWS answer that a retry cannot change.
func permanent(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && permanentCodes[apiErr.ErrorCode()]
}

// sleep waits for d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
