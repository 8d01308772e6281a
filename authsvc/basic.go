package authsvc

import (
	"encoding/base64"
	"errors"
	"strings"
)

// maxAuthorizationBytes bounds the Authorization header we decode. Real Basic
// credentials are far shorter; anything longer is refused as malformed (401), and
// the server's MaxHeaderBytes is set well above it so the client sees a 401, not a 431.
const maxAuthorizationBytes = 8 << 10

// Reasons a request carries no usable Basic credentials. They are logged; none
// contains any part of the header.
var (
	errNoCredentials    = errors.New("no Authorization header")
	errSeveralHeaders   = errors.New("several Authorization headers")
	errTooLarge         = errors.New("authorization header too large")
	errNotBasic         = errors.New("authorization scheme is not Basic")
	errBadBase64        = errors.New("basic credentials are not valid base64")
	errNoColon          = errors.New("basic credentials have no colon")
	errEmptyCredentials = errors.New("basic credentials are empty")
)

// parseBasic reads RFC 7617 Basic credentials. The scheme is case-insensitive; the
// token is standard base64, padded or not (some clients drop the padding; the
// URL-safe alphabet is refused). user:password splits at the first colon only, so
// passwords may contain colons; the password's bytes are returned untouched.
func parseBasic(header string) (user, password string, err error) {
	if header == "" {
		return "", "", errNoCredentials
	}
	if len(header) > maxAuthorizationBytes {
		return "", "", errTooLarge
	}
	scheme, token, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", errNotBasic
	}
	token = strings.Trim(token, " \t")
	if token == "" {
		return "", "", errEmptyCredentials
	}
	enc := base64.StdEncoding
	if len(token)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	// The standard decoder skips \r and \n; a token must not contain them at all.
	if strings.ContainsAny(token, "\r\n") {
		return "", "", errBadBase64
	}
	raw, err := enc.DecodeString(token)
	if err != nil {
		return "", "", errBadBase64
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errNoColon
	}
	return user, password, nil
}
