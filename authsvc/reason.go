package authsvc

import (
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/toanc/aws-ecr-ldap/internal/regpath"
)

// Longest X-Auth-Reason value, escapes included.
const maxReasonBytes = 1024

// reasonValue makes a denial reason safe for nginx to paste between the
// double quotes of a JSON string: '"' and '\' are escaped, control characters
// dropped, everything outside printable ASCII written \uXXXX (so the header
// is plain ASCII), invalid UTF-8 as \ufffd. A long reason is cut at a
// character boundary and ends in \u2026.
func reasonValue(s string) string {
	const ellipsis = `\u2026`
	b := make([]byte, 0, min(len(s)+16, maxReasonBytes))
	for _, r := range s { // invalid UTF-8 arrives as utf8.RuneError
		var piece []byte
		var buf [12]byte
		switch {
		case r == '"' || r == '\\':
			piece = append(buf[:0], '\\', byte(r))
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029:
			continue
		case r < utf8.RuneSelf:
			piece = append(buf[:0], byte(r))
		case r > 0xffff:
			r -= 0x10000
			piece = appendU(appendU(buf[:0], 0xd800+(r>>10)), 0xdc00+(r&0x3ff))
		default:
			piece = appendU(buf[:0], r)
		}
		if len(b)+len(piece) > maxReasonBytes-len(ellipsis) {
			return string(append(b, ellipsis...))
		}
		b = append(b, piece...)
	}
	return string(b)
}

func appendU(b []byte, r rune) []byte {
	b = append(b, '\\', 'u')
	h := strconv.FormatInt(int64(r), 16)
	for range 4 - len(h) {
		b = append(b, '0')
	}
	return append(b, h...)
}

// parseOriginal parses the request nginx authorizes, for the audit line of a
// handler without a policy; ok is false when there is nothing to log.
func parseOriginal(h http.Header) (regpath.Request, bool) {
	methods, uris := h["X-Original-Method"], h["X-Original-Uri"]
	if len(methods) != 1 || len(uris) != 1 {
		return regpath.Request{}, false
	}
	req, err := regpath.Parse(methods[0], uris[0])
	return req, err == nil
}
