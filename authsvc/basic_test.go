package authsvc

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func basic(userpass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
}

func TestParseBasic(t *testing.T) {
	tests := []struct {
		name, header   string
		user, password string
		err            error
	}{
		{"plain", basic("alice:secret"), "alice", "secret", nil},
		{"scheme lower case", "basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret")), "alice", "secret", nil},
		{"scheme upper case", "BASIC " + base64.StdEncoding.EncodeToString([]byte("alice:secret")), "alice", "secret", nil},
		{"A4 colon in password", basic("bob:p@ss:wörd"), "bob", "p@ss:wörd", nil},
		{"A5 metacharacters", basic(`dave:Pa(ss)*\1`), "dave", `Pa(ss)*\1`, nil},
		{"A6 UTF-8", basic("jürgen:grüße-密码-7"), "jürgen", "grüße-密码-7", nil},
		{"password bytes not UTF-8", basic("bob:\xff\xfe"), "bob", "\xff\xfe", nil},
		{"empty password is parsed (refused later)", basic("bob:"), "bob", "", nil},
		{"empty user", basic(":pw"), "", "pw", nil},
		{"padding missing", "Basic " + base64.RawStdEncoding.EncodeToString([]byte("alice:secrets")), "alice", "secrets", nil},
		{"extra spaces around token", "Basic   " + base64.StdEncoding.EncodeToString([]byte("a:b")) + " ", "a", "b", nil},

		{"missing", "", "", "", errNoCredentials},
		{"Bearer", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "", "", errNotBasic},
		{"Digest", `Digest username="alice", realm="r", nonce="n", uri="/", response="x"`, "", "", errNotBasic},
		{"scheme only", "Basic", "", "", errEmptyCredentials},
		{"scheme and spaces", "Basic   ", "", "", errEmptyCredentials},
		{"no space after scheme", "Basic" + base64.StdEncoding.EncodeToString([]byte("a:b")), "", "", errNotBasic},
		{"A7 broken base64", "Basic !!!notbase64", "", "", errBadBase64},
		{"A7 URL-safe alphabet", "Basic " + base64.URLEncoding.EncodeToString([]byte("a:\xfb\xff")), "", "", errBadBase64},
		{"A7 bad padding", "Basic YWxpY2U6c2VjcmV0=", "", "", errBadBase64},
		{"A7 no colon", basic("alice"), "", "", errNoColon},
		{"A7 20 KB header", basic("alice:" + strings.Repeat("x", 15000)), "", "", errTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, password, err := parseBasic(tt.header)
			if !errors.Is(err, tt.err) {
				t.Fatalf("parseBasic: got error %v; want %v", err, tt.err)
			}
			if user != tt.user || password != tt.password {
				t.Errorf("parseBasic: got %q, %q; want %q, %q", user, password, tt.user, tt.password)
			}
		})
	}
}

func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{basic("bob:p@ss:wörd"), "Bearer x", "Basic", "basic YQ", "Basic YTpi===", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		user, password, err := parseBasic(header)
		if err != nil {
			if user != "" || password != "" {
				t.Fatalf("parseBasic(%q) returned credentials with error %v", header, err)
			}
			return
		}
		if strings.Contains(user, ":") {
			t.Fatalf("parseBasic(%q): user %q contains a colon; the split must be at the first one", header, user)
		}
	})
}

func FuzzBasicRoundTrip(f *testing.F) {
	f.Add("bob", "p@ss:wörd")
	f.Add("jürgen", `Pa(ss)*\1:`)
	f.Add("", "::")
	f.Fuzz(func(t *testing.T, user, password string) {
		if strings.Contains(user, ":") {
			return // not representable in Basic credentials
		}
		header := basic(user + ":" + password)
		gotUser, gotPassword, err := parseBasic(header)
		if len(header) > maxAuthorizationBytes {
			if !errors.Is(err, errTooLarge) {
				t.Fatalf("header of %d bytes: got %v; want errTooLarge", len(header), err)
			}
			return
		}
		if err != nil || gotUser != user || gotPassword != password {
			t.Fatalf("parseBasic(basic(%q:%q)) = %q, %q, %v; want the same back", user, password, gotUser, gotPassword, err)
		}
	})
}
