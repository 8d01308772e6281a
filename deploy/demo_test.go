package deploy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
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
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
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

// TestComposeDemoWiring: in the demo, every container is on the project's
// network, and each gateway process points at the demo service it needs, by
// service name, at the port that service listens on. Only the gateway and the
// emulator's "S3" port are published, on the host's loopback.
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
	published := map[string][]types.ServicePortConfig{}
	for _, s := range p.Services {
		if s.NetworkMode != "" {
			t.Errorf("%s: network_mode got %q; want none (the project's network)", s.Name, s.NetworkMode)
		}
		if _, ok := s.Networks["default"]; !ok || len(s.Networks) != 1 {
			t.Errorf("%s: networks got %v; want the project's default network only", s.Name, s.Networks)
		}
		if len(s.Ports) > 0 {
			published[s.Name] = s.Ports
		}
		if s.Logging == nil || s.Logging.Driver != "json-file" {
			t.Errorf("%s: logging got %+v; want json-file", s.Name, s.Logging)
		}
		if s.Restart == "" && s.Name != "tokenwriter-init" {
			t.Errorf("%s: no restart policy", s.Name)
		}
	}
	if got := slices.Sorted(maps.Keys(published)); !slices.Equal(got, []string{"demo-ecr", "nginx"}) {
		t.Errorf("services with published ports got %v; want [demo-ecr nginx]", got)
	}

	// Start order: LDAP before authsvc, the emulator (its CA) before the first
	// token, the first token before nginx.
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

	// authsvc reaches demo-ldap by name, on the port slapd listens on.
	a := service(t, p, "authsvc")
	ldapURL, _ := env(a, "LDAP_URL")
	u, err := url.Parse(ldapURL)
	if err != nil {
		t.Fatalf("LDAP_URL %q: %v", ldapURL, err)
	}
	if u.Hostname() != "demo-ldap" {
		t.Errorf("LDAP_URL %q: want host demo-ldap (the service)", ldapURL)
	}
	if got, want := flagValue(t, service(t, p, "demo-ldap").Command, "-h"), "ldap://"+net.JoinHostPort(anyAddr, u.Port())+"/"; got != want {
		t.Errorf("demo-ldap -h got %q; want %q (every interface, authsvc's LDAP_URL port)", got, want)
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

	// nginx reaches authsvc by name where it listens; it listens on the port
	// published on the host's loopback, and its health check asks that port.
	httpConf := readFile(t, "demo/nginx/local/http.conf")
	listen := readFile(t, "demo/nginx/local/listen.conf")
	authAddr, _ := env(a, "AUTH_LISTEN_ADDR")
	authHost, authPort, _ := net.SplitHostPort(authAddr)
	if authHost != anyAddr {
		t.Errorf("authsvc AUTH_LISTEN_ADDR %q: want every interface (%s)", authAddr, anyAddr)
	}
	if !strings.Contains(httpConf, "server authsvc:"+authPort+";") {
		t.Errorf("demo http.conf has no `server authsvc:%s;` (authsvc's AUTH_LISTEN_ADDR)", authPort)
	}
	n := service(t, p, "nginx")
	gatewayPort := strings.TrimSuffix(strings.TrimPrefix(firstDirective(t, listen, "listen"), "listen "), ";")
	if _, err := strconv.Atoi(gatewayPort); err != nil {
		t.Errorf("demo listen.conf: listen %q; want a port only (every interface of the container)", gatewayPort)
	}
	checkPublished(t, "nginx", published["nginx"], gatewayPort, gatewayPort)
	if n.HealthCheck == nil || !slices.Contains(n.HealthCheck.Test, "http://127.0.0.1:"+gatewayPort+"/healthz") {
		t.Errorf("nginx healthcheck got %+v; want http://127.0.0.1:%s/healthz (demo listen.conf)", n.HealthCheck, gatewayPort)
	}

	// demo-ecr's backend is demo-registry, by name.
	reg := service(t, p, "demo-registry")
	regAddr, _ := env(reg, "REGISTRY_HTTP_ADDR")
	regHost, regPort, _ := net.SplitHostPort(regAddr)
	ecrCmd := service(t, p, "demo-ecr").Command
	if got, want := flagValue(t, ecrCmd, "-backend"), "http://demo-registry:"+regPort; got != want {
		t.Errorf("demo-ecr -backend got %q; want %q (demo-registry)", got, want)
	}
	if regHost != anyAddr {
		t.Errorf("demo-registry listens on %q; want every interface of its container", regAddr)
	}
	if hc := reg.HealthCheck; hc == nil || !slices.Contains(hc.Test, "http://127.0.0.1:"+regPort+"/v2/") {
		t.Errorf("demo-registry healthcheck got %+v; want http://127.0.0.1:%s/v2/", hc, regPort)
	}
	if !pinnedRef(reg.Image) {
		t.Errorf("demo-registry image %q: want a pinned tag", reg.Image)
	}

	// demo-ecr: tokenwriter reaches the API by name; proxyEndpoint names the
	// front by service name and listen port, so nginx reaches it from its own
	// container; blob redirects go to the host's loopback, where the S3 port is
	// published.
	e := demoEmulator(t, p)
	for name, addr := range map[string]string{"-api-addr": e.apiAddr, "-registry-addr": e.registryAddr, "-s3-addr": e.s3Addr} {
		if h, _, _ := net.SplitHostPort(addr); h != anyAddr {
			t.Errorf("demo-ecr %s %q: want every interface of its container", name, addr)
		}
	}
	if h, port, _ := net.SplitHostPort(e.registryHost); h != "demo-ecr" || port != portOf(t, e.registryAddr) {
		t.Errorf("demo-ecr -registry-host %q: want demo-ecr:%s (the service, -registry-addr's port)", e.registryHost, portOf(t, e.registryAddr))
	}
	s3Host, s3Published, _ := net.SplitHostPort(e.s3Host)
	if s3Host != "localhost" {
		t.Errorf("demo-ecr -s3-host %q: want localhost, where docker on the host follows the redirect", e.s3Host)
	}
	checkPublished(t, "demo-ecr", published["demo-ecr"], s3Published, portOf(t, e.s3Addr))
	for _, name := range []string{"tokenwriter-init", "tokenwriter"} {
		if got, want := mustEnv(t, service(t, p, name), "AWS_ENDPOINT_URL_ECR"), "http://demo-ecr:"+portOf(t, e.apiAddr); got != want {
			t.Errorf("%s: AWS_ENDPOINT_URL_ECR got %q; want %q (demo-ecr's -api-addr)", name, got, want)
		}
	}

	// The emulator's CA travels on the demo volume: demo-ecr writes it, nginx
	// and both tokenwriters read it; nginx.conf's local snippets are the demo
	// ones for nginx and for tokenwriter's `nginx -t` alike.
	caFile := strings.TrimSuffix(strings.TrimPrefix(firstDirective(t, httpConf, "proxy_ssl_trusted_certificate"), "proxy_ssl_trusted_certificate "), ";")
	if !strings.HasPrefix(caFile, demoDir+"/") || e.caOut != caFile {
		t.Errorf("demo proxy_ssl_trusted_certificate %q, demo-ecr -ca-out %q: want the same file under %s", caFile, e.caOut, demoDir)
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
		if name != "nginx" {
			if got, _ := env(s, "ECR_CA_FILE"); got != caFile {
				t.Errorf("%s: ECR_CA_FILE got %q; want %s (the probe trusts the emulator's CA)", name, got, caFile)
			}
		}
	}
	if hc := service(t, p, "demo-ecr").HealthCheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD", "test", "-s", e.caOut}) {
		t.Errorf("demo-ecr healthcheck got %+v; want it to wait for %s (written once the emulator listens)", hc, e.caOut)
	}
}

