package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/toanc/aws-ecr-ldap/authsvc"
	"github.com/toanc/aws-ecr-ldap/internal/gateway"
	"github.com/toanc/aws-ecr-ldap/internal/slapd"
	"github.com/toanc/aws-ecr-ldap/tokenwriter"
)

var update = flag.Bool("update", false, "rewrite generated files (deploy/demo/ldap/directory.ldif, deploy/kubernetes/nginx/)")

const (
	demoOverride = "compose.demo.yml"
	demoEnv      = "demo/demo.env"
	demoDir      = "/demo"
)

var demoServices = []string{"demo-ldap", "demo-registry", "demo-ecr"}

func loadDemo(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeF, demoOverride},
		cli.WithWorkingDirectory(".."),
		cli.WithEnvFiles(demoEnv),
		cli.WithDotEnv,
		cli.WithProfiles([]string{"demo"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("load the demo (docker-compose.yml + deploy/compose.demo.yml, demo.env, profile demo): %v", err)
	}
	return p
}

// TestComposeDemoProfile: the demo services exist only in the demo profile.
func TestComposeDemoProfile(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{composeF}, cli.WithWorkingDirectory(".."),
		cli.WithEnvFiles(envF), cli.WithDotEnv, cli.WithProfiles([]string{"demo"}))
	if err != nil {
		t.Fatal(err)
	}
	withProfile, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("load docker-compose.yml with the demo profile: %v", err)
	}
	without := mustLoadCompose(t)
	for _, name := range demoServices {
		if _, err := withProfile.GetService(name); err != nil {
			t.Errorf("profile demo: %v", err)
		}
		if _, err := without.GetService(name); err == nil {
			t.Errorf("%s is started without --profile demo", name)
		}
		s := service(t, withProfile, name)
		if !slices.Equal(s.Profiles, []string{"demo"}) {
			t.Errorf("%s: profiles got %v; want [demo]", name, s.Profiles)
		}
	}
}

