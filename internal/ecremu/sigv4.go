package ecremu

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	sigV4Service   = "ecr"
	amzDateFormat  = "20060102T150405Z"
	// maxClockSkew is how far AWS lets X-Amz-Date stray from its own clock.
	maxClockSkew = 15 * time.Minute
)

// sigV4Verifier checks AWS Signature Version 4 on API requests by signing a
// copy of the request with the real SDK signer and comparing the results.
type sigV4Verifier struct {
	creds  aws.Credentials
	region string
	signer *v4.Signer
	now    func() time.Time
}

// sigV4Auth is a parsed Authorization header.
type sigV4Auth struct {
	accessKey     string
	date          string // yyyymmdd from the credential scope
	region        string
	service       string
	signedHeaders []string
	signature     string
}

func parseSigV4Authorization(h string) (sigV4Auth, bool) {
	rest, ok := strings.CutPrefix(h, sigV4Algorithm+" ")
	if !ok {
		return sigV4Auth{}, false
	}
	var a sigV4Auth
	var credential, signedHeaders string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return sigV4Auth{}, false
		}
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			a.signature = v
		default:
			return sigV4Auth{}, false
		}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || signedHeaders == "" || a.signature == "" {
		return sigV4Auth{}, false
	}
	a.accessKey, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	a.signedHeaders = strings.Split(signedHeaders, ";")
	return a, true
}

// verify returns nil when r (whose body has already been read into body)
// carries a valid signature by the configured credentials.
func (v *sigV4Verifier) verify(ctx context.Context, r *http.Request, body []byte) *apiError {
	h := r.Header.Get("Authorization")
	if h == "" {
		return errMissingAuthToken
	}
	a, ok := parseSigV4Authorization(h)
	if !ok {
		return &apiError{http.StatusBadRequest, "IncompleteSignatureException",
			"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters in " + sigV4Algorithm + " format."}
	}
	if a.accessKey != v.creds.AccessKeyID {
		return errUnrecognizedClient
	}
	if a.service != sigV4Service {
		return &apiError{http.StatusForbidden, "InvalidSignatureException",
			fmt.Sprintf("Credential should be scoped to correct service: '%s'.", sigV4Service)}
	}
	if a.region != v.region {
		return &apiError{http.StatusForbidden, "InvalidSignatureException",
			fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", a.region)}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return &apiError{http.StatusBadRequest, "IncompleteSignatureException",
			"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}
	}
	if a.date != signedAt.Format("20060102") {
		return &apiError{http.StatusForbidden, "InvalidSignatureException",
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP."}
	}
	now := v.now()
	if skew := now.Sub(signedAt); skew > maxClockSkew || skew < -maxClockSkew {
		return &apiError{http.StatusForbidden, "InvalidSignatureException",
			fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
				amzDate, now.Add(-maxClockSkew).UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat))}
	}

	want, err := v.expectedSignature(ctx, r, body, a.signedHeaders, signedAt)
	if err != nil || !hmac.Equal([]byte(want), []byte(a.signature)) {
		return errSignatureMismatch
	}
	return nil
}

// expectedSignature signs a copy of r that holds only the headers the client
// said it signed, so headers added on the way (proxies, Go) do not count.
func (v *sigV4Verifier) expectedSignature(ctx context.Context, r *http.Request, body []byte, signedHeaders []string, signedAt time.Time) (string, error) {
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	cp, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return "", err
	}
	cp.Host = r.Host
	for _, name := range signedHeaders {
		switch name {
		case "host":
		case "content-length":
			cp.ContentLength = int64(len(body))
		default:
			for _, val := range r.Header.Values(name) {
				cp.Header.Add(name, val)
			}
		}
	}
	sum := sha256.Sum256(body)
	if err := v.signer.SignHTTP(ctx, v.creds, cp, hex.EncodeToString(sum[:]), sigV4Service, v.region, signedAt); err != nil {
		return "", err
	}
	a, ok := parseSigV4Authorization(cp.Header.Get("Authorization"))
	if !ok {
		return "", fmt.Errorf("ecremu: signer produced an unparsable authorization header")
	}
	if strings.Join(a.signedHeaders, ";") != strings.Join(signedHeaders, ";") {
		// The client signed a header the SDK signer ignores (User-Agent,
		// for one); its signature cannot be reproduced.
		return "", fmt.Errorf("ecremu: signed headers differ")
	}
	return a.signature, nil
}
