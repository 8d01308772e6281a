package ldapauth

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func TestADAccountState(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// FILETIME ticks for a moment: seconds since 1601 times 10^7.
	ticks := func(t time.Time) string {
		return strconv.FormatInt((t.Unix()+adEpochOffset)*10_000_000, 10)
	}
	tests := []struct {
		name     string
		uac, exp string
		want     string // substring of the reason; "" means usable
	}{
		{"normal account", "512", "0", ""},
		{"no attributes", "", "", ""},
		{"never expires (max int64)", "512", "9223372036854775807", ""},
		{"disabled", "514", "0", "disabled"},
		{"disabled with other flags", "66050", "", "disabled"},
		{"password never expires flag only", "66048", "", ""},
		{"expired yesterday", "512", ticks(now.Add(-24 * time.Hour)), "expired"},
		{"expires tomorrow", "512", ticks(now.Add(24 * time.Hour)), ""},
		{"expires this instant", "512", ticks(now), "expired"},
		{"garbage uac", "x", "", "unreadable userAccountControl"},
		{"garbage expiry", "512", "soon", "unreadable accountExpires"},
		{"negative expiry", "512", "-5", "unreadable accountExpires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := map[string][]string{}
			if tt.uac != "" {
				attrs["userAccountControl"] = []string{tt.uac}
			}
			if tt.exp != "" {
				attrs["accountExpires"] = []string{tt.exp}
			}
			got := adAccountState(ldap.NewEntry("cn=x,dc=corp", attrs), now)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestADExpiryKnownValue(t *testing.T) {
	// 133502088000000000 ticks is 2024-01-20T07:20:00Z (Unix 1705735200).
	got, ok := adExpiry("133502088000000000")
	want := time.Date(2024, 1, 20, 7, 20, 0, 0, time.UTC)
	if !ok || !got.Equal(want) {
		t.Errorf("got %v, %v; want %v", got, ok, want)
	}
}

func TestADBindDiagnostic(t *testing.T) {
	msg := func(code string) error {
		return ldap.NewError(ldap.LDAPResultInvalidCredentials,
			errors.New("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data "+code+", v4563"))
	}
	tests := []struct {
		err  error
		want string
	}{
		{msg("52e"), "invalid credentials (data 52e)"},
		{msg("525"), "user not found (data 525)"},
		{msg("530"), "not permitted to log on at this time (data 530)"},
		{msg("531"), "workstation"},
		{msg("532"), "password expired (data 532)"},
		{msg("533"), "account disabled (data 533)"},
		{msg("701"), "account expired (data 701)"},
		{msg("773"), "password must be reset (data 773)"},
		{msg("775"), "account locked out (data 775)"},
		{msg("52E"), "invalid credentials (data 52e)"},
		{msg("999"), "data 999"},
		{ldap.NewError(ldap.LDAPResultInvalidCredentials, errors.New("invalid credentials")), ""},
	}
	for _, tt := range tests {
		if got := adBindDiagnostic(tt.err); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("adBindDiagnostic(%v): got %q; want %q", tt.err, got, tt.want)
		}
	}
}

func TestParseLogin(t *testing.T) {
	u := mustURL(t, "ldaps://dc1.corp.example.com/dc=corp,dc=example,dc=com")
	plain, err := New(Config{URL: u}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := New(Config{URL: u, Preset: PresetActiveDirectory}, nil)
	if err != nil {
		t.Fatal(err)
	}
	adDomain, err := New(Config{URL: u, Preset: PresetActiveDirectory, ADDomain: "corp.example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		c       *Client
		in      string
		value   string
		attr    string
		wantErr bool
	}{
		{"plain", plain, "bob", "bob", "uid", false},
		{"spaces trimmed", plain, "  bob \u00a0", "bob", "uid", false},
		{"inner space kept", plain, "bob smith", "bob smith", "uid", false},
		{"only spaces", plain, "   ", "", "", true},
		{"tab refused, not trimmed", plain, "bob\t", "", "", true},
		{"backslash is literal outside AD", plain, `CORP\bob`, `CORP\bob`, "uid", false},
		{"AD sAMAccountName", ad, "bob", "bob", "sAMAccountName", false},
		{"AD DOMAIN\\user", ad, `CORP\bob`, "bob", "sAMAccountName", false},
		{"AD UPN", ad, "bob@corp.example.com", "bob@corp.example.com", "userPrincipalName", false},
		{"AD empty user", ad, `CORP\`, "", "", true},
		{"AD empty domain", ad, `\bob`, "", "", true},
		{"AD two backslashes", ad, `A\B\bob`, "", "", true},
		{"AD domain checked: NetBIOS name", adDomain, `corp\bob`, "bob", "sAMAccountName", false},
		{"AD domain checked: DNS name", adDomain, `CORP.EXAMPLE.COM\bob`, "bob", "sAMAccountName", false},
		{"AD domain checked: other domain", adDomain, `EVIL\bob`, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.parseLogin(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidCredentials) {
					t.Errorf("got %+v, %v; want ErrInvalidCredentials", got, err)
				}
				return
			}
			if err != nil || got.value != tt.value || got.attr != tt.attr {
				t.Errorf("got %+v, %v; want value %q attr %q", got, err, tt.value, tt.attr)
			}
		})
	}
}

func FuzzParseLogin(f *testing.F) {
	for _, s := range []string{"bob", " bob ", `CORP\bob`, "bob@corp", "\u00a0x", "b\x00", `\`, "*)(uid=*"} {
		f.Add(s)
	}
	u, _ := ParseURL("ldap://h/dc=x")
	c, err := New(Config{URL: u, Preset: PresetActiveDirectory, ADDomain: "corp"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := c.parseLogin(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("parseLogin(%q): error %v is not ErrInvalidCredentials", s, err)
			}
			return
		}
		if l.value == "" || len(l.value) > MaxUsernameBytes || strings.TrimFunc(l.value, isSpace) != l.value {
			t.Fatalf("parseLogin(%q): got value %q", s, l.value)
		}
	})
}
