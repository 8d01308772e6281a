package authsvc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

// Authenticator checks a username and password. Errors wrapping
// ldapauth.ErrInvalidCredentials mean 401 and ldapauth.ErrForbidden 403; any other
// error (ldapauth.ErrUnavailable above all) means the answer is unknown: 503.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (ldapauth.Identity, error)
}

var _ Authenticator = (*ldapauth.Client)(nil)

// UserHeader carries the authenticated name back to nginx.
const UserHeader = "X-Auth-Request-User"

// Longest user and URI written to a log line.
const (
	maxLoggedUser = ldapauth.MaxUsernameBytes
	maxLoggedURI  = 1024
)

// NewHandler serves /auth (any method) and /healthz. realm goes into the Basic
// challenge; Config.Validate keeps it to printable ASCII without quotes.
func NewHandler(auth Authenticator, realm string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &authHandler{
		auth:      auth,
		challenge: `Basic realm="` + quoteEscape(realm) + `", charset="UTF-8"`,
		logger:    logger,
	}
	mux := http.NewServeMux()
	mux.Handle("/auth", h)
	mux.HandleFunc("/healthz", healthz)
	return mux
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

type authHandler struct {
	auth      Authenticator
	challenge string
	logger    *slog.Logger
}

// decision is what one /auth request came to, for its single log line.
type decision struct {
	status int
	user   string
	reason error
}

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	d := h.decide(r)
	switch d.status {
	case http.StatusNoContent:
		w.Header().Set(UserHeader, d.user)
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", h.challenge)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(d.status)
	h.log(r, d, time.Since(start))
}

func (h *authHandler) decide(r *http.Request) decision {
	var header string
	switch values := r.Header.Values("Authorization"); len(values) {
	case 0:
	case 1:
		header = values[0]
	default:
		return decision{status: http.StatusUnauthorized, reason: errSeveralHeaders}
	}
	user, password, err := parseBasic(header)
	if err != nil {
		return decision{status: http.StatusUnauthorized, reason: err}
	}
	id, err := h.auth.Authenticate(r.Context(), user, password)
	switch {
	case err == nil:
		return decision{status: http.StatusNoContent, user: id.Name}
	case errors.Is(err, ldapauth.ErrUnavailable):
		return decision{status: http.StatusServiceUnavailable, user: user, reason: err}
	case errors.Is(err, ldapauth.ErrInvalidCredentials):
		return decision{status: http.StatusUnauthorized, user: user, reason: err}
	case errors.Is(err, ldapauth.ErrForbidden):
		return decision{status: http.StatusForbidden, user: user, reason: err}
	default:
		return decision{status: http.StatusServiceUnavailable, user: user, reason: err}
	}
}

func (h *authHandler) log(r *http.Request, d decision, elapsed time.Duration) {
	level, verdict := slog.LevelInfo, "allow"
	switch d.status {
	case http.StatusUnauthorized:
		verdict = "deny"
	case http.StatusForbidden:
		verdict = "forbidden"
	case http.StatusServiceUnavailable:
		level, verdict = slog.LevelError, "error"
	}
	attrs := []slog.Attr{
		slog.String("decision", verdict),
		slog.Int("status", d.status),
		slog.String("user", clip(d.user, maxLoggedUser)),
		slog.String("client_ip", clip(r.Header.Get("X-Real-IP"), 64)),
		slog.String("method", clip(r.Header.Get("X-Original-Method"), 32)),
		slog.String("uri", clip(r.Header.Get("X-Original-URI"), maxLoggedURI)),
		slog.Duration("elapsed", elapsed),
	}
	if d.reason != nil {
		attrs = append(attrs, slog.String("reason", d.reason.Error()))
	}
	h.logger.LogAttrs(r.Context(), level, "auth decision", attrs...)
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
