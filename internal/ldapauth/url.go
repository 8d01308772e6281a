package ldapauth

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// URL is a parsed RFC 4516 LDAP URL, as the old nginx `ldap_server { url ...; }`
// blocks used them: ldap[s]://host[:port]/<base DN>?<attribute>?<scope>?<filter>.
type URL struct {
	Scheme    string // "ldap" or "ldaps"
	Host      string // host name or IP address, without brackets
	Port      int
	BaseDN    string // percent-decoded, never empty
	Attribute string // the login attribute; the first of the URL's attribute list
	Scope     int    // ldap.ScopeBaseObject, ldap.ScopeSingleLevel or ldap.ScopeWholeSubtree
	Filter    string // percent-decoded, always parenthesised and valid

	// omitted are the parts the URL left out, which hold their defaults: a
	// preset may fill them, never a part written out. Zero (a URL built in
	// code) means every part is explicit.
	omitted urlParts
}

// urlParts is a set of the optional parts of an LDAP URL.
type urlParts uint8

const (
	partAttribute urlParts = 1 << iota
	partScope
	partFilter
)

// Defaults for the parts an LDAP URL may leave out. The scope default is "sub"
// rather than RFC 4516's "base", as the nginx module behaved.
const (
	DefaultAttribute = "uid"
	DefaultFilter    = "(objectClass=*)"
	defaultLDAPPort  = 389
	defaultLDAPSPort = 636
)

var scopeNames = map[int]string{
	ldap.ScopeBaseObject:   "base",
	ldap.ScopeSingleLevel:  "one",
	ldap.ScopeWholeSubtree: "sub",
}

