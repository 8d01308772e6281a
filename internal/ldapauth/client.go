package ldapauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrInvalidCredentials: no such user, several users of that name, a malformed
	// username, an empty password, a wrong password, or an Active Directory account
	// that is disabled or expired. Answer 401.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrForbidden: the password is right but the user is in none of the required
	// groups. Answer 403.
	ErrForbidden = errors.New("not a member of a required group")
	// ErrUnavailable: the directory could not give an answer (dial failure, timeout,
	// server down, service account rejected, unexpected result). Answer 5xx, and
	// never cache it as a denial.
	ErrUnavailable = errors.New("ldap unavailable")
)

// MaxUsernameBytes is the longest username sent to the directory.
const MaxUsernameBytes = 256

// Group membership attributes understood in Config.GroupMemberAttribute.
const (
	MemberAttribute       = "member"       // value: the user's DN (groupOfNames, AD group)
	UniqueMemberAttribute = "uniqueMember" // value: the user's DN (groupOfUniqueNames, Okta)
	MemberUIDAttribute    = "memberUid"    // value: the user's login name (posixGroup)
)

// Defaults for zero values in Config.
const (
	DefaultDialTimeout     = 5 * time.Second
	DefaultTimeout         = 10 * time.Second
	DefaultPoolSize        = 8
	DefaultPoolIdleTimeout = time.Minute
	DefaultNestedDepth     = 8
)

// Config configures a Client. New copies it; the caller's value is not changed.
type Config struct {
	// URLs are the servers, tried in order (see ParseURLs); every one must have
	// the first one's base DN, attribute, scope and filter. URL is the older
	// one-server form, used when URLs is empty.
	URLs []*URL
	URL  *URL

	BindDN       string // service account; empty searches anonymously
	BindPassword string // required with BindDN: an empty-password bind is an anonymous bind

	// Preset fills directory-specific defaults; see the package documentation.
	Preset Preset

	// RequireGroups are group DNs; a user in any one of them is allowed. Empty
	// means any authenticated user is allowed. Compared as DNs, case-insensitively.
	RequireGroups []string
	// GroupBaseDN is where groups are searched; default: the URL's base DN.
	// Setting it (or RequireGroups) makes every Identity carry its Groups.
	GroupBaseDN string
	// GroupFilter narrows the group search; default (objectClass=*).
	GroupFilter string
	// GroupMemberAttribute is member (default), uniqueMember or memberUid.
	GroupMemberAttribute string
	// GroupMembership says where membership is read: MembershipEntries (group
	// entries list their members, the default) or MembershipMemberOf (the user's
	// memberOf attribute lists the groups).
	GroupMembership Membership
	// NestedGroups also resolves groups that contain the user's groups.
	NestedGroups bool
	// NestedMode is how: NestedInChain (Active Directory's matching rule, the
	// activedirectory preset's choice) or NestedWalk (a bounded breadth-first
	// walk, everyone else's).
	NestedMode NestedMode
	// NestedDepth bounds the walk; default 8 levels.
	NestedDepth int

	// ADDomain, when set, is the only domain accepted in DOMAIN\user logins
	// (activedirectory preset only). Compared case-insensitively with the whole
	// value and with its first label ("CORP" matches corp.example.com).
	ADDomain string

	// DialTimeout bounds each connection set-up: TCP connect, TLS handshake or
	// StartTLS, and the service-account bind; default 5s. A server that drops
	// packets costs at most this much before the next one is tried.
	DialTimeout time.Duration
	// Timeout bounds one whole call (Authenticate, Lookup, Ping), dials and
	// LDAP operations included; default 10s. Keep it under the docker client's
	// ~15s patience, and above (number of servers - 1) x DialTimeout, or dead
	// servers ahead of a healthy one use it up (New warns).
	Timeout time.Duration

	// StartTLS upgrades ldap:// connections with the StartTLS operation; a
	// failure is an error, never a fallback to plain text. ldaps:// URLs use TLS
	// from the first byte regardless.
	StartTLS bool
	// TLSConfig is used for ldaps:// and StartTLS (see NewTLSConfig); nil means
	// the system roots. Its ServerName is set per server from the URL's host
	// unless given.
	TLSConfig *tls.Config

	// PoolSize bounds the open connections of each of the two pools (service
	// searches, user binds); default 8.
	PoolSize int
	// PoolIdleTimeout closes connections idle for longer; default 1m. Keep it
	// below the idle timeout of any firewall between authsvc and the directory.
	PoolIdleTimeout time.Duration

	// Metrics receives operation latencies, server health and pool state; nil
	// records nothing.
	Metrics *Metrics
	// Now is the clock (account expiry, back-off); nil means time.Now.
	Now func() time.Time
}

