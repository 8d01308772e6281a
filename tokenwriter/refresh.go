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

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"
)

// ecrAPI is the part of the ECR client tokenwriter uses.
type ecrAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

var _ ecrAPI = (*ecr.Client)(nil)

// Refresher fetches ECR tokens and puts them in front of nginx.
type Refresher struct {
	api      ecrAPI
	reloader Reloader // nil: nginx is not reloaded
	cfg      Config
	test     []string
	backoff  backoff
	now      func() time.Time
	log      *slog.Logger
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
	}
}

// Refresh fetches a token, writes the include, tests it with nginx and reloads
// nginx. On any failure the include is left, or put back, as it was.
func (r *Refresher) Refresh(ctx context.Context) (Token, error) {
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

// Loop refreshes on schedule until ctx is done, then returns nil.
func (r *Refresher) Loop(ctx context.Context) error {
	var expiresAt time.Time // of the token in place; zero while unknown
	failures := 0
	for {
		tok, err := r.Refresh(ctx)
		if ctx.Err() != nil {
			return nil
		}
		now := r.now()
		var next time.Time
		if err == nil {
			failures = 0
			expiresAt = tok.ExpiresAt
			next = nextAfterSuccess(now, expiresAt, r.cfg.RefreshInterval, r.cfg.ExpiryMargin)
			r.log.Info("ecr token refreshed", "registry", tok.Host, "expires", expiresAt, "next_refresh", next)
		} else {
			next = nextAfterFailure(now, expiresAt, r.backoff.delay(failures), min(r.cfg.RetryMin, time.Second))
			failures++
			r.log.Warn("ecr token refresh failed", "error", err, "failures", failures, "token_expires", expiresAt, "next_refresh", next)
		}
		if !sleep(ctx, next.Sub(r.now())) {
			return nil
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
