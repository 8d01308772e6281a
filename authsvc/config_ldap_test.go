package authsvc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
)

var directoryVars = []string{"LDAP_PRESET", "LDAP_START_TLS", "LDAP_CA_FILE", "LDAP_CLIENT_CERT_FILE",
	"LDAP_CLIENT_KEY_FILE", "LDAP_INSECURE_SKIP_VERIFY", "LDAP_POOL_SIZE", "LDAP_POOL_IDLE_TIMEOUT",
	"LDAP_GROUP_BASE", "LDAP_GROUP_FILTER", "LDAP_GROUP_MEMBERSHIP", "LDAP_NESTED_GROUPS", "LDAP_AD_DOMAIN"}

func setDirectoryEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, k := range append(directoryVars, allVars...) {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

func TestDirectoryVariables(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	setDirectoryEnv(t, map[string]string{
		"LDAP_URL":                  goodURL + " http://second",
		"LDAP_REQUIRE_GROUP":        "cn=ok,dc=corp; nonsense",
		"LDAP_PRESET":               "freeipa",
		"LDAP_START_TLS":            "yes please",
		"LDAP_CA_FILE":              notPEM,
		"LDAP_CLIENT_CERT_FILE":     "/some/cert.pem",
		"LDAP_INSECURE_SKIP_VERIFY": "maybe",
		"LDAP_POOL_SIZE":            "eight",
		"LDAP_POOL_IDLE_TIMEOUT":    "1 minute",
		"LDAP_GROUP_BASE":           "groups",
		"LDAP_GROUP_FILTER":         "(cn=",
		"LDAP_GROUP_MEMBERSHIP":     "both",
		"LDAP_NESTED_GROUPS":        "deep",
	})
	_, err := LoadConfig()
	if err == nil {
		t.Fatal("LoadConfig: got no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"LDAP_URL: URL 2 (http://second): scheme must be ldap or ldaps",
		`LDAP_REQUIRE_GROUP: not a DN (separate several with ';'): "nonsense"`,
		`LDAP_PRESET: preset must be activedirectory, okta or openldap, got "freeipa"`,
		`LDAP_START_TLS: must be true or false, got "yes please"`,
		"LDAP_CA_FILE: ca file " + notPEM + ": no PEM certificate found",
		"LDAP_CLIENT_KEY_FILE: required with LDAP_CLIENT_CERT_FILE",
		`LDAP_INSECURE_SKIP_VERIFY: must be true or false, got "maybe"`,
		`LDAP_POOL_SIZE: not a number, got "eight"`,
		`LDAP_POOL_IDLE_TIMEOUT: not a duration such as 30s or 5m, got "1 minute"`,
		"LDAP_GROUP_BASE: not a DN",
		"LDAP_GROUP_FILTER:",
		`LDAP_GROUP_MEMBERSHIP: group membership must be entries or memberof, got "both"`,
		`LDAP_NESTED_GROUPS: must be true or false, got "deep"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
	if lines := strings.Count(msg, "\n") + 1; lines != 13 {
		t.Errorf("error has %d lines; want 13 (one per problem):\n%s", lines, msg)
	}

	setDirectoryEnv(t, map[string]string{
		"LDAP_URL":               "ldaps://dc1.corp/dc=corp,dc=com ldaps://dc2.corp",
		"LDAP_PRESET":            "ActiveDirectory",
		"LDAP_AD_DOMAIN":         "CORP",
		"LDAP_REQUIRE_GROUP":     `cn=ops\, registry,ou=groups,dc=corp,dc=com ; cn=admins,ou=groups,dc=corp,dc=com;`,
		"LDAP_NESTED_GROUPS":     "true",
		"LDAP_POOL_SIZE":         "4",
		"LDAP_POOL_IDLE_TIMEOUT": "30s",
		"LDAP_GROUP_BASE":        "ou=groups,dc=corp,dc=com",
	})
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	lc, err := cfg.LDAPConfig()
	if err != nil {
		t.Fatalf("LDAPConfig: %v", err)
	}
	if len(lc.URLs) != 2 || lc.URLs[1].Addr() != "dc2.corp:636" || lc.Preset != ldapauth.PresetActiveDirectory ||
		len(lc.RequireGroups) != 2 || lc.RequireGroups[0] != `cn=ops\, registry,ou=groups,dc=corp,dc=com` ||
		!lc.NestedGroups || lc.PoolSize != 4 || lc.PoolIdleTimeout != 30*time.Second || lc.ADDomain != "CORP" ||
		lc.GroupBaseDN != "ou=groups,dc=corp,dc=com" || lc.TLSConfig == nil {
		t.Errorf("LDAPConfig: got %+v", lc)
	}
	if _, err := ldapauth.New(lc, nil); err != nil {
		t.Errorf("ldapauth.New: %v", err)
	}
}

func TestStartTLSWithLDAPSRefused(t *testing.T) {
	for _, tt := range []struct {
		url     string
		wantErr bool
	}{
		{"ldaps://dc1.corp/dc=corp,dc=com", true},
		{"ldaps://dc1.corp/dc=corp,dc=com ldaps://dc2.corp", true},
		{"ldap://dc1.corp/dc=corp,dc=com ldaps://dc2.corp", false}, // StartTLS upgrades dc1
		{"ldap://dc1.corp/dc=corp,dc=com", false},
	} {
		setDirectoryEnv(t, map[string]string{"LDAP_URL": tt.url, "LDAP_START_TLS": "true"})
		_, err := LoadConfig()
		const want = "LDAP_START_TLS: contradicts ldaps:// in LDAP_URL"
		if got := err != nil && strings.Contains(err.Error(), want); got != tt.wantErr {
			t.Errorf("LDAP_URL=%s LDAP_START_TLS=true: got error %v; want one containing %q: %v", tt.url, err, want, tt.wantErr)
		}
	}
}
