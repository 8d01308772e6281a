package authsvc

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/slapd"
	"github.com/toanc/aws-ecr-ldap/internal/testpki"
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
	ca, err := testpki.NewCA("check test CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := ca.WriteCACert(caFile); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		change  func(*Config)
		opts    CheckOptions
		wantErr bool
		want    []string
		notWant []string
	}{
		{"servers only", nil, CheckOptions{}, false,
			[]string{"configuration: ok", "server " + srv.URL(), "ok (no TLS, service account bound", "result: ok",
				"login attribute:  uid\n", "user filter:      (objectClass=inetOrgPerson)\n", "member attribute: member\n",
				"TLS:              none (clear text)", "WARNING: ldap:// without StartTLS",
				"create on push:   off (AUTH_CREATE_REPOSITORIES)"}, []string{"LDAP_CA_FILE"}},
		{"create on push", func(c *Config) {
			c.Repositories.Create, c.Repositories.AWSRegion, c.Repositories.TagMutability = true, "eu-west-1", "IMMUTABLE"
		}, CheckOptions{}, false,
			[]string{"create on push:   on: region eu-west-1 unless nginx names one, tags IMMUTABLE\n"}, nil},
		{"okta preset, explicit member attribute wins", func(c *Config) {
			c.Directory.Preset, c.LDAPGroupMemberAttribute = "okta", "member"
		}, CheckOptions{Username: "alice"}, false,
			[]string{"preset:           okta", "member attribute: member\n", "user filter:      (objectClass=inetOrgPerson)", "required groups: ok"}, nil},
		{"okta preset fills what is unset", func(c *Config) {
			c.Directory.Preset, c.LDAPGroupMemberAttribute, c.LDAPRequireGroup = "okta", "", slapd.GroupUnique
		}, CheckOptions{Username: "frank"}, false,
			[]string{"member attribute: uniqueMember\n", "required groups: ok"}, nil},
		{"activedirectory preset, explicit URL parts win", func(c *Config) {
			c.Directory.Preset, c.LDAPURL = "activedirectory", srv.URL()+"/"+slapd.BaseDN+"?uid?sub?(objectClass=*)"
		}, CheckOptions{Username: "alice"}, false,
			[]string{"login attribute:  uid\n", "user filter:      (objectClass=*)\n", "canonical name:   alice", "required groups: ok"},
			[]string{"sAMAccountName"}},
		{"user in no group", func(c *Config) { c.Directory.NestedGroups = true }, CheckOptions{Username: "carol"}, true,
			[]string{"groups:           0 (resolved: in no group under dc=example,dc=org)", "nested groups:    walk"},
			[]string{"not resolved"}},
		{"timeout too short for the server list", func(c *Config) {
			c.LDAPURL, c.LDAPTimeout = srv.SearchURL()+" "+srv.URL()+" "+srv.URL(), 2*time.Second
		}, CheckOptions{}, false,
			[]string{"WARNING: 3 servers: if the first 2 do not answer, their dial timeouts (LDAP_DIAL_TIMEOUT 1s each) use up LDAP_TIMEOUT 2s"}, nil},
		{"CA file without TLS", func(c *Config) { c.Directory.CAFile = caFile }, CheckOptions{}, false,
			[]string{"WARNING: LDAP_CA_FILE (or a client certificate) is set but no TLS is used"}, nil},
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

// A server that accepts and never answers costs one dial timeout, not one
// for the probe and another for the user lookup.
func TestCheckHungServerProbedOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // closed when the listener's loop ends
		}
	}()
	const dial = 300 * time.Millisecond
	cfg := Config{LDAPURL: "ldap://" + ln.Addr().String() + "/dc=example,dc=org", LDAPBindDN: slapd.ServiceDN,
		LDAPBindPassword: "x", LDAPDialTimeout: dial, LDAPTimeout: 5 * time.Second, Realm: testRealm, LogLevel: "info"}
	var out bytes.Buffer
	start := time.Now()
	err = Check(context.Background(), cfg, CheckOptions{Username: "alice"}, &out, slog.New(slog.DiscardHandler))
	elapsed := time.Since(start)
	t.Log("\n" + out.String())
	if err == nil || !strings.Contains(out.String(), `user "alice": skipped: no LDAP server answered`) {
		t.Errorf("Check: got %v; want a failure and the user step skipped", err)
	}
	if elapsed > dial*3/2 {
		t.Errorf("Check took %v; want about one dial timeout (%v)", elapsed, dial)
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

// A bad -repo is an error, not a note followed by "ok".
func TestCheckRefusesBadRepository(t *testing.T) {
	var out strings.Builder
	err := Check(t.Context(), Config{}, CheckOptions{Repository: "Team-A/x"}, &out, nil)
	if err == nil || !strings.Contains(out.String(), "not a valid repository name") {
		t.Errorf("Check with -repo Team-A/x: got %v, output %q; want an error naming the repository", err, out.String())
	}
}
