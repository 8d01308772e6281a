package ldapauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// groupPageSize is the RFC 2696 page size: below the 1000-entry caps of AD and
// of most OpenLDAP set-ups.
const groupPageSize = 500

// walkBatch is how many groups one OR filter of the nested walk names.
const walkBatch = 64

type groupConfig struct {
	resolve    bool // fill Identity.Groups
	base       string
	filter     string
	memberAttr string
	membership Membership
	nested     NestedMode // "" when nested groups are off
	depth      int
	required   []string
	requiredDN []*ldap.DN
}

func newGroupConfig(cfg Config, p presetDefaults, urlBase string) (groupConfig, error) {
	g := groupConfig{base: cfg.GroupBaseDN, filter: cfg.GroupFilter, depth: positive(cfg.NestedDepth, DefaultNestedDepth)}
	for _, r := range cfg.RequireGroups {
		dn, err := ldap.ParseDN(r)
		if err != nil {
			return groupConfig{}, fmt.Errorf("required group %q: %w", r, err)
		}
		g.required = append(g.required, r)
		g.requiredDN = append(g.requiredDN, dn)
	}
	attr := cfg.GroupMemberAttribute
	if attr == "" { // explicit always wins, even "member" under the okta preset
		attr = p.memberAttr
	}
	var err error
	if g.memberAttr, err = canonicalMemberAttribute(attr); err != nil {
		return groupConfig{}, err
	}
	if g.membership, err = ParseMembership(string(cfg.GroupMembership)); err != nil {
		return groupConfig{}, err
	}
	if g.membership == "" {
		g.membership = p.membership
	}
	if cfg.NestedGroups {
		if g.nested, err = ParseNestedMode(string(cfg.NestedMode)); err != nil {
			return groupConfig{}, err
		}
		if g.nested == "" {
			g.nested = p.nested
		}
		if g.nested == NestedInChain && g.memberAttr == MemberUIDAttribute {
			return groupConfig{}, errors.New("the in-chain nested group rule needs a DN-valued member attribute, not memberUid")
		}
	}
	if g.base == "" {
		g.base = urlBase
	} else if _, err := ldap.ParseDN(g.base); err != nil {
		return groupConfig{}, fmt.Errorf("group base DN %q: %w", g.base, err)
	}
	if g.filter == "" {
		g.filter = DefaultFilter
	} else {
		if !strings.HasPrefix(g.filter, "(") {
			g.filter = "(" + g.filter + ")"
		}
		if _, err := ldap.CompileFilter(g.filter); err != nil {
			return groupConfig{}, fmt.Errorf("group filter %q: %w", g.filter, err)
		}
	}
	g.resolve = len(g.required) > 0 || cfg.GroupBaseDN != "" || g.membership == MembershipMemberOf
	return g, nil
}

// groupsOf resolves every group of the user, in one paged search for direct
// membership (or the memberOf values), plus one search per level when nested.
func (c *Client) groupsOf(ctx context.Context, entry *ldap.Entry, id Identity) ([]string, error) {
	g := &c.groups
	if g.nested == NestedInChain {
		return c.searchGroups(ctx, "(&"+g.filter+"("+g.memberAttr+":"+inChainRule+":="+ldap.EscapeFilter(id.DN)+"))")
	}
	var direct []string
	if g.membership == MembershipMemberOf {
		direct = entry.GetEqualFoldAttributeValues("memberOf")
	} else {
		value := id.DN
		if g.memberAttr == MemberUIDAttribute {
			value = id.Name
		}
		var err error
		if direct, err = c.searchGroups(ctx, "(&"+g.filter+"("+g.memberAttr+"="+ldap.EscapeFilter(value)+"))"); err != nil {
			return nil, err
		}
	}
	if g.nested != NestedWalk {
		return direct, nil
	}
	return c.walk(ctx, direct)
}

