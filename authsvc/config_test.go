package authsvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var allVars = []string{
	"LDAP_URL", "LDAP_BIND_DN", "LDAP_BIND_PASSWORD", "LDAP_BIND_PASSWORD_FILE", "LDAP_REQUIRE_GROUP",
	"LDAP_GROUP_MEMBER_ATTRIBUTE", "LDAP_DIAL_TIMEOUT", "LDAP_TIMEOUT", "AUTH_LISTEN_ADDR", "AUTH_REALM", "LOG_LEVEL",
}

const goodURL = "ldap://ldap.corp:389/ou=people,dc=corp,dc=com?uid?sub?(objectClass=inetOrgPerson)"

// setEnv clears every authsvc variable, then sets vars.
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, k := range allVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	setEnv(t, map[string]string{"LDAP_URL": goodURL, "LDAP_TIMEOUT": ""})
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := Config{
		LDAPURL: goodURL, LDAPGroupMemberAttribute: "", // unset: the preset's, else member
		LDAPDialTimeout: 5 * time.Second, LDAPTimeout: 10 * time.Second,
		ListenAddr: "127.0.0.1:9000", Realm: "aws-ecr-ldap", LogLevel: "info",
		Service: defaultServiceConfig,
	}
	if cfg != want {
		t.Errorf("LoadConfig:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	setEnv(t, map[string]string{
		"LDAP_URL":                    "http://ldap.corp/dc=corp",
		"LDAP_BIND_DN":                "not a dn",
		"LDAP_BIND_PASSWORD":          "hunter2-pw",
		"LDAP_BIND_PASSWORD_FILE":     "/some/file",
		"LDAP_REQUIRE_GROUP":          "neither",
		"LDAP_GROUP_MEMBER_ATTRIBUTE": "memberOf",
		"LDAP_DIAL_TIMEOUT":           "5",
		"LDAP_TIMEOUT":                "ten seconds",
		"AUTH_LISTEN_ADDR":            "9000",
		"AUTH_REALM":                  `bad"realm`,
		"LOG_LEVEL":                   "verbose",
	})
	_, err := LoadConfig()
	if err == nil {
		t.Fatal("LoadConfig: got no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`LDAP_URL: scheme must be ldap or ldaps, got "http"`,
		"LDAP_BIND_DN: not a DN",
		"LDAP_BIND_PASSWORD: set either LDAP_BIND_PASSWORD or LDAP_BIND_PASSWORD_FILE, not both",
		"LDAP_REQUIRE_GROUP: not a DN",
		`LDAP_GROUP_MEMBER_ATTRIBUTE: must be member, uniqueMember or memberUid, got "memberOf"`,
		`LDAP_DIAL_TIMEOUT: not a duration such as 5s or 1m30s, got "5"`,
		`LDAP_TIMEOUT: not a duration such as 5s or 1m30s, got "ten seconds"`,
		`AUTH_LISTEN_ADDR: want host:port or unix:/path, got "9000"`,
		"AUTH_REALM: must be",
		`LOG_LEVEL: must be debug, info, warn or error, got "verbose"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
	if lines := strings.Count(msg, "\n") + 1; lines != 10 {
		t.Errorf("error has %d lines; want 10 (one per problem, no duplicates):\n%s", lines, msg)
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error reveals the bind password:\n%s", msg)
	}
}

func TestValidate(t *testing.T) {
	good := Config{
		LDAPURL: goodURL, LDAPBindDN: `cn=gateway\, reader,dc=corp`, LDAPBindPassword: "pw",
		LDAPGroupMemberAttribute: "memberUid", LDAPDialTimeout: time.Second, LDAPTimeout: time.Second,
		ListenAddr: "unix:/run/authsvc.sock", Realm: "r", LogLevel: "DEBUG",
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good): %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"URL missing", func(c *Config) { c.LDAPURL = "" }, "LDAP_URL: required"},
		{"URL bad filter", func(c *Config) { c.LDAPURL = "ldap://h/dc=x?uid?sub?(uid=" }, "LDAP_URL: filter"},
		{"bind DN without password", func(c *Config) { c.LDAPBindPassword = "" }, "LDAP_BIND_PASSWORD: required when LDAP_BIND_DN is set"},
		{"password without bind DN", func(c *Config) { c.LDAPBindDN = "" }, "LDAP_BIND_DN: required when a bind password is set"},
		{"password and file", func(c *Config) { c.LDAPBindPasswordFile = "/f" }, "not both"},
		{"zero dial timeout", func(c *Config) { c.LDAPDialTimeout = 0 }, "LDAP_DIAL_TIMEOUT: must be positive"},
		{"negative timeout", func(c *Config) { c.LDAPTimeout = -time.Second }, "LDAP_TIMEOUT: must be positive, got -1s"},
		{"relative unix socket", func(c *Config) { c.ListenAddr = "unix:authsvc.sock" }, "AUTH_LISTEN_ADDR: unix socket path must be absolute"},
		{"bad port", func(c *Config) { c.ListenAddr = "127.0.0.1:http" }, "AUTH_LISTEN_ADDR: port must be"},
		{"empty realm", func(c *Config) { c.Realm = "" }, "AUTH_REALM"},
		{"realm with backslash", func(c *Config) { c.Realm = `a\b` }, "AUTH_REALM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: got %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, file, want, wantErr string
	}{
		{"trailing newline trimmed", write("nl", "s3cret: pw \n"), "s3cret: pw ", ""},
		{"CRLF trimmed", write("crlf", "s3cret\r\n"), "s3cret", ""},
		{"no newline", write("plain", "s3cret"), "s3cret", ""},
		{"missing file", filepath.Join(dir, "absent"), "", "LDAP_BIND_PASSWORD_FILE: open "},
		{"empty file", write("empty", "\n"), "", "LDAP_BIND_PASSWORD_FILE: " + filepath.Join(dir, "empty") + " is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, map[string]string{"LDAP_URL": goodURL, "LDAP_BIND_DN": "cn=svc,dc=corp", "LDAP_BIND_PASSWORD_FILE": tt.file})
			cfg, err := LoadConfig()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadConfig: got %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if got := cfg.LDAPBindPassword.Reveal(); got != tt.want {
				t.Errorf("password: got %q; want %q", got, tt.want)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate after LoadConfig read the file: %v", err)
			}
			lc, err := cfg.LDAPConfig()
			if err != nil || lc.BindPassword != tt.want || lc.BindDN != "cn=svc,dc=corp" {
				t.Errorf("LDAPConfig: got %+v, %v; want bind password %q", lc, err, tt.want)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const pw = "hunter2-secret"
	cfg := Config{LDAPURL: goodURL, LDAPBindPassword: pw}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "pw", cfg.LDAPBindPassword)
	asJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg), "%#v": fmt.Sprintf("%#v", cfg),
		"%s": fmt.Sprintf("%s", cfg.LDAPBindPassword), "slog": logged.String(), "json": string(asJSON),
	} {
		if strings.Contains(out, pw) {
			t.Errorf("%s prints the password: %s", name, out)
		}
		if !strings.Contains(out, "***") {
			t.Errorf("%s does not show the redaction: %s", name, out)
		}
	}
}