// TestComposeDemoWiring: in the demo, each gateway process points at the demo
// service it needs, at the address that service listens on.
func TestComposeDemoWiring(t *testing.T) {
	p := loadDemo(t)
	if got, want := len(p.Services), 7; got != want {
		t.Errorf("services got %v; want %d", p.ServiceNames(), want)
	}
	for _, tc := range []struct {
		service string
		want    []string
	}{
		{"authsvc", gateway.AuthsvcCommand()},
		{"tokenwriter-init", gateway.TokenwriterOnceCommand()},
		{"tokenwriter", gateway.TokenwriterCommand()},
		{"nginx", gateway.NginxCommand(confDir)},
	} {
		if got := service(t, p, tc.service).Command; !slices.Equal(got, tc.want) {
			t.Errorf("%s: command got %q; want %q", tc.service, got, tc.want)
		}
	}
	for _, s := range p.Services {
		// The emulator's ports are loopback ports chosen at start (see
		// docker-compose.yml): everything shares the host's loopback.
		if s.NetworkMode != "host" {
			t.Errorf("%s: network_mode got %q; want host", s.Name, s.NetworkMode)
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s: ports got %v; want none with the host network", s.Name, s.Ports)
		}
		if s.Logging == nil || s.Logging.Driver != "json-file" {
			t.Errorf("%s: logging got %+v; want json-file", s.Name, s.Logging)
		}
		if s.Restart == "" && s.Name != "tokenwriter-init" {
			t.Errorf("%s: no restart policy", s.Name)
		}
	}

	// Start order: LDAP before authsvc, the emulator (its CA and API URL)
	// before the first token, the first token before nginx.
	for _, tc := range []struct{ service, dep, cond string }{
		{"authsvc", "demo-ldap", types.ServiceConditionHealthy},
		{"demo-ecr", "demo-registry", types.ServiceConditionHealthy},
		{"tokenwriter-init", "demo-ecr", types.ServiceConditionHealthy},
		{"tokenwriter-init", "authsvc", types.ServiceConditionHealthy},
		{"nginx", "tokenwriter-init", types.ServiceConditionCompletedSuccessfully},
		{"tokenwriter", "nginx", types.ServiceConditionHealthy},
	} {
		if d, ok := service(t, p, tc.service).DependsOn[tc.dep]; !ok || d.Condition != tc.cond {
			t.Errorf("%s depends_on %s: got %+v (present %v); want %s", tc.service, tc.dep, d, ok, tc.cond)
		}
	}
	for _, name := range demoServices {
		if service(t, p, name).HealthCheck == nil {
			t.Errorf("%s: no healthcheck; its dependants wait for service_healthy", name)
		}
	}

	// demo-ldap listens where authsvc's LDAP_URL points.
	a := service(t, p, "authsvc")
	ldapURL, _ := env(a, "LDAP_URL")
	u, err := url.Parse(ldapURL)
	if err != nil {
		t.Fatalf("LDAP_URL %q: %v", ldapURL, err)
	}
	ldapCmd := service(t, p, "demo-ldap").Command
	if i := slices.Index(ldapCmd, "-h"); i < 0 || i+1 >= len(ldapCmd) || ldapCmd[i+1] != "ldap://"+u.Host+"/" {
		t.Errorf("demo-ldap command %q: want -h ldap://%s/ (authsvc's LDAP_URL)", ldapCmd, u.Host)
	}
	if got, want := strings.TrimPrefix(ldapURL, "ldap://"+u.Host), slapd.SearchPath; got != want {
		t.Errorf("LDAP_URL path got %q; want the sample directory's %q", got, want)
	}
	for key, want := range map[string]string{
		"LDAP_BIND_DN":       slapd.ServiceDN,
		"LDAP_BIND_PASSWORD": slapd.ServicePassword,
		"LDAP_REQUIRE_GROUP": slapd.GroupRegistryUsers,
	} {
		if got, _ := env(a, key); got != want {
			t.Errorf("authsvc %s got %q; want %q (internal/slapd)", key, got, want)
		}
	}

	// nginx reaches authsvc where it listens; its health check asks the port it
	// listens on.
	httpConf := readFile(t, "demo/nginx/local/http.conf")
	listen := readFile(t, "demo/nginx/local/listen.conf")
	authAddr, _ := env(a, "AUTH_LISTEN_ADDR")
	if !strings.Contains(httpConf, "server "+authAddr+";") {
		t.Errorf("demo http.conf has no `server %s;` (authsvc's AUTH_LISTEN_ADDR)", authAddr)
	}
	n := service(t, p, "nginx")
	gatewayAddr := strings.TrimSuffix(strings.TrimPrefix(firstDirective(t, listen, "listen"), "listen "), ";")
	if n.HealthCheck == nil || !slices.Contains(n.HealthCheck.Test, "http://"+gatewayAddr+"/healthz") {
		t.Errorf("nginx healthcheck got %+v; want http://%s/healthz (demo listen.conf)", n.HealthCheck, gatewayAddr)
	}

	// demo-ecr's backend is demo-registry.
	reg := service(t, p, "demo-registry")
	regAddr, _ := env(reg, "REGISTRY_HTTP_ADDR")
	ecrCmd := service(t, p, "demo-ecr").Command
	if i := slices.Index(ecrCmd, "-backend"); i < 0 || ecrCmd[i+1] != "http://"+regAddr {
		t.Errorf("demo-ecr command %q: want -backend http://%s (demo-registry)", ecrCmd, regAddr)
	}
	if !strings.HasPrefix(regAddr, "127.0.0.1:") {
		t.Errorf("demo-registry listens on %q; want loopback only", regAddr)
	}
	if !pinnedRef(reg.Image) {
		t.Errorf("demo-registry image %q: want a pinned tag", reg.Image)
	}

	// The emulator's CA and API URL travel on the demo volume: demo-ecr writes
	// it, nginx and both tokenwriters read it; nginx.conf's local snippets are
	// the demo ones for nginx and for tokenwriter's `nginx -t` alike.
	caFile := strings.TrimSuffix(strings.TrimPrefix(firstDirective(t, httpConf, "proxy_ssl_trusted_certificate"), "proxy_ssl_trusted_certificate "), ";")
	if !strings.HasPrefix(caFile, demoDir+"/") {
		t.Errorf("demo proxy_ssl_trusted_certificate %q: want the emulator's CA under %s", caFile, demoDir)
	}
	if v, ok := mount(service(t, p, "demo-ecr"), demoDir); !ok || v.Source != "demo" || v.ReadOnly {
		t.Errorf("demo-ecr: mount %s got %+v; want the demo volume, writable", demoDir, v)
	}
	for _, name := range []string{"nginx", "tokenwriter-init", "tokenwriter"} {
		s := service(t, p, name)
		if v, ok := mount(s, demoDir); !ok || v.Source != "demo" || !v.ReadOnly {
			t.Errorf("%s: mount %s got %+v; want the demo volume read-only", name, demoDir, v)
		}
		v, ok := mount(s, confDir+"/local")
		if !ok || v.Type != types.VolumeTypeBind || !strings.HasSuffix(v.Source, "/deploy/demo/nginx/local") || !v.ReadOnly {
			t.Errorf("%s: mount %s/local got %+v; want deploy/demo/nginx/local read-only", name, confDir, v)
		}
		if got := service(t, p, name).Command; name != "nginx" && !slices.Equal(got, gateway.TokenwriterCommand()) && !slices.Equal(got, gateway.TokenwriterOnceCommand()) {
			t.Errorf("%s: command %q", name, got)
		}
		if name != "nginx" {
			if got, _ := env(s, "AWS_CONFIG_FILE"); got != demoDir+"/aws-config" {
				t.Errorf("%s: AWS_CONFIG_FILE got %q; want %s/aws-config (written by demo-ecr)", name, got, demoDir)
			}
		}
	}
	if hc := service(t, p, "demo-ecr").HealthCheck; hc == nil || !slices.Contains(hc.Test, demoDir+"/aws-config") {
		t.Errorf("demo-ecr healthcheck got %+v; want it to wait for %s/aws-config", hc, demoDir)
	}
}

