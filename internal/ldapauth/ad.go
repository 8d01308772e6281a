package ldapauth

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Active Directory account attributes.
const (
	adUserAccountControl = "userAccountControl"
	adAccountExpires     = "accountExpires"
	// adAccountDisable is userAccountControl's ACCOUNTDISABLE bit.
	adAccountDisable = 0x2
)

// adEpochOffset is the number of seconds from the start of Windows FILETIME
// (1601-01-01, in 100 ns ticks, used by accountExpires) to the Unix epoch.
const adEpochOffset = 11644473600

// checkAccount refuses disabled and expired Active Directory accounts before any
// user bind, as invalid credentials: the client never learns which it was; the
// reason is logged at debug level.
func (c *Client) checkAccount(ctx context.Context, e *ldap.Entry) error {
	if !c.ad {
		return nil
	}
	if reason := adAccountState(e, c.now()); reason != "" {
		c.logger.DebugContext(ctx, "ldap account refused", "dn", e.DN, "ad_reason", reason)
		return fmt.Errorf("%w: %s", ErrInvalidCredentials, reason)
	}
	return nil
}

// adAccountState is "" for a usable account, else why it is not.
func adAccountState(e *ldap.Entry, now time.Time) string {
	if v := e.GetEqualFoldAttributeValue(adUserAccountControl); v != "" {
		uac, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return "unreadable userAccountControl " + strconv.Quote(v)
		}
		if uac&adAccountDisable != 0 {
			return "account disabled"
		}
	}
	if v := e.GetEqualFoldAttributeValue(adAccountExpires); v != "" {
		expires, ok := adExpiry(v)
		if !ok {
			return "unreadable accountExpires " + strconv.Quote(v)
		}
		if !expires.IsZero() && !now.Before(expires) {
			return "account expired " + expires.Format(time.RFC3339)
		}
	}
	return ""
}

// adExpiry reads accountExpires: FILETIME ticks, where 0 and 2^63-1 mean never
// (the zero time). ok is false when v is not a number.
func adExpiry(v string) (t time.Time, ok bool) {
	ticks, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || ticks < 0 {
		return time.Time{}, false
	}
	if ticks == 0 || ticks == math.MaxInt64 {
		return time.Time{}, true
	}
	// Not through time.Duration: 400 years of ticks overflow it.
	secs, rest := ticks/10_000_000, ticks%10_000_000
	return time.Unix(secs-adEpochOffset, rest*100).UTC(), true
}

// adDataRe finds the sub-code in AD's bind diagnostic, e.g.
// "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563".
var adDataRe = regexp.MustCompile(`(?i)\bdata ([0-9a-f]{1,8})\b`)

// adReasons are AD's bind sub-codes.
var adReasons = map[string]string{
	"525": "user not found",
	"52e": "invalid credentials",
	"530": "not permitted to log on at this time",
	"531": "not permitted to log on from this workstation",
	"532": "password expired",
	"533": "account disabled",
	"568": "too many security IDs",
	"701": "account expired",
	"773": "password must be reset",
	"775": "account locked out",
}

// adBindDiagnostic turns AD's bind sub-code into words ("" when err carries
// none). Only ever logged, never shown to the client.
func adBindDiagnostic(err error) string {
	m := adDataRe.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	code := strings.ToLower(m[1])
	if r, ok := adReasons[code]; ok {
		return r + " (data " + code + ")"
	}
	return "data " + code
}
