package deploy

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/toanc/aws-ecr-ldap/internal/gateway"
)

// The paths inside the containers, as ARCHITECTURE.md lays out the nginx
// configuration directory.
const (
	confDir  = "/etc/nginx"
	ecrDir   = "/etc/nginx/ecr"
	tlsDir   = "/etc/nginx/tls"
	runDir   = "/run/nginx"
	composeF = "../docker-compose.yml"
	envF     = "../.env.example"
)

// loadCompose loads files (relative to this directory) as `docker compose`
// would, with the variables of envFiles and nothing from the OS environment.
func loadCompose(t *testing.T, files []string, envFiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(".."),
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	return cli.ProjectFromOptions(context.Background(), opts)
}

func mustLoadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, []string{composeF}, envF)
	if err != nil {
		t.Fatalf("load docker-compose.yml with .env.example: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

func env(s types.ServiceConfig, key string) (string, bool) {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// tokenwriterPIDFile is the pid file tokenwriter signals; nginx must write it.
func tokenwriterPIDFile(t *testing.T, p *types.Project) string {
	t.Helper()
	pid, ok := env(service(t, p, "tokenwriter"), "NGINX_PID_FILE")
	if !ok {
		t.Fatal("tokenwriter: NGINX_PID_FILE not set")
	}
	return pid
}

func TestComposeCommands(t *testing.T) {
	p := mustLoadCompose(t)
	pidFile := tokenwriterPIDFile(t, p)
	if got, want := path.Dir(pidFile), runDir; got != want {
		t.Errorf("NGINX_PID_FILE %s: directory got %s; want %s (the nginx-run volume)", pidFile, got, want)
	}
	tests := []struct {
		service string
		want    []string
	}{
		{"authsvc", gateway.AuthsvcCommand()},
		{"tokenwriter-init", gateway.TokenwriterOnceCommand()},
		{"tokenwriter", gateway.TokenwriterCommand()},
		{"nginx", gateway.NginxCommand(confDir)},
	}
	if len(p.Services) != len(tests) {
		t.Errorf("services got %v; want exactly %d", p.ServiceNames(), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.service, func(t *testing.T) {
			s := service(t, p, tc.service)
			if !slices.Equal(s.Command, tc.want) {
				t.Errorf("command got %q; want %q", s.Command, tc.want)
			}
			// The command must not be wrapped by an entrypoint from compose;
			// the images reset theirs (see dockerfile_test.go).
			if len(s.Entrypoint) != 0 {
				t.Errorf("entrypoint got %q; want none", s.Entrypoint)
			}
			if s.Build == nil || s.Image == "" {
				t.Errorf("build %v, image %q: want both, so that `docker compose up` builds from this checkout", s.Build, s.Image)
			}
		})
	}
}

// authsvc's liveness check is its own -healthcheck flag (distroless has no
// curl), and tokenwriter-init waits for it: its `nginx -t` resolves `authsvc`.
func TestComposeAuthsvcHealth(t *testing.T) {
	p := mustLoadCompose(t)
	s := service(t, p, "authsvc")
	want := []string{"CMD", "authsvc", "-healthcheck"}
	if s.HealthCheck == nil || !slices.Equal(s.HealthCheck.Test, want) {
		t.Errorf("healthcheck got %+v; want %q", s.HealthCheck, want)
	}
	init := service(t, p, "tokenwriter-init")
	if d, ok := init.DependsOn["authsvc"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("tokenwriter-init depends_on authsvc: got %+v; want condition service_healthy", init.DependsOn)
	}
}

func TestComposeNginx(t *testing.T) {
	p := mustLoadCompose(t)
	s := service(t, p, "nginx")

	var published []string
	for _, port := range s.Ports {
		published = append(published, port.Published+":"+strconv.Itoa(int(port.Target)))
	}
	for _, want := range []string{"80:80", "443:443"} {
		if !slices.Contains(published, want) {
			t.Errorf("ports got %v; want %s among them", published, want)
		}
	}

	dep, ok := s.DependsOn["tokenwriter-init"]
	if !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("depends_on tokenwriter-init got %+v (present %v); want condition %s",
			dep, ok, types.ServiceConditionCompletedSuccessfully)
	}
	if _, ok := s.DependsOn["authsvc"]; !ok {
		t.Errorf("depends_on got %v; want authsvc (nginx resolves it at start)", s.DependsOn)
	}

	if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, "http://127.0.0.1/healthz") {
		t.Errorf("healthcheck got %+v; want a GET of http://127.0.0.1/healthz", s.HealthCheck)
	}
	if s.Restart != types.RestartPolicyUnlessStopped {
		t.Errorf("restart got %q; want %q", s.Restart, types.RestartPolicyUnlessStopped)
	}
}

// mount returns the service's mount at target.
func mount(s types.ServiceConfig, target string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if v.Target == target {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

func TestComposeVolumes(t *testing.T) {
	p := mustLoadCompose(t)
	tests := []struct {
		service, source, target string
		readOnly                bool
		absent                  bool
	}{
		{service: "tokenwriter-init", source: "ecr-token", target: ecrDir},
		{service: "tokenwriter", source: "ecr-token", target: ecrDir},
		{service: "nginx", source: "ecr-token", target: ecrDir, readOnly: true},
		{service: "nginx", source: "nginx-run", target: runDir},
		{service: "tokenwriter", source: "nginx-run", target: runDir, readOnly: true},
		// A stale pid file would name a process in tokenwriter-init's own PID
		// namespace (pid 1 is tokenwriter itself): it must not see one.
		{service: "tokenwriter-init", target: runDir, absent: true},
		{service: "authsvc", target: ecrDir, absent: true},
	}
	for _, tc := range tests {
		t.Run(tc.service+tc.target, func(t *testing.T) {
			v, ok := mount(service(t, p, tc.service), tc.target)
			if tc.absent {
				if ok {
					t.Errorf("mount at %s got %+v; want none", tc.target, v)
				}
				return
			}
			if !ok {
				t.Fatalf("no mount at %s", tc.target)
			}
			if v.Type != types.VolumeTypeVolume || v.Source != tc.source || v.ReadOnly != tc.readOnly {
				t.Errorf("got type %s source %s read-only %v; want volume %s read-only %v",
					v.Type, v.Source, v.ReadOnly, tc.source, tc.readOnly)
			}
		})
	}
	for _, name := range []string{"ecr-token", "nginx-run"} {
		if _, ok := p.Volumes[name]; !ok {
			t.Errorf("top-level volumes got %v; want %s", p.VolumeNames(), name)
		}
	}

	// Every process that loads or tests the nginx configuration sees the same
	// certificates, read-only; a missing directory is an error.
	for _, name := range []string{"nginx", "tokenwriter-init", "tokenwriter"} {
		v, ok := mount(service(t, p, name), tlsDir)
		if !ok {
			t.Errorf("%s: no mount at %s", name, tlsDir)
			continue
		}
		if v.Type != types.VolumeTypeBind || !v.ReadOnly || v.Bind == nil || bool(v.Bind.CreateHostPath) {
			t.Errorf("%s: %s got %+v; want a read-only bind that does not create the host path", name, tlsDir, v)
		}
		if got, want := filepath.Base(v.Source), "tls"; got != want {
			t.Errorf("%s: TLS source got %s; want ./tls from TLS_CERT_DIR in .env.example", name, v.Source)
		}
	}
}

// TestComposeConfigDir: authsvc and both tokenwriters see CONFIG_DIR
// read-only at /etc/aws-ecr-ldap (LDAP CA, policy file); a missing directory
// is created empty, not an error, since most setups need none of it.
func TestComposeConfigDir(t *testing.T) {
	p := mustLoadCompose(t)
	for _, name := range []string{"authsvc", "tokenwriter-init", "tokenwriter"} {
		v, ok := mount(service(t, p, name), "/etc/aws-ecr-ldap")
		if !ok {
			t.Errorf("%s: no mount at /etc/aws-ecr-ldap", name)
			continue
		}
		if v.Type != types.VolumeTypeBind || !v.ReadOnly || v.Bind == nil || !bool(v.Bind.CreateHostPath) {
			t.Errorf("%s: /etc/aws-ecr-ldap got %+v; want a read-only bind that creates a missing host directory", name, v)
		}
		if got, want := filepath.Base(v.Source), "config"; got != want {
			t.Errorf("%s: config source got %s; want ./config (CONFIG_DIR's default)", name, v.Source)
		}
	}
	if _, ok := mount(service(t, p, "nginx"), "/etc/aws-ecr-ldap"); ok {
		t.Error("nginx mounts /etc/aws-ecr-ldap; it needs none of those files")
	}
}

func TestComposeTokenwriter(t *testing.T) {
	p := mustLoadCompose(t)
	tw := service(t, p, "tokenwriter")
	if got, want := tw.Pid, "service:nginx"; got != want {
		t.Errorf("tokenwriter pid got %q; want %q (signals nginx's master by pid)", got, want)
	}
	if dep, ok := tw.DependsOn["nginx"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("tokenwriter depends_on nginx got %+v (present %v); want service_healthy", dep, ok)
	}
	init := service(t, p, "tokenwriter-init")
	if init.Restart != types.RestartPolicyNo && init.Restart != "" {
		t.Errorf("tokenwriter-init restart got %q; want no (one-shot)", init.Restart)
	}
	if _, ok := init.DependsOn["authsvc"]; !ok {
		t.Errorf("tokenwriter-init depends_on got %v; want authsvc (its nginx -t resolves the name)", init.DependsOn)
	}
	if tw.Image != init.Image || tw.Build == nil || init.Build == nil || tw.Build.Dockerfile != init.Build.Dockerfile {
		t.Errorf("tokenwriter and tokenwriter-init images differ: %q %v, %q %v", tw.Image, tw.Build, init.Image, init.Build)
	}

	wantTest := strings.Join(gateway.NginxTestCommand(confDir), " ")
	for _, s := range []types.ServiceConfig{init, tw} {
		got, _ := env(s, "NGINX_TEST_COMMAND")
		if got != wantTest {
			t.Errorf("%s: NGINX_TEST_COMMAND got %q; want %q", s.Name, got, wantTest)
		}
		// tokenwriter splits it with strings.Fields.
		if !slices.Equal(strings.Fields(got), gateway.NginxTestCommand(confDir)) {
			t.Errorf("%s: NGINX_TEST_COMMAND does not split back into %q", s.Name, gateway.NginxTestCommand(confDir))
		}
		if got, _ := env(s, "TOKEN_FILE"); got != path.Join(ecrDir, "ecr.conf") {
			t.Errorf("%s: TOKEN_FILE got %q; want %s (nginx.conf includes ecr/ecr.conf)", s.Name, got, path.Join(ecrDir, "ecr.conf"))
		}
		// Root like nginx's master (same uid: SIGHUP needs no capability),
		// everything else dropped.
		if s.User != "0:0" || !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: user %q cap_drop %v; want 0:0 and [ALL]", s.Name, s.User, s.CapDrop)
		}
		for _, c := range s.CapAdd {
			if !slices.Contains([]string{"NET_BIND_SERVICE", "DAC_READ_SEARCH"}, c) {
				t.Errorf("%s: cap_add %s; want only NET_BIND_SERVICE and DAC_READ_SEARCH", s.Name, c)
			}
		}
	}
}

// TestComposeIsolation: no service can reach the Docker engine or the host,
// and each gets only its own secrets.
func TestComposeIsolation(t *testing.T) {
	p := mustLoadCompose(t)
	for _, s := range p.Services {
		t.Run(s.Name, func(t *testing.T) {
			for _, v := range s.Volumes {
				if strings.Contains(v.Source, "docker.sock") || strings.Contains(v.Target, "docker.sock") ||
					v.Source == "/var/run" || v.Source == "/run" {
					t.Errorf("mounts the Docker socket: %+v", v)
				}
			}
			if s.Privileged || s.Pid == "host" || s.NetworkMode == "host" {
				t.Errorf("privileged %v pid %q network_mode %q; want none of them", s.Privileged, s.Pid, s.NetworkMode)
			}
			if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("security_opt got %v; want no-new-privileges:true", s.SecurityOpt)
			}
			for k := range s.Environment {
				if s.Name == "authsvc" && strings.HasPrefix(k, "AWS_") {
					t.Errorf("authsvc gets %s; AWS credentials are tokenwriter's", k)
				}
				if s.Name != "authsvc" && strings.HasPrefix(k, "LDAP_") {
					t.Errorf("%s gets %s; LDAP credentials are authsvc's", s.Name, k)
				}
			}
			if s.Logging == nil || s.Logging.Driver != "json-file" || s.Logging.Options["max-size"] == "" {
				t.Errorf("logging got %+v; want json-file with rotation", s.Logging)
			}
		})
	}
	a := service(t, p, "authsvc")
	if len(a.Ports) != 0 {
		t.Errorf("authsvc publishes %v; want nothing (nginx reaches it on the compose network)", a.Ports)
	}
	if got, _ := env(a, "AUTH_LISTEN_ADDR"); got != "0.0.0.0:9000" {
		t.Errorf("authsvc AUTH_LISTEN_ADDR got %q; want 0.0.0.0:9000 (local/http.conf: server authsvc:9000)", got)
	}
	if a.Restart != types.RestartPolicyUnlessStopped || !a.ReadOnly {
		t.Errorf("authsvc restart %q read_only %v; want unless-stopped and true", a.Restart, a.ReadOnly)
	}
}

// TestComposeEnvironment: values from .env reach the processes byte for byte,
// and a missing required value stops compose before anything starts.
func TestComposeEnvironment(t *testing.T) {
	p := mustLoadCompose(t)
	a := service(t, p, "authsvc")
	tests := []struct {
		service, key, want string
	}{
		// Escaped comma in a group DN (case A11) and $ in a password: single
		// quotes in .env keep both.
		{"authsvc", "LDAP_REQUIRE_GROUP", `cn=ops\, registry,ou=groups,dc=example,dc=com`},
		{"authsvc", "LDAP_BIND_PASSWORD", `change-me-$ecret`},
		{"authsvc", "LDAP_URL", "ldaps://ldap.example.com/ou=people,dc=example,dc=com?uid?sub?(objectClass=inetOrgPerson)"},
		{"tokenwriter", "AWS_REGION", "eu-west-1"},
		{"tokenwriter-init", "TOKEN_REFRESH_INTERVAL", "6h"},
	}
	for _, tc := range tests {
		if got, ok := env(service(t, p, tc.service), tc.key); got != tc.want {
			t.Errorf("%s %s got %q (set %v); want %q", tc.service, tc.key, got, ok, tc.want)
		}
	}
	// Unset optional variables are not passed at all: an empty value would
	// override the programs' defaults (envconfig) or fail to parse.
	for _, key := range []string{"AWS_KEY", "ECR_REGISTRY_ID", "ECR_REGISTRY_HOST", "LOG_LEVEL"} {
		if v, ok := service(t, p, "tokenwriter").Environment[key]; ok && v != nil {
			t.Errorf("tokenwriter %s got %q; want unset (not in .env.example)", key, *v)
		}
	}
	if _, ok := env(a, "LDAP_BIND_PASSWORD_FILE"); ok {
		t.Errorf("authsvc gets LDAP_BIND_PASSWORD_FILE without deploy/compose.ldap-secret.yml")
	}

	dir := t.TempDir()
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	// REGION, as in the old image, stands in for AWS_REGION.
	old := write("old.env", "LDAP_URL=ldap://ldap:389\nREGION=us-east-2\n")
	po, err := loadCompose(t, []string{composeF}, old)
	if err != nil {
		t.Fatalf("load with REGION only: %v", err)
	}
	if got, _ := env(service(t, po, "tokenwriter"), "AWS_REGION"); got != "us-east-2" {
		t.Errorf("AWS_REGION from REGION got %q; want us-east-2", got)
	}
	for _, tc := range []struct{ name, content, want string }{
		{"no-ldap.env", "AWS_REGION=eu-west-1\n", "LDAP_URL"},
		{"no-region.env", "LDAP_URL=ldap://ldap:389\n", "AWS_REGION"},
	} {
		_, err := loadCompose(t, []string{composeF}, write(tc.name, tc.content))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v; want one naming %s", tc.name, err, tc.want)
		}
	}
}