// firstDirective returns the first line of conf that starts with name.
func firstDirective(t *testing.T, conf, name string) string {
	t.Helper()
	for _, line := range strings.Split(stripComments(conf), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	t.Fatalf("no %s directive in\n%s", name, conf)
	return ""
}

// TestDemoConfigLoads: authsvc's and tokenwriter's own loaders accept what the
// demo hands them, and every variable is one they (or the AWS SDK) read.
func TestDemoConfigLoads(t *testing.T) {
	p := loadDemo(t)
	sdk := append(slices.Clone(sdkVariables), "AWS_CONFIG_FILE")
	for _, name := range []string{"tokenwriter", "tokenwriter-init"} {
		known := append(envconfigNames(t, "../tokenwriter"), sdk...)
		for key := range service(t, p, name).Environment {
			if !slices.Contains(known, key) {
				t.Errorf("%s: environment %s is not read by the program", name, key)
			}
		}
		t.Run(name, func(t *testing.T) {
			setServiceEnv(t, service(t, p, name), append(envconfigNames(t, "../tokenwriter"), "AWS_CONFIG_FILE"))
			if _, err := tokenwriter.Load(); err != nil {
				t.Fatalf("tokenwriter.Load: %v", err)
			}
		})
	}
	t.Run("authsvc", func(t *testing.T) {
		setServiceEnv(t, service(t, p, "authsvc"), envconfigNames(t, "../authsvc"))
		cfg, err := authsvc.LoadConfig()
		if err != nil {
			t.Fatalf("authsvc.LoadConfig: %v", err)
		}
		if cfg.ListenAddr != "127.0.0.1:9000" {
			t.Errorf("listen got %q; want 127.0.0.1:9000", cfg.ListenAddr)
		}
	})
}

// TestDemoNginxConfig runs the demo's nginx configuration (nginx.conf with
// deploy/demo/nginx/local) through the real `nginx -t`.
func TestDemoNginxConfig(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"nginx.conf": readFile(t, "../nginx/nginx.conf")}
	for _, f := range []string{"main.conf", "http.conf", "listen.conf"} {
		files["local/"+f] = readFile(t, "demo/nginx/local/"+f)
	}
	writeCA(t, filepath.Join(dir, "demo", "ecr-ca.pem"))
	assembleConfDir(t, dir, files, []rewrite{
		{"local/main.conf", "pid /run/nginx/nginx.pid;", "pid " + dir + "/nginx.pid;", 1},
		{"local/http.conf", "/var/cache/nginx/", dir + "/cache/", 5},
		{"local/http.conf", "server 127.0.0.1:9000;", "server 127.0.0.1:" + strconv.Itoa(freePort(t)) + ";", 1},
		{"local/http.conf", demoDir + "/ecr-ca.pem", dir + "/demo/ecr-ca.pem", 1},
		{"local/listen.conf", "listen 127.0.0.1:5080;", "listen 127.0.0.1:" + strconv.Itoa(freePort(t)) + ";", 1},
	}, ecrInclude("localhost", 5443, ecrToken(t, 6400)))
	if out, err := nginxTest(t, dir); err != nil {
		t.Fatalf("nginx -t on the demo configuration: %v\n%s", err, out)
	}
}

