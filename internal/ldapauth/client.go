package ldapauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrInvalidCredentials: no such user, several users of that name, a malformed
	// username, an empty password or a wrong password. Answer 401.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrForbidden: the password is right but the user is not in the required group.
	// Answer 403.
	ErrForbidden = errors.New("not a member of the required group")
	// ErrUnavailable: the directory could not give an answer (dial failure, timeout,
	// server down, service account rejected, unexpected result). Answer 5xx, and
	// never cache it as a denial.
	ErrUnavailable = errors.New("ldap unavailable")
)

// MaxUsernameBytes is the longest username sent to the directory.
const MaxUsernameBytes = 256

// Group membership attributes understood in Config.GroupMemberAttribute.
const (
	MemberAttribute       = "member"       // value: the user's DN (groupOfNames)
	UniqueMemberAttribute = "uniqueMember" // value: the user's DN (groupOfUniqueNames)
	MemberUIDAttribute    = "memberUid"    // value: the user's login name (posixGroup)
)

// Defaults for zero durations in Config.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultTimeout     = 10 * time.Second
)

// Config configures a Client. New copies it; the caller's value is not changed.
type Config struct {
	URL          *URL   // where and how to search for users
	BindDN       string // service account; empty searches anonymously
	BindPassword string // required with BindDN: an empty-password bind is an anonymous bind
	// RequireGroup is a group DN, exactly as the directory spells it (escaped
	// commas included); empty means any authenticated user is allowed.
	RequireGroup string
	// GroupMemberAttribute is member (default), uniqueMember or memberUid.
	GroupMemberAttribute string
	// DialTimeout bounds each TCP (and TLS) connect; default 5s.
	DialTimeout time.Duration
	// Timeout bounds one whole Authenticate call, dials and LDAP operations
	// included; default 10s. Keep it under the docker client's ~15s patience.
	Timeout time.Duration
	// TLSConfig is used for ldaps:// URLs; nil means the system roots and the URL's
	// host as server name.
	TLSConfig *tls.Config
}

// Identity is an authenticated user.
type Identity struct {
	DN   string // the user's entry
	Name string // the login attribute's value as the directory spells it
}

// Client authenticates users against one LDAP directory. It is safe for
// concurrent use; it holds no connections between calls.
type Client struct {
	url          URL
	bindDN       string
	bindPassword string
	requireGroup string
	memberAttr   string
	dialTimeout  time.Duration
	timeout      time.Duration
	tlsConfig    *tls.Config
	logger       *slog.Logger
}

