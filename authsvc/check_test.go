package authsvc

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/slapd"
)

func TestCheck(t *testing.T) {
	srv := startSlapd(t)
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "ldap://" + ln.Addr().String()
	}()
	alice := mustUser(t, "alice")

	tests := []struct {
		name    string
		change  func(*Config)
		opts    CheckOptions
		wantErr bool
		want    []string
		notWant []string
	}{
		{"servers only", nil, CheckOptions{}, false,
			[]string{"configuration: ok", "server " + srv.URL(), "ok (no TLS, service account bound", "result: ok"}, nil},
		{"user, groups and password", func(c *Config) {
			c.LDAPRequireGroup = "cn=nobody,ou=groups,dc=example,dc=org; " + slapd.GroupOps
		}, CheckOptions{Username: " ALICE", Password: Secret(alice.Password), TryPassword: true}, false,
			[]string{"DN:               " + alice.DN, "canonical name:   alice", "groups:           2", slapd.GroupOps,
				"required groups: ok", "login with the password: ok", "result: ok"}, []string{alice.Password}},
		{"nested groups", func(c *Config) {
			c.LDAPRequireGroup, c.Directory.NestedGroups = slapd.GroupNestedTop, true
		}, CheckOptions{Username: "erin"}, false,
			[]string{"groups:           5", slapd.GroupCycleB, "required groups: ok"}, nil},
		{"user outside the groups", nil, CheckOptions{Username: "carol"}, true,
			[]string{"required groups: FAILED: authsvc would answer 403", "result: 1 check(s) FAILED"}, nil},
		{"wrong password", nil, CheckOptions{Username: "carol", Password: "nope", TryPassword: true}, true,
			[]string{"login with the password: FAILED: authsvc would answer 401", "2 check(s) FAILED"}, nil},
		{"no such user", nil, CheckOptions{Username: "mallory"}, true,
			[]string{`user "mallory": FAILED: authsvc would answer 401`}, nil},
		{"second server down", func(c *Config) { c.LDAPURL = srv.SearchURL() + " " + closed }, CheckOptions{Username: "erin"}, true,
			[]string{"server " + srv.URL(), "server " + closed, "FAILED after", "connection refused", "canonical name:   erin"}, nil},
		{"service password wrong", func(c *Config) { c.LDAPBindPassword = "wrong" }, CheckOptions{}, true,
			[]string{"bind as service account", "Invalid Credentials"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sampleConfig(srv)
			if tt.change != nil {
				tt.change(&cfg)
			}
			var out bytes.Buffer
			err := Check(context.Background(), cfg, tt.opts, &out, slog.New(slog.DiscardHandler))
			t.Log("\n" + out.String())
			if (err != nil) != tt.wantErr {
				t.Errorf("Check: got error %v; want error %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output contains %q", w)
				}
			}
		})
	}
}

func mustUser(t *testing.T, name string) slapd.User {
	t.Helper()
	u, ok := slapd.UserByName(name)
	if !ok {
		t.Fatalf("no sample user %q", name)
	}
	return u
}

func TestReadPassword(t *testing.T) {
	for in, want := range map[string]string{"p@ss:wörd\n": "p@ss:wörd", "x\r\n": "x", "no newline": "no newline", " sp \n": " sp "} {
		got, err := ReadPassword(strings.NewReader(in))
		if err != nil || got.Reveal() != want {
			t.Errorf("ReadPassword(%q): got %q, %v; want %q", in, got.Reveal(), err, want)
		}
	}
	for _, in := range []string{"", "\n", "\r\n"} {
		if _, err := ReadPassword(strings.NewReader(in)); err == nil {
			t.Errorf("ReadPassword(%q): got no error", in)
		}
	}
}