// demoLDIF renders the sample directory of internal/slapd as LDIF, in an
// order slapadd accepts (parents first).
func demoLDIF() string {
	var b strings.Builder
	b.WriteString("# Generated from internal/slapd/data.go by `go test ./deploy -run TestDemoLDIF -update`;\n" +
		"# do not edit. Loaded with slapadd by deploy/demo/ldap.Dockerfile. Every\n" +
		"# password is public on purpose: this is the demo and test directory.\n")
	entry := func(dn string, attrs ...[2]string) {
		b.WriteString("\n")
		ldifLine(&b, "dn", dn)
		for _, a := range attrs {
			ldifLine(&b, a[0], a[1])
		}
	}
	a := func(k, v string) [2]string { return [2]string{k, v} }
	entry(slapd.BaseDN, a("objectClass", "dcObject"), a("objectClass", "organization"), a("dc", "example"), a("o", "Example"))
	for _, ou := range []string{slapd.PeopleDN, slapd.ContractorsDN, slapd.ServicesDN, slapd.GroupsDN} {
		name := strings.TrimPrefix(strings.Split(ou, ",")[0], "ou=")
		entry(ou, a("objectClass", "organizationalUnit"), a("ou", name))
	}
	entry(slapd.ServiceDN, a("objectClass", "organizationalRole"), a("objectClass", "simpleSecurityObject"),
		a("cn", "gateway, reader"), a("userPassword", slapd.ServicePassword))
	for _, u := range slapd.Users {
		entry(u.DN, a("objectClass", "inetOrgPerson"), a("uid", u.Name), a("cn", u.Name), a("sn", u.Name), a("userPassword", u.Password))
	}
	members := func(group string, byName bool) [][2]string {
		var out [][2]string
		for _, u := range slapd.Users {
			if slices.Contains(u.Groups, group) {
				if byName {
					out = append(out, a("memberUid", u.Name))
				} else {
					out = append(out, a("member", u.DN))
				}
			}
		}
		return out
	}
	group := func(dn, cn string, mem ...[2]string) {
		entry(dn, append([][2]string{a("objectClass", "groupOfNames"), a("cn", cn)}, mem...)...)
	}
	group(slapd.GroupRegistryUsers, "registry-users", members(slapd.GroupRegistryUsers, false)...)
	group(slapd.GroupOps, "ops, registry", members(slapd.GroupOps, false)...)
	entry(slapd.GroupPosix, append([][2]string{a("objectClass", "posixGroup"), a("cn", "registry-posix"), a("gidNumber", "5000")},
		members(slapd.GroupPosix, true)...)...)
	var unique [][2]string
	for _, m := range members(slapd.GroupUnique, false) {
		unique = append(unique, a("uniqueMember", m[1]))
	}
	entry(slapd.GroupUnique, append([][2]string{a("objectClass", "groupOfUniqueNames"), a("cn", "registry-unique")}, unique...)...)
	group(slapd.GroupNestedLeaf, "nested-leaf", members(slapd.GroupNestedLeaf, false)...)
	group(slapd.GroupNestedMid, "nested-mid", a("member", slapd.GroupNestedLeaf))
	group(slapd.GroupNestedTop, "nested-top", a("member", slapd.GroupNestedMid))
	group(slapd.GroupCycleA, "cycle-a", a("member", slapd.GroupNestedLeaf), a("member", slapd.GroupCycleB))
	group(slapd.GroupCycleB, "cycle-b", a("member", slapd.GroupCycleA))
	return b.String()
}

