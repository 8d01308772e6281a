package tokenwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
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

// Refresher fetches ECR tokens and puts them in front of nginx.
type Refresher struct {
	api      ecrAPI
	reloader Reloader          // nil: nginx is not reloaded
	creds    credentialsSource // nil: the credentials' expiry is not known
	probe    prober            // nil: the token in place is never probed
	cfg      Config
	test     []string
	backoff  backoff
	now      func() time.Time
	log      *slog.Logger
	state    *status
	wake     chan struct{} // a probe found the token in place rejected
}

// NewRefresher returns a Refresher for a validated cfg. A nil reloader means
// nginx is never reloaded.
func NewRefresher(api ecrAPI, reloader Reloader, cfg Config, logger *slog.Logger) *Refresher {
	return &Refresher{
		api:      api,
		reloader: reloader,
		cfg:      cfg,
		test:     strings.Fields(cfg.NginxTestCommand),
		backoff:  backoff{min: cfg.RetryMin, max: cfg.RetryMax, rand: rand.Float64},
		now:      time.Now,
		log:      logger,
		state:    &status{},
		wake:     make(chan struct{}, 1),
	}
}

// Refresh fetches a token, writes the include, tests it with nginx and reloads
// nginx. On any failure the include is left, or put back, as it was.
func (r *Refresher) Refresh(ctx context.Context) (Token, error) {
	r.state.attempted(r.now())
	tok, err := r.refresh(ctx)
	if err != nil {
		r.state.failed()
		return Token{}, err
	}
	r.state.succeeded(tok, r.credentialsExpiry(ctx), r.now())
	return tok, nil
}

// credentialsExpiry is when the credentials that minted the token in place
// expire, zero when they do not or are unknown. The SDK's cache hands back
// the credentials it just signed with.
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

func (r *Refresher) refresh(ctx context.Context) (Token, error) {
	tok, err := r.fetch(ctx)
	if err != nil {
		return Token{}, err
	}
	path, mode := r.cfg.TokenFile, os.FileMode(r.cfg.TokenFileMode)
	prev, err := readCurrent(path)
	if err != nil {
		return Token{}, err
	}
	undo := func(err error) error {
		if rerr := restore(path, prev, mode); rerr != nil {
			return errors.Join(err, fmt.Errorf("put back previous include: %w", rerr))
		}
		return err
	}
	if err := writeAtomic(path, Render(tok), mode); err != nil {
		return Token{}, undo(err)
	}
	if err := runCommand(ctx, r.test, string(tok.Value)); err != nil {
		return Token{}, undo(fmt.Errorf("%w: %w", ErrNginxTest, err))
	}
	if r.reloader != nil {
		if err := r.reloader.Reload(ctx); err != nil {
			return Token{}, undo(err)
		}
	}
	return tok, nil
}

func (r *Refresher) fetch(ctx context.Context) (Token, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	in := &ecr.GetAuthorizationTokenInput{}
	if r.cfg.RegistryID != "" {
		in.RegistryIds = []string{r.cfg.RegistryID}
	}
	out, err := r.api.GetAuthorizationToken(ctx, in)
	if err != nil {
		return Token{}, fmt.Errorf("ecr GetAuthorizationToken: %w", err)
	}
	return tokenFrom(out.AuthorizationData, r.cfg.RegistryID, r.cfg.RegistryHost, r.now())
}

// Loop refreshes on schedule until ctx is done, then returns nil. The
// schedule follows the token in place and the credentials that minted it,
// whichever expires first; a rejection found by the probe brings the next
// refresh forward (see ProbeLoop).
func (r *Refresher) Loop(ctx context.Context) error {
	failures := 0
	for {
		tok, err := r.Refresh(ctx)
		if ctx.Err() != nil {
			return nil
		}
		now := r.now()
		validUntil := r.state.validUntil() // of the token in place; zero while unknown
		var next time.Time
		if err == nil {
			failures = 0
			next = r.nextAfterSuccess(now)
			r.log.Info("ecr token refreshed", "registry", tok.Host, "expires", tok.ExpiresAt,
				"valid_until", validUntil, "next_refresh", next)
		} else {
			next = nextAfterFailure(now, validUntil, r.backoff.delay(failures), min(r.cfg.RetryMin, time.Second))
			failures++
			r.log.Warn("ecr token refresh failed", "error", err, "failures", failures, "token_valid_until", validUntil, "next_refresh", next)
		}
		if !r.waitForNext(ctx, next.Sub(r.now())) {
			return nil
		}
	}
}

// nextAfterSuccess is when to refresh after a success at now: see the
// function of the same name, applied to the token or its credentials,
// whichever expires first.
func (r *Refresher) nextAfterSuccess(now time.Time) time.Time {
	return nextAfterSuccess(now, r.state.validUntil(), r.cfg.RefreshInterval, r.cfg.ExpiryMargin)
}

// waitForNext sleeps for d, or less when a probe reports the token in place
// rejected: then it returns once RejectedRefreshGap has passed since the last
// attempt. It reports whether ctx is still live.
func (r *Refresher) waitForNext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-r.wake:
	}
	gap := r.state.lastAttemptAt().Add(r.cfg.RejectedRefreshGap).Sub(r.now())
	r.log.Warn("the registry rejected the ecr token in place; refreshing now", "wait", max(gap, 0))
	return sleep(ctx, gap)
}

// ProbeLoop tries the token in place on the registry every ProbeInterval
// until ctx is done, and wakes Loop when the registry rejects it.
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
		tok := r.state.current()
		if tok.Value == "" {
			continue
		}
		err := r.probe.Probe(ctx, tok)
		switch {
		case err == nil:
		case errors.Is(err, ErrTokenRejected):
			r.state.rejected()
			if r.state.current().Value != tok.Value {
				continue // replaced while the probe ran
			}
			select {
			case r.wake <- struct{}{}:
			default: // a wake-up is already pending
			}
		case ctx.Err() == nil:
			// Says nothing about the token; nginx sees the same registry.
			r.log.Debug("registry probe failed", "error", err)
		}
	}
}

// Once refreshes until one refresh succeeds, retrying with backoff for at most within.
func (r *Refresher) Once(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		tok, err := r.Refresh(ctx)
		if err == nil {
			r.log.Info("ecr token written", "registry", tok.Host, "expires", tok.ExpiresAt)
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