// New checks cfg and returns a Client.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if cfg.URL == nil {
		return nil, errors.New("ldapauth: URL is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		url:          *cfg.URL,
		bindDN:       cfg.BindDN,
		bindPassword: cfg.BindPassword,
		requireGroup: cfg.RequireGroup,
		dialTimeout:  cfg.DialTimeout,
		timeout:      cfg.Timeout,
		logger:       logger,
	}
	if c.dialTimeout <= 0 {
		c.dialTimeout = DefaultDialTimeout
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
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
	if c.requireGroup != "" {
		if _, err := ldap.ParseDN(c.requireGroup); err != nil {
			return nil, fmt.Errorf("ldapauth: required group %q: %w", c.requireGroup, err)
		}
	}
	attr, err := canonicalMemberAttribute(cfg.GroupMemberAttribute)
	if err != nil {
		return nil, fmt.Errorf("ldapauth: %w", err)
	}
	c.memberAttr = attr
	if c.url.Scheme == "ldaps" {
		if cfg.TLSConfig != nil {
			c.tlsConfig = cfg.TLSConfig.Clone()
		} else {
			c.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if c.tlsConfig.ServerName == "" {
			c.tlsConfig.ServerName = c.url.Host
		}
	}
	return c, nil
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

// Authenticate checks username and password. Malformed usernames and empty
// passwords are refused before any network traffic. See the package errors for
// what each outcome means.
func (c *Client) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	if err := checkUsername(username); err != nil {
		return Identity{}, err
	}
	if password == "" {
		// Many servers take an empty-password simple bind as a successful anonymous bind.
		return Identity{}, fmt.Errorf("%w: empty password", ErrInvalidCredentials)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	svc, closeSvc, err := c.dial(ctx)
	if err != nil {
		return Identity{}, err
	}
	defer closeSvc()
	if c.bindDN != "" {
		if err := svc.Bind(c.bindDN, c.bindPassword); err != nil {
			// A rejected service account is a configuration fault, not the user's.
			return Identity{}, unavailable(ctx, "bind as service account", err)
		}
	}
	entry, err := c.findUser(ctx, svc, username)
	if err != nil {
		return Identity{}, err
	}
	if err := c.checkPassword(ctx, entry.DN, password); err != nil {
		return Identity{}, err
	}
	id := Identity{DN: entry.DN, Name: loginName(entry, c.url.Attribute, username)}
	if c.requireGroup != "" {
		if err := c.checkGroup(ctx, svc, id); err != nil {
			return Identity{}, err
		}
	}
	return id, nil
}

func checkUsername(u string) error {
	switch {
	case u == "":
		return fmt.Errorf("%w: empty username", ErrInvalidCredentials)
	case len(u) > MaxUsernameBytes:
		return fmt.Errorf("%w: username longer than %d bytes", ErrInvalidCredentials, MaxUsernameBytes)
	case !utf8.ValidString(u):
		return fmt.Errorf("%w: username is not valid UTF-8", ErrInvalidCredentials)
	case strings.ContainsFunc(u, unicode.IsControl):
		return fmt.Errorf("%w: username contains control characters", ErrInvalidCredentials)
	}
	return nil
}

// dial opens a connection that is closed when ctx ends, so a hung server cannot
// outlive the caller's deadline. The returned func closes it.
func (c *Client) dial(ctx context.Context) (*ldap.Conn, func(), error) {
	d := &net.Dialer{Timeout: c.dialTimeout}
	var (
		nc  net.Conn
		err error
	)
	// Dial ourselves rather than through ldap.DialURL: DialURL takes no context.
	if c.tlsConfig != nil {
		nc, err = (&tls.Dialer{NetDialer: d, Config: c.tlsConfig}).DialContext(ctx, "tcp", c.url.Addr())
	} else {
		nc, err = d.DialContext(ctx, "tcp", c.url.Addr())
	}
	if err != nil {
		return nil, nil, unavailable(ctx, "dial "+c.url.Addr(), err)
	}
	conn := ldap.NewConn(nc, c.tlsConfig != nil)
	conn.Start()
	conn.SetTimeout(c.timeout)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return conn, func() { stop(); conn.Close() }, nil
}

func (c *Client) findUser(ctx context.Context, conn *ldap.Conn, username string) (*ldap.Entry, error) {
	filter := "(&" + c.url.Filter + "(" + c.url.Attribute + "=" + ldap.EscapeFilter(username) + "))"
	// Size limit 2: one entry is a user, two are an ambiguity we refuse.
	req := ldap.NewSearchRequest(c.url.BaseDN, c.url.Scope, ldap.NeverDerefAliases,
		2, c.timeLimit(), false, filter, []string{c.url.Attribute}, nil)
	res, err := conn.Search(req)
	tooMany := ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded)
	if err != nil && !tooMany {
		return nil, unavailable(ctx, "search for user", err)
	}
	switch {
	case tooMany || len(res.Entries) > 1:
		dns := make([]string, 0, len(res.Entries))
		for _, e := range res.Entries {
			dns = append(dns, e.DN)
		}
		c.logger.Warn("ldap search found several entries for one username; refusing",
			"username", username, "entries", dns, "more", tooMany, "base", c.url.BaseDN)
		return nil, fmt.Errorf("%w: several entries match the username", ErrInvalidCredentials)
	case len(res.Entries) == 0 || res.Entries[0].DN == "":
		return nil, fmt.Errorf("%w: no such user", ErrInvalidCredentials)
	}
	return res.Entries[0], nil
}

// checkPassword binds as dn on a fresh connection: a user bind never changes the
// identity of the service account's connection.
func (c *Client) checkPassword(ctx context.Context, dn, password string) error {
	conn, closeConn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	err = conn.Bind(dn, password)
	switch {
	case err == nil:
		return nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		return fmt.Errorf("%w: wrong password", ErrInvalidCredentials)
	default:
		return unavailable(ctx, "bind as user", err)
	}
}

func (c *Client) checkGroup(ctx context.Context, conn *ldap.Conn, id Identity) error {
	value := id.DN
	if c.memberAttr == MemberUIDAttribute {
		value = id.Name
	}
	filter := "(" + c.memberAttr + "=" + ldap.EscapeFilter(value) + ")"
	req := ldap.NewSearchRequest(c.requireGroup, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, c.timeLimit(), false, filter, []string{"1.1"}, nil)
	res, err := conn.Search(req)
	if err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return unavailable(ctx, "required group "+c.requireGroup+" not found (or not readable by the service account)", err)
		}
		return unavailable(ctx, "group search", err)
	}
	if len(res.Entries) == 0 {
		return fmt.Errorf("%w: %q is not in %q", ErrForbidden, id.Name, c.requireGroup)
	}
	return nil
}

func (c *Client) timeLimit() int {
	return max(1, int(c.timeout/time.Second))
}

// loginName is the login attribute's value as the directory spells it: the value
// that matched (case-insensitively) if there are several, else the first.
func loginName(e *ldap.Entry, attr, given string) string {
	values := e.GetEqualFoldAttributeValues(attr)
	for _, v := range values {
		if strings.EqualFold(v, given) {
			return v
		}
	}
	if len(values) > 0 {
		return values[0]
	}
	return given
}

func unavailable(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w: %s: %w (%v)", ErrUnavailable, op, ctxErr, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