// Identity is an authenticated (or looked-up) user.
type Identity struct {
	DN   string // the user's entry
	Name string // the login attribute's value as the directory spells it: the canonical name
	// Groups are the DNs, as the directory spells them, of every group the user
	// is in (nested ones included when NestedGroups is set). Nil unless group
	// resolution is configured (GroupBaseDN, RequireGroups or memberOf); then
	// never nil, empty for a user in no group.
	Groups []string
}

// Client authenticates users against an LDAP directory served by one or more
// servers. It is safe for concurrent use. It keeps pooled connections; Close
// releases them.
type Client struct {
	url          URL // search parameters, shared by every server
	preset       Preset
	warnings     []string // configWarnings, logged by New
	servers      []*server
	bindDN       string
	bindPassword string
	dialTimeout  time.Duration
	timeout      time.Duration
	startTLS     bool
	ad           bool // Active Directory account rules and login forms
	adDomain     string
	userAttrs    []string // attributes read with the user entry
	groups       groupConfig
	search       *pool // connections bound as the service account
	binds        *pool // connections used for user binds only
	metrics      *Metrics
	now          func() time.Time
	logger       *slog.Logger
}

// New checks cfg and returns a Client. It opens no connection.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	urls := cfg.URLs
	if len(urls) == 0 && cfg.URL != nil {
		urls = []*URL{cfg.URL}
	}
	if len(urls) == 0 {
		return nil, errors.New("ldapauth: URL is required")
	}
	if err := sameSearch(urls); err != nil {
		return nil, fmt.Errorf("ldapauth: %w", err)
	}
	if err := checkTLS(urls, cfg.StartTLS); err != nil {
		return nil, fmt.Errorf("ldapauth: %w", err)
	}
	p, err := lookupPreset(cfg.Preset)
	if err != nil {
		return nil, fmt.Errorf("ldapauth: %w", err)
	}
	preset, _ := ParsePreset(string(cfg.Preset)) // lookupPreset checked it
	c := &Client{
		preset:       preset,
		url:          p.applyURL(*urls[0], omittedByAll(urls)),
		bindDN:       cfg.BindDN,
		bindPassword: cfg.BindPassword,
		dialTimeout:  positive(cfg.DialTimeout, DefaultDialTimeout),
		timeout:      positive(cfg.Timeout, DefaultTimeout),
		startTLS:     cfg.StartTLS,
		ad:           p.activeDirectory,
		adDomain:     cfg.ADDomain,
		metrics:      cfg.Metrics,
		now:          cfg.Now,
		logger:       logger,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.bindDN != "" {
		if _, err := ldap.ParseDN(c.bindDN); err != nil {
			return nil, fmt.Errorf("ldapauth: bind DN %q: %w", c.bindDN, err)
		}
		if c.bindPassword == "" {
			return nil, errors.New("ldapauth: bind DN set without a bind password (an empty-password bind is anonymous)")
		}
	} else if c.bindPassword != "" {
		return nil, errors.New("ldapauth: bind password set without a bind DN")
	}
	if c.adDomain != "" && !c.ad {
		return nil, errors.New("ldapauth: an AD domain needs the activedirectory preset")
	}
	if c.groups, err = newGroupConfig(cfg, p, c.url.BaseDN); err != nil {
		return nil, fmt.Errorf("ldapauth: %w", err)
	}
	c.userAttrs = userAttributes(c.url.Attribute, c.ad, c.groups.membership == MembershipMemberOf)
	backoff := max(minBackoff, c.dialTimeout)
	for _, u := range urls {
		c.servers = append(c.servers, newServer(u, cfg.TLSConfig, c.startTLS, backoff, c.metrics))
	}
	c.warnings = c.configWarnings(cfg.TLSConfig)
	for _, w := range c.warnings {
		logger.Warn(w)
	}
	size := positive(cfg.PoolSize, DefaultPoolSize)
	idle := positive(cfg.PoolIdleTimeout, DefaultPoolIdleTimeout)
	c.search = newPool(c, "search", true, size, idle)
	c.binds = newPool(c, "bind", false, size, idle)
	return c, nil
}