// anyAddr: a demo server listens on every interface of its container.
const anyAddr = "0.0.0.0"

// demoEmulatorFlags are demo-ecr's ecr-emulator flags that the wiring depends on.
type demoEmulatorFlags struct {
	apiAddr, registryAddr, s3Addr, registryHost, s3Host, caOut string
}

func demoEmulator(t *testing.T, p *types.Project) demoEmulatorFlags {
	t.Helper()
	cmd := service(t, p, "demo-ecr").Command
	if len(cmd) == 0 || cmd[0] != "ecr-emulator" {
		t.Fatalf("demo-ecr command %q: want ecr-emulator", cmd)
	}
	return demoEmulatorFlags{
		apiAddr:      flagValue(t, cmd, "-api-addr"),
		registryAddr: flagValue(t, cmd, "-registry-addr"),
		s3Addr:       flagValue(t, cmd, "-s3-addr"),
		registryHost: flagValue(t, cmd, "-registry-host"),
		s3Host:       flagValue(t, cmd, "-s3-host"),
		caOut:        flagValue(t, cmd, "-ca-out"),
	}
}

// flagValue returns the argument after name in argv, which must occur once.
func flagValue(t *testing.T, argv []string, name string) string {
	t.Helper()
	i := slices.Index(argv, name)
	if i < 0 || i+1 >= len(argv) || slices.Index(argv[i+1:], name) >= 0 {
		t.Fatalf("command %q: want %s VALUE once", argv, name)
	}
	return argv[i+1]
}