// walk adds the groups that contain groups, level by level, until no new
// group appears or the depth limit. A visited set makes cycles harmless.
func (c *Client) walk(ctx context.Context, direct []string) ([]string, error) {
	attr := c.groups.memberAttr
	if attr == MemberUIDAttribute { // posixGroups do not nest by name; their parents list DNs
		attr = MemberAttribute
	}
	seen := map[string]bool{}
	var all, frontier []string
	add := func(dn string) {
		if k := dnKey(dn); !seen[k] {
			seen[k] = true
			all = append(all, dn)
			frontier = append(frontier, dn)
		}
	}
	for _, dn := range direct {
		add(dn)
	}
	for level := 1; len(frontier) > 0; level++ {
		if level > c.groups.depth {
			c.logger.WarnContext(ctx, "nested group walk stopped at the depth limit", "depth", c.groups.depth, "pending", len(frontier))
			break
		}
		current := frontier
		frontier = nil
		for chunk := range chunks(current, walkBatch) {
			var or strings.Builder
			for _, dn := range chunk {
				or.WriteString("(" + attr + "=" + ldap.EscapeFilter(dn) + ")")
			}
			parents, err := c.searchGroups(ctx, "(&"+c.groups.filter+"(|"+or.String()+"))")
			if err != nil {
				return nil, err
			}
			for _, dn := range parents {
				add(dn)
			}
		}
	}
	return all, nil
}

func chunks(s []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for i := 0; i < len(s); i += n {
			if !yield(s[i:min(i+n, len(s))]) {
				return
			}
		}
	}
}

// searchGroups returns the DNs of the groups under the group base matching
// filter, with RFC 2696 paging so that directory size caps do not cut it.
func (c *Client) searchGroups(ctx context.Context, filter string) ([]string, error) {
	req := ldap.NewSearchRequest(c.groups.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, c.timeLimit(), false, filter, []string{"1.1"}, nil)
	var res *ldap.SearchResult
	start := time.Now()
	err := c.search.do(ctx, func(conn *ldap.Conn) error {
		req.Controls = nil // a retry starts a new paged search
		var err error
		res, err = conn.SearchWithPaging(req, groupPageSize)
		return err
	})
	c.metrics.observe("search_groups", start, err)
	switch {
	case errors.Is(err, ErrUnavailable):
		return nil, err
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, unavailable(ctx, "group base "+c.groups.base+" not found (or not readable by the service account)", err)
	case err != nil:
		return nil, unavailable(ctx, "group search", err)
	}
	dns := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	return dns, nil
}

// authorize allows id when no group is required or one of id.Groups is a
// required group, compared as DNs case-insensitively.
func (c *Client) authorize(ctx context.Context, id Identity) error {
	if len(c.groups.requiredDN) == 0 {
		return nil
	}
	for _, g := range id.Groups {
		dn, err := ldap.ParseDN(g)
		if err != nil {
			continue
		}
		for _, r := range c.groups.requiredDN {
			if r.EqualFold(dn) {
				return nil
			}
		}
	}
	return c.confirmDenial(ctx, id)
}

// confirmDenial looks at each required group directly before a 403: a group
// outside LDAP_GROUP_BASE that lists the user still admits them (with a
// warning), and required groups that do not exist are a configuration fault
// (5xx), not the user's.
func (c *Client) confirmDenial(ctx context.Context, id Identity) error {
	attr, value := c.groups.memberAttr, id.DN
	if attr == MemberUIDAttribute {
		value = id.Name
	}
	missing := 0
	for _, group := range c.groups.required {
		req := ldap.NewSearchRequest(group, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, c.timeLimit(), false, "("+attr+"="+ldap.EscapeFilter(value)+")", []string{"1.1"}, nil)
		var res *ldap.SearchResult
		err := c.search.do(ctx, func(conn *ldap.Conn) error {
			var err error
			res, err = conn.Search(req)
			return err
		})
		switch {
		case errors.Is(err, ErrUnavailable):
			return err
		case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
			c.logger.WarnContext(ctx, "required group not found (or not readable by the service account)", "group", group)
			missing++
		case err != nil:
			return unavailable(ctx, "group search", err)
		case len(res.Entries) > 0:
			c.logger.WarnContext(ctx, "required group lists the user but the group search did not find it; check LDAP_GROUP_BASE and LDAP_GROUP_FILTER",
				"group", group, "user", id.Name, "group_base", c.groups.base)
			return nil
		}
	}
	if missing == len(c.groups.required) {
		return fmt.Errorf("%w: none of the required groups exists: %q", ErrUnavailable, c.groups.required)
	}
	return fmt.Errorf("%w: %q is in none of %q", ErrForbidden, id.Name, c.groups.required)
}

// dnKey is a case-insensitive identity for a DN, so that spelling variants
// ("CN=A, DC=x" and "cn=a,dc=x", "\2C" and "\,") are one group.
func dnKey(s string) string {
	dn, err := ldap.ParseDN(s)
	if err != nil {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for i, rdn := range dn.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range rdn.Attributes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strings.ToLower(a.Type))
			b.WriteByte('=')
			b.WriteString(ldap.EscapeDN(strings.ToLower(a.Value)))
		}
	}
	return b.String()
}