func positive[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Close closes the idle pooled connections; connections in use are closed when
// they are returned. The Client must not be used afterwards.
func (c *Client) Close() error {
	c.search.close()
	c.binds.close()
	return nil
}

// Authenticate checks username and password, then the required groups.
// Malformed usernames and empty passwords are refused before any network
// traffic. Surrounding whitespace is trimmed from the username, so " Bob " and
// "bob" are the same login, and Identity.Name is the directory's spelling.
// See the package errors for what each outcome means.
func (c *Client) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	login, err := c.parseLogin(username)
	if err != nil {
		return Identity{}, err
	}
	if password == "" {
		// Many servers take an empty-password simple bind as a successful anonymous bind.
		return Identity{}, fmt.Errorf("%w: empty password", ErrInvalidCredentials)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	entry, err := c.findUser(ctx, login)
	if err != nil {
		return Identity{}, err
	}
	if err := c.checkAccount(ctx, entry); err != nil {
		return Identity{}, err
	}
	if err := c.userBind(ctx, entry.DN, password); err != nil {
		return Identity{}, err
	}
	id, err := c.identity(ctx, entry, login)
	if err != nil {
		return Identity{}, err
	}
	if err := c.authorize(ctx, id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// Lookup finds a user and resolves their groups without a password, for
// diagnostics (`authsvc check`). It does not check the required groups; see
// CheckGroups. A disabled or expired AD account is ErrInvalidCredentials.
func (c *Client) Lookup(ctx context.Context, username string) (Identity, error) {
	login, err := c.parseLogin(username)
	if err != nil {
		return Identity{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	entry, err := c.findUser(ctx, login)
	if err != nil {
		return Identity{}, err
	}
	if err := c.checkAccount(ctx, entry); err != nil {
		return Identity{}, err
	}
	return c.identity(ctx, entry, login)
}

// CheckGroups reports whether id (from Lookup) may log in: nil when no group
// is required or id is in one of them, ErrForbidden when not, ErrUnavailable
// when the directory could not tell.
func (c *Client) CheckGroups(ctx context.Context, id Identity) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.authorize(ctx, id)
}

// RequiredGroups returns the configured required group DNs.
func (c *Client) RequiredGroups() []string {
	return append([]string(nil), c.groups.required...)
}

func (c *Client) identity(ctx context.Context, entry *ldap.Entry, login login) (Identity, error) {
	id := Identity{DN: entry.DN, Name: loginName(entry, c.url.Attribute, login.value)}
	if !c.groups.resolve {
		return id, nil
	}
	groups, err := c.groupsOf(ctx, entry, id)
	if err != nil {
		return Identity{}, err
	}
	if groups == nil {
		groups = []string{} // resolved: in no group, which is not "not resolved"
	}
	id.Groups = groups
	return id, nil
}

// userBind binds as dn on a connection of the bind pool: a user bind never
// changes the identity of a connection that searches.
func (c *Client) userBind(ctx context.Context, dn, password string) error {
	start := time.Now()
	err := c.binds.do(ctx, func(conn *ldap.Conn) error { return conn.Bind(dn, password) })
	c.metrics.observe("bind_user", start, err)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnavailable):
		return err
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		if d := adBindDiagnostic(err); d != "" {
			c.logger.DebugContext(ctx, "ldap bind refused", "dn", dn, "ad_reason", d)
		}
		return fmt.Errorf("%w: wrong password", ErrInvalidCredentials)
	default:
		return unavailable(ctx, "bind as user", err)
	}
}

func (c *Client) timeLimit() int {
	return max(1, int(c.timeout/time.Second))
}

func unavailable(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w: %s: %w (%v)", ErrUnavailable, op, ctxErr, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

func canonicalMemberAttribute(a string) (string, error) {
	for _, known := range []string{MemberAttribute, UniqueMemberAttribute, MemberUIDAttribute} {
		if strings.EqualFold(a, known) {
			return known, nil
		}
	}
	if a == "" {
		return MemberAttribute, nil
	}
	return "", fmt.Errorf("group member attribute must be member, uniqueMember or memberUid, got %q", a)
}