// setFlag returns argv with the value of name replaced.
func setFlag(t *testing.T, argv []string, name, value string) []string {
	t.Helper()
	flagValue(t, argv, name)
	argv = slices.Clone(argv)
	argv[slices.Index(argv, name)+1] = value
	return argv
}

func portOf(t *testing.T, hostport string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return port
}

func mustEnv(t *testing.T, s types.ServiceConfig, key string) string {
	t.Helper()
	v, ok := env(s, key)
	if !ok {
		t.Fatalf("%s: no %s", s.Name, key)
	}
	return v
}

// checkPublished: ports is exactly published → target, on the host's loopback.
func checkPublished(t *testing.T, name string, ports []types.ServicePortConfig, published, target string) {
	t.Helper()
	if len(ports) != 1 || ports[0].HostIP != "127.0.0.1" || ports[0].Published != published ||
		strconv.Itoa(int(ports[0].Target)) != target || ports[0].Protocol != "tcp" {
		t.Errorf("%s: ports got %+v; want only 127.0.0.1:%s → %s/tcp", name, ports, published, target)
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
	sdk := append(slices.Clone(sdkVariables), "AWS_ENDPOINT_URL_ECR")
	for _, name := range []string{"tokenwriter", "tokenwriter-init"} {
		known := append(envconfigNames(t, "../tokenwriter"), sdk...)
		for key := range service(t, p, name).Environment {
			if !slices.Contains(known, key) {
				t.Errorf("%s: environment %s is not read by the program", name, key)
			}
		}
		t.Run(name, func(t *testing.T) {
			setServiceEnv(t, service(t, p, name), append(envconfigNames(t, "../tokenwriter"), "AWS_ENDPOINT_URL_ECR"))
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
		if cfg.ListenAddr != "0.0.0.0:9000" {
			t.Errorf("listen got %q; want 0.0.0.0:9000", cfg.ListenAddr)
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
		// Service names resolve in compose only; the ports are the demo's own.
		{"local/http.conf", "server authsvc:9000;", "server 127.0.0.1:" + strconv.Itoa(freePort(t)) + ";", 1},
		{"local/http.conf", demoDir + "/ecr-ca.pem", dir + "/demo/ecr-ca.pem", 1},
		{"local/listen.conf", "listen 5080;", "listen 127.0.0.1:" + strconv.Itoa(freePort(t)) + ";", 1},
	}, []string{"cache"}, // the image's /var/cache/nginx
		ecrInclude("localhost", 5443, ecrToken(t, 6400)))
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

// TestDemoEmulatorCommand runs demo-ecr's command natively, with the real
// ecr-emulator: its listen addresses move to free loopback ports and its files
// to a temporary directory; everything it advertises stays as in compose. A
// dialer stands in for the compose network (demo-ecr:<port> → the listener for
// that container port) and for the published S3 port (localhost:<published>).
// Then the AWS SDK, configured only by the environment the demo gives
// tokenwriter, gets a token; the CA named by ECR_CA_FILE verifies the front
// named in proxyEndpoint, as nginx does; a blob download is redirected where
// docker on the host can follow it; SIGTERM stops it cleanly.
func TestDemoEmulatorCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ecr-emulator")
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/ecr-emulator").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ecr-emulator: %v\n%s", err, out)
	}
	p := loadDemo(t)
	flags := demoEmulator(t, p)
	// demo-registry: answers every blob, HEAD and GET.
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "blob")
	}))
	t.Cleanup(backend.Close)

	// Where each advertised host:port is reached from this test.
	state := t.TempDir()
	caFile := filepath.Join(state, filepath.Base(flags.caOut))
	api, front, s3 := freeAddr(t), freeAddr(t), freeAddr(t)
	s3Name, s3Published, _ := net.SplitHostPort(flags.s3Host)
	var publishedS3 string
	for _, pc := range service(t, p, "demo-ecr").Ports {
		if strconv.Itoa(int(pc.Target)) == portOf(t, flags.s3Addr) {
			publishedS3 = pc.Published
		}
	}
	routes := map[string]string{
		"demo-ecr:" + portOf(t, flags.apiAddr):      api,
		"demo-ecr:" + portOf(t, flags.registryAddr): front,
		s3Name + ":" + publishedS3:                  s3,
	}
	if publishedS3 != s3Published {
		t.Errorf("-s3-host %s: port %s is not where -s3-addr %s is published (%s)", flags.s3Host, s3Published, flags.s3Addr, publishedS3)
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, ok := routes[addr]
		if !ok {
			return nil, fmt.Errorf("%s: not reachable from the demo's containers or host", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, to)
	}

	argv := service(t, p, "demo-ecr").Command
	for name, value := range map[string]string{
		"-backend": backend.URL, "-ca-out": caFile,
		"-api-addr": api, "-registry-addr": front, "-s3-addr": s3,
	} {
		argv = setFlag(t, argv, name, value)
	}
	cmd := exec.Command(filepath.Join(bin, argv[0]), argv[1:]...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
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

	// The health check: `test -s` on the CA file.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if fi, err := os.Stat(caFile); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 20s\n%s", caFile, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	tw := service(t, p, "tokenwriter")
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL_ECR"} {
		t.Setenv(k, mustEnv(t, tw, k))
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(state, "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(state, "no-credentials"))
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().
		WithTransportOptions(func(tr *http.Transport) { tr.DialContext = dial })))
	if err != nil {
		t.Fatal(err)
	}
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("GetAuthorizationToken at %s: %v\n%s", mustEnv(t, tw, "AWS_ENDPOINT_URL_ECR"), err, stderr.String())
	}
	if len(out.AuthorizationData) != 1 || aws.ToString(out.AuthorizationData[0].AuthorizationToken) == "" {
		t.Fatalf("authorization data got %+v; want one token", out.AuthorizationData)
	}
	data := out.AuthorizationData[0]
	frontURL, err := url.Parse(aws.ToString(data.ProxyEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	if frontURL.Host != flags.registryHost {
		t.Errorf("proxyEndpoint got %q; want https://%s", frontURL, flags.registryHost)
	}

	// nginx: proxy_ssl_name $ecr_registry_host (the host without port),
	// trusting only the file tokenwriter's ECR_CA_FILE and http.conf name.
	if got := mustEnv(t, tw, "ECR_CA_FILE"); got != flags.caOut {
		t.Errorf("tokenwriter ECR_CA_FILE got %q; want %q", got, flags.caOut)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(readFile(t, caFile))) {
		t.Fatalf("%s: no certificate", caFile)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(data.AuthorizationToken))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, frontURL.JoinPath("/v2/demo/hello/blobs/sha256:"+strings.Repeat("c", 64)).String(), nil)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(raw))
	nginx := &http.Client{
		Transport: &http.Transport{
			DialContext:     dial,
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: frontURL.Hostname()},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	resp, err := nginx.Do(req)
	if err != nil {
		t.Fatalf("TLS to the registry front %s with %s: %v", frontURL.Host, flags.caOut, err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, "http://"+flags.s3Host+"/") {
		t.Fatalf("blob download got %d Location %q; want 307 to http://%s/...", resp.StatusCode, loc, flags.s3Host)
	}
	// docker on the host follows it, to the published port, with no credentials.
	docker := &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 10 * time.Second}
	blob, err := docker.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(blob.Body)
	blob.Body.Close()
	if blob.StatusCode != http.StatusOK || string(body) != "blob" {
		t.Errorf("following the redirect: got %d %q; want 200 \"blob\"", blob.StatusCode, body)
	}

	// docker stop: SIGTERM, exit 0.
	stopped = true
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("ecr-emulator after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Errorf("ecr-emulator still running 10s after SIGTERM")
	}
}

func freeAddr(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(freePort(t))
}