// ldifLine writes one attribute, base64 (RFC 2849 "::") unless it is a safe string.
func ldifLine(b *strings.Builder, attr, value string) {
	safe := utf8.ValidString(value) && !strings.HasPrefix(value, " ") && !strings.HasPrefix(value, ":") &&
		!strings.HasPrefix(value, "<") && !strings.HasSuffix(value, " ")
	for _, r := range value {
		if r > 0x7e || r < 0x20 {
			safe = false
		}
	}
	if safe {
		fmt.Fprintf(b, "%s: %s\n", attr, value)
		return
	}
	fmt.Fprintf(b, "%s:: %s\n", attr, base64.StdEncoding.EncodeToString([]byte(value)))
}

// TestDemoLDIF: the demo directory is internal/slapd's sample directory, and
// slapadd (with the demo slapd.conf) accepts it.
func TestDemoLDIF(t *testing.T) {
	const file = "demo/ldap/directory.ldif"
	want := demoLDIF()
	if *update {
		writeFile(t, file, want)
	}
	if got := readFile(t, file); got != want {
		t.Fatalf("%s differs from internal/slapd's sample directory; run go test ./deploy -run TestDemoLDIF -update", file)
	}
	// Every login the README promises is in the file, with its password.
	for _, u := range slapd.Users {
		var line strings.Builder
		ldifLine(&line, "userPassword", u.Password)
		if !strings.Contains(want, line.String()) {
			t.Errorf("%s: no password line for %s", file, u.Name)
		}
	}

	slapadd, err := exec.LookPath("slapadd")
	if err != nil {
		slapadd = "/usr/sbin/slapadd"
	}
	if _, err := os.Stat(slapadd); err != nil {
		t.Skipf("slapadd not installed: %v", err)
	}
	dir := t.TempDir()
	conf := readFile(t, "demo/ldap/slapd.conf")
	if n := strings.Count(conf, "/var/lib/demo-ldap/"); n != 3 {
		t.Fatalf("slapd.conf: /var/lib/demo-ldap/ occurs %d times; want 3 (update this test)", n)
	}
	conf = strings.ReplaceAll(conf, "/var/lib/demo-ldap/", dir+"/")
	writeFile(t, filepath.Join(dir, "slapd.conf"), conf)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	// As ldap.Dockerfile: slaptest, then slapadd (here -u, a dry run).
	for _, argv := range [][]string{
		{"slaptest", "-Q", "-u", "-f", filepath.Join(dir, "slapd.conf")},
		{"slapadd", "-u", "-f", filepath.Join(dir, "slapd.conf"), "-l", file},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, filepath.Join(filepath.Dir(slapadd), argv[0]), argv[1:]...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	// The image's command points at the same configuration.
	d := mustParseDockerfile(t, "demo/ldap.Dockerfile")
	cmd, _ := d.final().last("CMD")
	if got, _ := cmd.execForm(); !slices.Equal(got, service(t, loadDemo(t), "demo-ldap").Command) {
		t.Errorf("ldap.Dockerfile CMD %q differs from docker-compose.yml's demo-ldap command", got)
	}
}

// TestDemoDockerfiles: the demo images are pinned, labelled, versioned and
// copy files that exist.
func TestDemoDockerfiles(t *testing.T) {
	for _, file := range []string{"demo/ldap.Dockerfile", "demo/ecr-emulator.Dockerfile"} {
		t.Run(file, func(t *testing.T) {
			d := mustParseDockerfile(t, file)
			for _, s := range d.stages {
				if _, isStage := d.stageNamed(s.from); !isStage && !pinnedRef(s.from) {
					t.Errorf("FROM %s: want a tag or digest", s.from)
				}
			}
			final := d.final()
			if got := final.labels()["org.opencontainers.image.version"]; got != "${VERSION}" {
				t.Errorf("version label got %q; want ${VERSION}", got)
			}
			user, ok := final.last("USER")
			if u, _, _ := strings.Cut(user.args, ":"); !ok || u == "0" || u == "root" {
				t.Errorf("USER got %q; want a non-root user", user.args)
			}
			checkContextPaths(t, d)
		})
	}
	d := mustParseDockerfile(t, "demo/ecr-emulator.Dockerfile")
	checkGoBuild(t, d, "ecr-emulator")
	cmd, _ := d.final().last("CMD")
	if got, _ := cmd.execForm(); !slices.Equal(got, service(t, loadDemo(t), "demo-ecr").Command) {
		t.Errorf("ecr-emulator.Dockerfile CMD %q differs from docker-compose.yml's demo-ecr command", got)
	}
}

// TestDemoEmulatorWrapper runs demo-ecr's command natively: the wrapper with the
// real ecr-emulator. The AWS SDK, configured only by the environment the demo
// gives tokenwriter (AWS_CONFIG_FILE, the demo credentials), must get a token
// from it, and the CA it wrote must verify the registry front by the name
// nginx uses.
func TestDemoEmulatorWrapper(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ecr-emulator")
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/ecr-emulator").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ecr-emulator: %v\n%s", err, out)
	}
	if err := os.Symlink(mustAbs(t, "demo/ecr-emulator-demo.sh"), filepath.Join(bin, "ecr-emulator-demo")); err != nil {
		t.Fatal(err)
	}
	p := loadDemo(t)
	argv := service(t, p, "demo-ecr").Command
	// The registry behind it is not contacted for a token.
	argv = slices.Clone(argv)
	argv[slices.Index(argv, "-backend")+1] = "http://127.0.0.1:" + strconv.Itoa(freePort(t))

	state := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, argv[0]), argv[1:]...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "DEMO_DIR="+state, "TMPDIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	})

	awsConfig := filepath.Join(state, "aws-config")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if fi, err := os.Stat(awsConfig); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 20s\n%s", awsConfig, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	tw := service(t, p, "tokenwriter")
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		v, _ := env(tw, k)
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(state, "no-credentials"))
	t.Setenv("AWS_CONFIG_FILE", awsConfig)
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("GetAuthorizationToken through %s: %v\n%s", awsConfig, err, stderr.String())
	}
	if len(out.AuthorizationData) != 1 || aws.ToString(out.AuthorizationData[0].AuthorizationToken) == "" {
		t.Fatalf("authorization data got %+v; want one token", out.AuthorizationData)
	}
	front, err := url.Parse(aws.ToString(out.AuthorizationData[0].ProxyEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(state, "ecr-ca.pem")))) {
		t.Fatal("ecr-ca.pem: no certificate")
	}
	// nginx verifies proxy_ssl_name $ecr_registry_host, the host without port.
	conn, err := tls.Dial("tcp", front.Host, &tls.Config{RootCAs: pool, ServerName: front.Hostname()})
	if err != nil {
		t.Fatalf("TLS to the registry front %s with ecr-ca.pem: %v", front.Host, err)
	}
	conn.Close()
	endpoints := readFile(t, filepath.Join(state, "endpoints.env"))
	sc := bufio.NewScanner(strings.NewReader(endpoints))
	var keys []string
	for sc.Scan() {
		k, _, _ := strings.Cut(sc.Text(), "=")
		keys = append(keys, k)
	}
	if !slices.Contains(keys, "AWS_ENDPOINT_URL_ECR") {
		t.Errorf("endpoints.env got %q", endpoints)
	}

	// docker stop: SIGTERM reaches the emulator, the wrapper exits 0.
	stopped = true
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("wrapper after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Errorf("wrapper still running 10s after SIGTERM")
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
