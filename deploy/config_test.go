package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/toanc/aws-ecr-ldap/authsvc"
	"github.com/toanc/aws-ecr-ldap/tokenwriter"
)

// sdkVariables are read by the AWS SDK itself, not by tokenwriter's Config:
// the ones the deployments pass on (README.md's tokenwriter table).
var sdkVariables = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_ECR"}

// envconfigNames returns the envconfig tags of the non-test Go files in dir.
func envconfigNames(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if field, ok := n.(*ast.Field); ok && field.Tag != nil {
				tag, err := strconv.Unquote(field.Tag.Value)
				if err == nil {
					if name := reflect.StructTag(tag).Get("envconfig"); name != "" {
						names = append(names, name)
					}
				}
			}
			return true
		})
	}
	if len(names) == 0 {
		t.Fatalf("%s: no envconfig tags found", dir)
	}
	return names
}

// TestComposeVariablesAreRead: every variable compose hands a process is one
// the process reads; a misspelt name would be silently ignored.
func TestComposeVariablesAreRead(t *testing.T) {
	p := mustLoadCompose(t)
	read := map[string][]string{
		"authsvc":          envconfigNames(t, "../authsvc"),
		"tokenwriter":      append(envconfigNames(t, "../tokenwriter"), sdkVariables...),
		"tokenwriter-init": append(envconfigNames(t, "../tokenwriter"), sdkVariables...),
	}
	for name, known := range read {
		for key := range service(t, p, name).Environment {
			if !slices.Contains(known, key) {
				t.Errorf("%s: environment %s is not read by the program", name, key)
			}
		}
	}
	secret, err := loadCompose(t, []string{composeF, "compose.ldap-secret.yml"}, envF)
	if err != nil {
		t.Fatal(err)
	}
	for key := range service(t, secret, "authsvc").Environment {
		if !slices.Contains(read["authsvc"], key) {
			t.Errorf("authsvc with compose.ldap-secret.yml: %s is not read by the program", key)
		}
	}
}

// TestComposePassesEveryVariable: compose hands each program every variable
// it reads, so that nothing set in .env is silently dropped. The exceptions
// are the variables compose sets itself, named here.
func TestComposePassesEveryVariable(t *testing.T) {
	p := mustLoadCompose(t)
	tokenwriterOwn := map[string]string{
		"AWS_REGION":         "from AWS_REGION or REGION in .env",
		"REGION":             "folded into AWS_REGION",
		"TOKEN_FILE":         "the ecr-token volume",
		"NGINX_TEST_COMMAND": "gateway.NginxTestCommand(/etc/nginx)",
		"NGINX_PID_FILE":     "the nginx-run volume",
	}
	for _, tc := range []struct {
		service string
		reads   []string
		own     map[string]string
	}{
		{"authsvc", envconfigNames(t, "../authsvc"), map[string]string{
			"LDAP_URL":         "required, ${LDAP_URL:?...}",
			"AUTH_LISTEN_ADDR": "0.0.0.0:9000, where nginx's upstream points",
		}},
		{"tokenwriter", append(envconfigNames(t, "../tokenwriter"), sdkVariables...), tokenwriterOwn},
		{"tokenwriter-init", append(envconfigNames(t, "../tokenwriter"), sdkVariables...), tokenwriterOwn},
	} {
		env := service(t, p, tc.service).Environment
		for _, name := range tc.reads {
			_, passed := env[name]
			_, own := tc.own[name]
			if !passed && !own {
				t.Errorf("%s reads %s, but docker-compose.yml does not pass it (add `%s:` to its environment)", tc.service, name, name)
			}
		}
		for name := range tc.own {
			if !slices.Contains(tc.reads, name) {
				t.Errorf("%s: exception %s is not a variable the program reads; remove it from this test", tc.service, name)
			}
		}
	}
	// An unset variable stays unset: `NAME:` without a value, not `NAME: ${NAME}`.
	compose := readFile(t, composeF)
	if m := regexp.MustCompile(`(?m)^\s+([A-Z_][A-Z0-9_]*): \$\{([A-Z_][A-Z0-9_]*)\}\s*$`).FindAllStringSubmatch(compose, -1); m != nil {
		t.Errorf("docker-compose.yml passes %v as ${NAME}: an unset one becomes empty, not unset", m)
	}
}

// setServiceEnv makes the process environment exactly what compose would give
// service s, for the variables in names (others the program reads are unset).
func setServiceEnv(t *testing.T, s types.ServiceConfig, names []string) {
	t.Helper()
	for _, k := range slices.Concat(names, sdkVariables) {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range s.Environment {
		if v != nil {
			t.Setenv(k, *v)
		}
	}
}

// TestExampleConfigLoads: with .env.example, each program's own loader
// accepts what compose hands it.
func TestExampleConfigLoads(t *testing.T) {
	p := mustLoadCompose(t)
	t.Run("authsvc", func(t *testing.T) {
		setServiceEnv(t, service(t, p, "authsvc"), envconfigNames(t, "../authsvc"))
		cfg, err := authsvc.LoadConfig()
		if err != nil {
			t.Fatalf("authsvc.LoadConfig: %v", err)
		}
		if cfg.ListenAddr != "0.0.0.0:9000" || cfg.LDAPRequireGroup != `cn=ops\, registry,ou=groups,dc=example,dc=com` {
			t.Errorf("got listen %q group %q; want 0.0.0.0:9000 and the escaped-comma DN", cfg.ListenAddr, cfg.LDAPRequireGroup)
		}
	})
	for _, name := range []string{"tokenwriter", "tokenwriter-init"} {
		t.Run(name, func(t *testing.T) {
			setServiceEnv(t, service(t, p, name), envconfigNames(t, "../tokenwriter"))
			cfg, err := tokenwriter.Load()
			if err != nil {
				t.Fatalf("tokenwriter.Load: %v", err)
			}
			if cfg.NginxPIDFile == "" || cfg.TokenFile != ecrDir+"/ecr.conf" {
				t.Errorf("got pid file %q token file %q; want both in the shared volumes", cfg.NginxPIDFile, cfg.TokenFile)
			}
		})
	}
	t.Run("authsvc-secret-file", func(t *testing.T) {
		ps, err := loadCompose(t, []string{composeF, "compose.ldap-secret.yml"}, envF)
		if err != nil {
			t.Fatal(err)
		}
		s := service(t, ps, "authsvc")
		// Stand in for the mounted secret.
		f := filepath.Join(t.TempDir(), "ldap_bind_password")
		if err := os.WriteFile(f, []byte("from-the-file\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		pw := "from-the-file"
		s.Environment["LDAP_BIND_PASSWORD_FILE"] = &f
		setServiceEnv(t, s, envconfigNames(t, "../authsvc"))
		cfg, err := authsvc.LoadConfig()
		if err != nil {
			t.Fatalf("authsvc.LoadConfig: %v", err)
		}
		if string(cfg.LDAPBindPassword) != pw {
			t.Error("bind password: not the one from LDAP_BIND_PASSWORD_FILE")
		}
	})
}