func TestComposeLDAPSecretOverride(t *testing.T) {
	p, err := loadCompose(t, []string{composeF, "compose.ldap-secret.yml"}, envF)
	if err != nil {
		t.Fatalf("load with deploy/compose.ldap-secret.yml: %v", err)
	}
	a := service(t, p, "authsvc")
	if len(a.Secrets) != 1 || a.Secrets[0].Source != "ldap_bind_password" {
		t.Fatalf("authsvc secrets got %+v; want ldap_bind_password", a.Secrets)
	}
	// Compose mounts a secret at /run/secrets/<name> unless told otherwise.
	want := "/run/secrets/" + a.Secrets[0].Source
	if a.Secrets[0].Target != "" {
		want = a.Secrets[0].Target
	}
	if got, _ := env(a, "LDAP_BIND_PASSWORD_FILE"); got != want {
		t.Errorf("LDAP_BIND_PASSWORD_FILE got %q; want %q", got, want)
	}
	if got := p.Secrets["ldap_bind_password"].File; !strings.HasSuffix(got, "/secrets/ldap_bind_password") {
		t.Errorf("secret file got %q; want ./secrets/ldap_bind_password by default", got)
	}
}

// TestEnvExampleDocumentsEveryVariable: every variable docker-compose.yml
// reads from .env is shown in .env.example, set or commented out.
func TestEnvExampleDocumentsEveryVariable(t *testing.T) {
	compose := readFile(t, composeF)
	example := readFile(t, envF)
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(compose, -1) {
		names[m[1]] = true
	}
	// Environment entries without a value are taken from .env.
	for _, m := range regexp.MustCompile(`(?m)^\s+([A-Z_][A-Z0-9_]*):\s*$`).FindAllStringSubmatch(compose, -1) {
		names[m[1]] = true
	}
	if len(names) < 10 {
		t.Fatalf("found only %d variables in docker-compose.yml: %v", len(names), names)
	}
	for name := range names {
		if !regexp.MustCompile(`(?m)^#?` + name + `=`).MatchString(example) {
			t.Errorf(".env.example does not mention %s (used by docker-compose.yml)", name)
		}
	}
	secret := readFile(t, "compose.ldap-secret.yml")
	if !strings.Contains(secret, "${LDAP_BIND_PASSWORD_SECRET") || !strings.Contains(example, "LDAP_BIND_PASSWORD_SECRET=") {
		t.Error("LDAP_BIND_PASSWORD_SECRET: want it in deploy/compose.ldap-secret.yml and .env.example")
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tokenwriter's own health listener is on and checked.
func TestComposeTokenwriterHealth(t *testing.T) {
	p := mustLoadCompose(t)
	s := service(t, p, "tokenwriter")
	addr, ok := env(s, "TOKENWRITER_LISTEN_ADDR")
	if !ok || addr == "" {
		t.Fatal("tokenwriter: TOKENWRITER_LISTEN_ADDR not set; its /healthz is off")
	}
	if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, "http://"+addr+"/healthz") {
		t.Errorf("tokenwriter healthcheck: got %+v; want a GET of http://%s/healthz", s.HealthCheck, addr)
	}
}
