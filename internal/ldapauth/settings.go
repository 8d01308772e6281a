package ldapauth

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"
)

// Settings are what a Client works with once presets and defaults are
// applied: the effective values, not the ones typed in. `authsvc check`
// shows them.
type Settings struct {
	Preset          Preset
	BaseDN          string
	LoginAttribute  string
	UserFilter      string
	Scope           string // base, one or sub
	ResolveGroups   bool   // Identity.Groups is filled
	GroupBase       string
	GroupFilter     string
	MemberAttribute string
	Membership      Membership
	NestedGroups    NestedMode // "" when nested groups are off
	NestedDepth     int        // for NestedWalk
	RequiredGroups  []string
	// TLS is "ldaps", "StartTLS" or "none (clear text)" when every server
	// has the same, else each server's mode after its address.
	TLS         string
	DialTimeout time.Duration
	Timeout     time.Duration
	Backoff     time.Duration // first back-off of a failed server; doubles to 60s
	// Warnings are the configuration's risks, also logged by New: clear
	// text on the wire, a timeout too short for the server list, TLS files
	// that nothing uses, certificate checks turned off.
	Warnings []string
}

// Settings returns the effective settings.
func (c *Client) Settings() Settings {
	g := c.groups
	st := Settings{
		Preset: c.preset, BaseDN: c.url.BaseDN, LoginAttribute: c.url.Attribute, UserFilter: c.url.Filter,
		Scope: scopeNames[c.url.Scope], ResolveGroups: g.resolve, GroupBase: g.base, GroupFilter: g.filter,
		MemberAttribute: g.memberAttr, Membership: g.membership, NestedGroups: g.nested,
		RequiredGroups: c.RequiredGroups(), TLS: c.tlsMode(), DialTimeout: c.dialTimeout,
		Timeout: c.timeout, Backoff: c.servers[0].backoff, Warnings: append([]string(nil), c.warnings...),
	}
	if g.nested == NestedWalk {
		st.NestedDepth = g.depth
	}
	return st
}

func (s *server) tlsMode() string {
	switch {
	case s.tls == nil:
		return "none (clear text)"
	case s.startTLS:
		return "StartTLS"
	}
	return "ldaps"
}

func (c *Client) tlsMode() string {
	modes := make([]string, len(c.servers))
	same := true
	for i, s := range c.servers {
		modes[i] = s.tlsMode()
		same = same && modes[i] == modes[0]
	}
	if same {
		return modes[0]
	}
	for i, s := range c.servers {
		modes[i] = s.url.Addr() + " " + modes[i]
	}
	return strings.Join(modes, ", ")
}

// checkTLS refuses StartTLS when no URL is ldap://: ldaps:// is TLS from the
// first byte, so the operator meant one of the two and cannot have both.
func checkTLS(urls []*URL, startTLS bool) error {
	if !startTLS {
		return nil
	}
	for _, u := range urls {
		if u.Scheme == "ldap" {
			return nil
		}
	}
	return fmt.Errorf("StartTLS (LDAP_START_TLS) contradicts ldaps:// (LDAP_URL): ldaps:// is TLS from the first byte, StartTLS upgrades ldap://; use one of them")
}

// configWarnings are the risks of a configuration that still works.
func (c *Client) configWarnings(cfg *tls.Config) []string {
	var w []string
	if n := len(c.servers); n > 1 && time.Duration(n-1)*c.dialTimeout >= c.timeout {
		w = append(w, fmt.Sprintf("%d servers: if the first %d do not answer, their dial timeouts (LDAP_DIAL_TIMEOUT %s each) use up LDAP_TIMEOUT %s before the last is tried; "+
			"set LDAP_TIMEOUT above %s or lower LDAP_DIAL_TIMEOUT", n, n-1, c.dialTimeout, c.timeout, time.Duration(n-1)*c.dialTimeout))
	}
	var plain []string
	for _, s := range c.servers {
		if s.tls == nil {
			plain = append(plain, s.url.Addr())
		}
	}
	if len(plain) > 0 {
		w = append(w, fmt.Sprintf("ldap:// without StartTLS to %s: passwords cross the network in clear text; use ldaps:// or LDAP_START_TLS=true",
			strings.Join(plain, ", ")))
	}
	if cfg != nil {
		if len(plain) == len(c.servers) && (cfg.RootCAs != nil || len(cfg.Certificates) > 0) {
			w = append(w, "LDAP_CA_FILE (or a client certificate) is set but no TLS is used: use ldaps:// or LDAP_START_TLS=true")
		}
		if cfg.InsecureSkipVerify && len(plain) < len(c.servers) {
			w = append(w, "ldap TLS certificate verification is disabled (LDAP_INSECURE_SKIP_VERIFY): anyone on the path can read passwords")
		}
	}
	return w
}
