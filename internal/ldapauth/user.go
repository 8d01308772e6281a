package ldapauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// login is a username ready for the search: the value and the attribute it is
// matched against.
type login struct {
	value string
	attr  string
}

// parseLogin trims surrounding spaces (a trailing space typed into a
// password manager must not make a second identity), refuses malformed
// usernames, and on Active Directory turns DOMAIN\user and user@upn.suffix
// into a search by sAMAccountName or userPrincipalName.
func (c *Client) parseLogin(username string) (login, error) {
	u := strings.TrimFunc(username, isSpace)
	if err := checkUsername(u); err != nil {
		return login{}, err
	}
	l := login{value: u, attr: c.url.Attribute}
	if !c.ad {
		return l, nil
	}
	if domain, user, ok := strings.Cut(u, `\`); ok {
		if user == "" || domain == "" || strings.Contains(user, `\`) {
			return login{}, fmt.Errorf("%w: malformed DOMAIN\\user", ErrInvalidCredentials)
		}
		if !c.domainAccepted(domain) {
			return login{}, fmt.Errorf("%w: domain %q is not %q", ErrInvalidCredentials, domain, c.adDomain)
		}
		l.value = user
	}
	if strings.Contains(l.value, "@") {
		l.attr = "userPrincipalName"
	}
	return l, nil
}

// isSpace is a space character (Unicode Zs: U+0020, no-break space and the
// like). Tabs, newlines and other control characters are not trimmed: they make
// the username malformed.
func isSpace(r rune) bool { return unicode.Is(unicode.Zs, r) }

func (c *Client) domainAccepted(domain string) bool {
	if c.adDomain == "" {
		return true
	}
	first, _, _ := strings.Cut(c.adDomain, ".")
	return strings.EqualFold(domain, c.adDomain) || strings.EqualFold(domain, first)
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

// userAttributes are the attributes read with the user entry.
func userAttributes(loginAttr string, ad, memberOf bool) []string {
	attrs := []string{loginAttr}
	if ad {
		attrs = append(attrs, "sAMAccountName", "userPrincipalName", adUserAccountControl, adAccountExpires)
	}
	if memberOf {
		attrs = append(attrs, "memberOf")
	}
	return attrs
}

func (c *Client) findUser(ctx context.Context, l login) (*ldap.Entry, error) {
	filter := "(&" + c.url.Filter + "(" + l.attr + "=" + ldap.EscapeFilter(l.value) + "))"
	// Size limit 2: one entry is a user, two are an ambiguity we refuse.
	req := ldap.NewSearchRequest(c.url.BaseDN, c.url.Scope, ldap.NeverDerefAliases,
		2, c.timeLimit(), false, filter, c.userAttrs, nil)
	var res *ldap.SearchResult
	start := time.Now()
	err := c.search.do(ctx, func(conn *ldap.Conn) error {
		var err error
		res, err = conn.Search(req)
		return err
	})
	c.metrics.observe("search_user", start, err)
	tooMany := ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded)
	switch {
	case errors.Is(err, ErrUnavailable):
		return nil, err
	case err != nil && !tooMany:
		return nil, unavailable(ctx, "search for user", err)
	}
	switch {
	case tooMany || len(res.Entries) > 1:
		var dns []string
		if res != nil {
			for _, e := range res.Entries {
				dns = append(dns, e.DN)
			}
		}
		c.logger.WarnContext(ctx, "ldap search found several entries for one username; refusing",
			"username", l.value, "entries", dns, "more", tooMany, "base", c.url.BaseDN)
		return nil, fmt.Errorf("%w: several entries match the username", ErrInvalidCredentials)
	case len(res.Entries) == 0 || res.Entries[0].DN == "":
		return nil, fmt.Errorf("%w: no such user", ErrInvalidCredentials)
	}
	return res.Entries[0], nil
}

// loginName is the login attribute's value as the directory spells it: the value
// that matched (case-insensitively) if there are several, else the first. So
// "BOB", "bob" and, on AD, "CORP\bob" and "bob@corp.example.com" all give "bob".
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