// attributeRe matches an attribute description: a name or numeric OID, with options.
var attributeRe = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*$`)

// hostRe matches a registered name (DNS name); IP literals are checked apart.
var hostRe = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)

// ParseURL parses an RFC 4516 LDAP URL. The DN and the filter are percent-decoded;
// the port defaults to 389 (ldap) or 636 (ldaps), the attribute to uid, the scope to
// sub and the filter to (objectClass=*). A filter without outer parentheses is
// wrapped in them. Extensions are not supported. Errors name the offending part.
func ParseURL(s string) (*URL, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, fmt.Errorf("missing scheme in %q: want ldap://host/base or ldaps://host/base", s)
	}
	u := &URL{Scheme: strings.ToLower(scheme)}
	switch u.Scheme {
	case "ldap":
		u.Port = defaultLDAPPort
	case "ldaps":
		u.Port = defaultLDAPSPort
	default:
		return nil, fmt.Errorf("scheme must be ldap or ldaps, got %q", scheme)
	}

	hostport, path, hasPath := strings.Cut(rest, "/")
	if err := u.parseHostPort(hostport); err != nil {
		return nil, err
	}
	if !hasPath {
		return nil, errors.New("base DN is required: want ldap://host/<base DN>")
	}

	parts := strings.Split(path, "?")
	if len(parts) > 5 {
		return nil, fmt.Errorf("too many '?' separated parts (%d); a literal '?' must be written %%3F", len(parts))
	}
	for len(parts) < 5 {
		parts = append(parts, "")
	}
	dn, err := unescape("base DN", parts[0])
	if err != nil {
		return nil, err
	}
	if dn == "" {
		return nil, errors.New("base DN is required: want ldap://host/<base DN>")
	}
	if _, err := ldap.ParseDN(dn); err != nil {
		return nil, fmt.Errorf("base DN %q: %w", dn, err)
	}
	u.BaseDN = dn

	attrs, err := unescape("attribute", parts[1])
	if err != nil {
		return nil, err
	}
	u.Attribute = DefaultAttribute
	if attrs == "" {
		u.omitted |= partAttribute
	} else {
		// The nginx module used the first attribute of the list as the login attribute.
		for _, a := range strings.Split(attrs, ",") {
			if !attributeRe.MatchString(a) {
				return nil, fmt.Errorf("attribute %q is not an attribute name", a)
			}
		}
		u.Attribute, _, _ = strings.Cut(attrs, ",")
	}

	u.Scope = ldap.ScopeWholeSubtree
	switch scope := strings.ToLower(parts[2]); scope {
	case "":
		u.omitted |= partScope
	case "base":
		u.Scope = ldap.ScopeBaseObject
	case "one":
		u.Scope = ldap.ScopeSingleLevel
	case "sub":
		u.Scope = ldap.ScopeWholeSubtree
	default:
		return nil, fmt.Errorf("scope must be base, one or sub, got %q", parts[2])
	}

	filter, err := unescape("filter", parts[3])
	if err != nil {
		return nil, err
	}
	switch {
	case filter == "":
		filter = DefaultFilter
		u.omitted |= partFilter
	case !strings.HasPrefix(filter, "("):
		filter = "(" + filter + ")"
	}
	if _, err := ldap.CompileFilter(filter); err != nil {
		return nil, fmt.Errorf("filter %q: %w", filter, err)
	}
	u.Filter = filter

	if parts[4] != "" {
		return nil, fmt.Errorf("extensions are not supported, got %q", parts[4])
	}
	return u, nil
}

func (u *URL) parseHostPort(hp string) error {
	host, port := hp, ""
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return fmt.Errorf("host %q: missing ']'", hp)
		}
		host, port = hp[1:end], hp[end+1:]
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return fmt.Errorf("host %q is not an IPv6 address", host)
		}
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return fmt.Errorf("unexpected %q after host [%s]", port, host)
			}
			port = port[1:]
		}
	} else {
		var hasPort bool
		host, port, hasPort = strings.Cut(hp, ":")
		if hasPort && port == "" {
			return fmt.Errorf("empty port after %q", host+":")
		}
		if host == "" {
			return errors.New("host is required: want ldap://host/<base DN>")
		}
		if !hostRe.MatchString(host) {
			return fmt.Errorf("host %q is not a host name or IPv4 address", host)
		}
	}
	u.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
			return fmt.Errorf("port must be a number from 1 to 65535, got %q", port)
		}
		u.Port = n
	}
	return nil
}

func unescape(what, s string) (string, error) {
	d, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("%s %q: bad percent-encoding: %w", what, s, err)
	}
	if !utf8.ValidString(d) {
		return "", fmt.Errorf("%s %q: not valid UTF-8", what, s)
	}
	return d, nil
}

// Addr is host:port, ready for dialing.
func (u *URL) Addr() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// String gives the URL back with the port and base DN explicit, and the
// attribute, scope and filter as far as the parsed URL wrote them out (left-out
// parts stay out, so that a preset may still fill them); ParseURL(u.String())
// equals u.
func (u *URL) String() string {
	s := u.Scheme + "://" + u.Addr() + "/" + escape(u.BaseDN)
	parts := []string{u.Attribute, scopeNames[u.Scope], escape(u.Filter)}
	for i, p := range []urlParts{partAttribute, partScope, partFilter} {
		if u.omitted&p != 0 {
			parts[i] = ""
		}
	}
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 0 {
		s += "?" + strings.Join(parts, "?")
	}
	return s
}

// escape percent-encodes what ParseURL would otherwise misread ('%', '?') and what
// would make the URL unreadable in a log (spaces and control characters).
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == '?' || c <= ' ' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// ParseURLs parses a space-separated list of LDAP URLs: the servers of one
// directory, tried in order. The first URL must be complete; each later one
// either repeats the first one's base DN, attribute, scope and filter, or
// leaves them out (ldaps://dc2.corp.example.com) and inherits them, so that a
// user finds the same entry whichever server answers. Schemes and ports may
// differ.
func ParseURLs(s string) ([]*URL, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("no URL given")
	}
	var urls []*URL
	for i, f := range fields {
		bare := i > 0 && bareServer(f)
		full := f
		if bare {
			full = strings.TrimSuffix(f, "/") + "/" + escape(urls[0].BaseDN)
		}
		u, err := ParseURL(full)
		if err != nil {
			if len(fields) == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("URL %d (%s): %w", i+1, f, err)
		}
		if bare {
			u.Attribute, u.Scope, u.Filter, u.omitted = urls[0].Attribute, urls[0].Scope, urls[0].Filter, urls[0].omitted
		}
		urls = append(urls, u)
	}
	if err := sameSearch(urls); err != nil {
		return nil, err
	}
	return urls, nil
}

// bareServer reports whether an LDAP URL names only a server: no base DN.
func bareServer(s string) bool {
	_, rest, ok := strings.Cut(s, "://")
	if !ok {
		return false
	}
	_, path, hasPath := strings.Cut(rest, "/")
	return !hasPath || path == ""
}

// sameSearch checks that every URL searches like the first.
func sameSearch(urls []*URL) error {
	first := urls[0]
	base, err := ldap.ParseDN(first.BaseDN)
	if err != nil {
		return fmt.Errorf("base DN %q: %w", first.BaseDN, err)
	}
	for i, u := range urls[1:] {
		other, err := ldap.ParseDN(u.BaseDN)
		if err != nil || !base.EqualFold(other) || !strings.EqualFold(u.Attribute, first.Attribute) ||
			u.Scope != first.Scope || u.Filter != first.Filter {
			return fmt.Errorf("URL %d (%s) must have the first URL's base DN, attribute, scope and filter, or leave them out", i+2, u)
		}
	}
	return nil
}

// omittedByAll is the parts that every URL left out: a part written in any
// of them counts as set.
func omittedByAll(urls []*URL) urlParts {
	all := partAttribute | partScope | partFilter
	for _, u := range urls {
		all &= u.omitted
	}
	return all
}
