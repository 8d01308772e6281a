package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/authsvc"
	"github.com/toanc/aws-ecr-ldap/internal/gateway"
	"github.com/toanc/aws-ecr-ldap/tokenwriter"
)

// A unit file, as far as these tests need systemd's syntax: sections, keys
// that repeat (an empty value resets the list), comments, continuations.
type unit map[string]map[string][]string

func parseUnit(src string) (unit, error) {
	u := unit{}
	section := ""
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSpace(strings.TrimSuffix(line, `\`)) + " " + strings.TrimSpace(lines[i])
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		case section == "":
			return nil, fmt.Errorf("line %d: %q outside a section", i+1, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not key=value", i+1, line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if v == "" {
				u[section][k] = nil // systemd: an empty assignment resets the list
				continue
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u, nil
}

// execArgv splits an Exec*= value as systemd does for the forms used here:
// words, and double-quoted words.
func execArgv(v string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range v {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", v)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

func TestParseUnit(t *testing.T) {
	u, err := parseUnit("# c\n[Service]\nExecStart=\nExecStart=a \"b c;\"\nX=1 \\\n  2\n")
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := execArgv(u["Service"]["ExecStart"][0])
	if !slices.Equal(argv, []string{"a", "b c;"}) || u["Service"]["X"][0] != "1 2" {
		t.Errorf("got %q and %q; want [a \"b c;\"] and \"1 2\"", argv, u["Service"]["X"])
	}
	for _, bad := range []string{"X=1\n", "[S]\nnot a pair\n"} {
		if _, err := parseUnit(bad); err == nil {
			t.Errorf("parseUnit(%q): got no error; want one", bad)
		}
	}
	if _, err := execArgv(`a "b`); err == nil {
		t.Error(`execArgv("a \"b"): got no error`)
	}
}

const vmConfDir = "/etc/aws-ecr-ldap/nginx"

func mustParseUnit(t *testing.T, file string) unit {
	t.Helper()
	u, err := parseUnit(readFile(t, filepath.Join("systemd", file)))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return u
}

func onlyExec(t *testing.T, u unit, key string) []string {
	t.Helper()
	v := u["Service"][key]
	if len(v) != 1 {
		t.Fatalf("%s: got %q; want exactly one", key, v)
	}
	argv, err := execArgv(v[0])
	if err != nil {
		t.Fatal(err)
	}
	return argv
}

// TestSystemdUnits: each unit starts its process with the gateway's command
// line, and carries the hardening the issue asks for.
func TestSystemdUnits(t *testing.T) {
	tests := []struct {
		file string
		want []string
		// the environment file, "" for nginx
		envFile string
	}{
		{"aws-ecr-ldap-authsvc.service", gateway.AuthsvcCommand(), "/etc/aws-ecr-ldap/authsvc.env"},
		{"aws-ecr-ldap-token-init.service", gateway.TokenwriterOnceCommand(), "/etc/aws-ecr-ldap/tokenwriter.env"},
		{"aws-ecr-ldap-tokenwriter.service", gateway.TokenwriterCommand(), "/etc/aws-ecr-ldap/tokenwriter.env"},
		{"nginx.service.d/aws-ecr-ldap.conf", gateway.NginxCommand(vmConfDir), ""},
	}
	hardening := []string{"NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "CapabilityBoundingSet"}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			u := mustParseUnit(t, tc.file)
			if got := onlyExec(t, u, "ExecStart"); !slices.Equal(got, tc.want) {
				t.Errorf("ExecStart got %q; want %q", got, tc.want)
			}
			s := u["Service"]
			for _, k := range hardening {
				if len(s[k]) == 0 && k != "CapabilityBoundingSet" {
					t.Errorf("no %s", k)
				}
			}
			if _, ok := s["CapabilityBoundingSet"]; !ok {
				t.Error("no CapabilityBoundingSet")
			}
			if got := s["NoNewPrivileges"]; !slices.Equal(got, []string{"yes"}) {
				t.Errorf("NoNewPrivileges got %q; want yes", got)
			}
			if got := s["ProtectSystem"]; !slices.Equal(got, []string{"strict"}) {
				t.Errorf("ProtectSystem got %q; want strict", got)
			}
			if tc.envFile != "" {
				if got := s["EnvironmentFile"]; !slices.Equal(got, []string{tc.envFile}) {
					t.Errorf("EnvironmentFile got %q; want %s", got, tc.envFile)
				}
				if len(s["User"]) != 1 {
					t.Errorf("User got %q; want one", s["User"])
				}
			}
		})
	}

	// authsvc: no capability at all, a dynamic user, the password as a credential.
	a := mustParseUnit(t, "aws-ecr-ldap-authsvc.service")["Service"]
	if a["CapabilityBoundingSet"] != nil || !slices.Equal(a["DynamicUser"], []string{"yes"}) {
		t.Errorf("authsvc: CapabilityBoundingSet %q DynamicUser %q; want empty and yes", a["CapabilityBoundingSet"], a["DynamicUser"])
	}
	cred, _, _ := strings.Cut(strings.Join(a["LoadCredential"], ""), ":")
	if !slices.Contains(a["Environment"], "LDAP_BIND_PASSWORD_FILE=%d/"+cred) || cred == "" {
		t.Errorf("authsvc: LoadCredential %q, Environment %q; want LDAP_BIND_PASSWORD_FILE=%%d/<credential>", a["LoadCredential"], a["Environment"])
	}

	// Ordering: the first token before nginx, nginx requires it.
	ng := mustParseUnit(t, "nginx.service.d/aws-ecr-ldap.conf")
	if !slices.Contains(strings.Fields(strings.Join(ng["Unit"]["Requires"], " ")), "aws-ecr-ldap-token-init.service") ||
		!slices.Contains(strings.Fields(strings.Join(ng["Unit"]["After"], " ")), "aws-ecr-ldap-token-init.service") {
		t.Errorf("nginx drop-in [Unit] %v; want Requires= and After= aws-ecr-ldap-token-init.service", ng["Unit"])
	}
	init := mustParseUnit(t, "aws-ecr-ldap-token-init.service")
	if !slices.Equal(init["Service"]["Type"], []string{"oneshot"}) || !slices.Contains(strings.Fields(strings.Join(init["Unit"]["Before"], " ")), "nginx.service") {
		t.Errorf("token-init: Type %q Before %q; want oneshot before nginx.service", init["Service"]["Type"], init["Unit"]["Before"])
	}
	// The drop-in replaces the distribution's commands rather than adding to them.
	for _, k := range []string{"ExecStart", "ExecStartPre", "ExecReload", "ExecStop", "PIDFile"} {
		if !strings.Contains(readFile(t, "systemd/nginx.service.d/aws-ecr-ldap.conf"), "\n"+k+"=\n") {
			t.Errorf("nginx drop-in does not reset %s=", k)
		}
	}
	if got := onlyExec(t, ng, "ExecStartPre"); !slices.Equal(got, gateway.NginxTestCommand(vmConfDir)) {
		t.Errorf("nginx ExecStartPre got %q; want %q", got, gateway.NginxTestCommand(vmConfDir))
	}

	// tokenwriter writes where nginx.conf includes the token, may write there,
	// checks what nginx loads and signals the pid nginx writes.
	envs := readEnvFile(t, "systemd/tokenwriter.env")
	if got, want := envs["TOKEN_FILE"], vmConfDir+"/ecr/ecr.conf"; got != want {
		t.Errorf("TOKEN_FILE got %q; want %q", got, want)
	}
	if got, want := envs["NGINX_TEST_COMMAND"], strings.Join(gateway.NginxTestCommand(vmConfDir), " "); got != want {
		t.Errorf("NGINX_TEST_COMMAND got %q; want %q", got, want)
	}
	main := stripComments(readFile(t, "systemd/nginx/local/main.conf"))
	if !strings.Contains(main, "pid "+envs["NGINX_PID_FILE"]+";") {
		t.Errorf("local/main.conf does not write NGINX_PID_FILE %s", envs["NGINX_PID_FILE"])
	}
	httpConf := stripComments(readFile(t, "systemd/nginx/local/http.conf"))
	for _, file := range []string{"aws-ecr-ldap-token-init.service", "aws-ecr-ldap-tokenwriter.service"} {
		rw := strings.Fields(strings.Join(mustParseUnit(t, file)["Service"]["ReadWritePaths"], " "))
		if !slices.Contains(rw, filepath.Dir(envs["TOKEN_FILE"])) {
			t.Errorf("%s: ReadWritePaths %q; want the token directory %s", file, rw, filepath.Dir(envs["TOKEN_FILE"]))
		}
		for _, line := range strings.Split(httpConf, "\n") {
			if f := strings.Fields(line); len(f) == 2 && strings.HasSuffix(f[0], "_temp_path") {
				p := strings.TrimSuffix(f[1], ";")
				if !slices.ContainsFunc(rw, func(d string) bool { return strings.HasPrefix(p, d+"/") }) {
					t.Errorf("%s: `nginx -t` cannot create %s (ReadWritePaths %q)", file, p, rw)
				}
			}
		}
	}
	authEnv := readEnvFile(t, "systemd/authsvc.env")
	if !strings.Contains(httpConf, "server "+authEnv["AUTH_LISTEN_ADDR"]+";") {
		t.Errorf("local/http.conf: authsvc upstream is not AUTH_LISTEN_ADDR %s", authEnv["AUTH_LISTEN_ADDR"])
	}
}

// stateDirs returns a unit's StateDirectory= entries (relative to /var/lib).
func stateDirs(u unit) []string {
	return strings.Fields(strings.Join(u["Service"]["StateDirectory"], " "))
}

// TestSystemdTempPathsExist: nginx creates only the last component of a temp
// path, and every unit that runs nginx or `nginx -t` may be the first to do
// so (token-init runs before nginx). Each of them must have systemd create
// the temp paths' parent (StateDirectory=, which also makes it writable under
// ProtectSystem=strict).
func TestSystemdTempPathsExist(t *testing.T) {
	httpConf := stripComments(readFile(t, "systemd/nginx/local/http.conf"))
	parents := map[string]bool{}
	for _, line := range strings.Split(httpConf, "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.HasSuffix(f[0], "_temp_path") {
			parents[filepath.Dir(strings.TrimSuffix(f[1], ";"))] = true
		}
	}
	if len(parents) == 0 {
		t.Fatal("systemd/nginx/local/http.conf: no *_temp_path")
	}
	for _, file := range []string{"nginx.service.d/aws-ecr-ldap.conf", "aws-ecr-ldap-token-init.service", "aws-ecr-ldap-tokenwriter.service"} {
		u := mustParseUnit(t, file)
		for p := range parents {
			if !slices.ContainsFunc(stateDirs(u), func(d string) bool { return "/var/lib/"+d == p }) {
				t.Errorf("%s: StateDirectory=%q does not create %s, the temp paths' parent", file, stateDirs(u), p)
			}
		}
	}
}

// TestSystemdConfigLoads: the example environment files are accepted by the
// programs' own loaders.
func TestSystemdConfigLoads(t *testing.T) {
	t.Run("authsvc", func(t *testing.T) {
		e := readEnvFile(t, "systemd/authsvc.env")
		pw := filepath.Join(t.TempDir(), "ldap-bind-password")
		writeFile(t, pw, "secret\n")
		e["LDAP_BIND_PASSWORD_FILE"] = pw // the unit's Environment=, %d expanded
		setEnv(t, e, envconfigNames(t, "../authsvc"))
		if _, err := authsvc.LoadConfig(); err != nil {
			t.Fatalf("authsvc.LoadConfig: %v", err)
		}
	})
	t.Run("tokenwriter", func(t *testing.T) {
		setEnv(t, readEnvFile(t, "systemd/tokenwriter.env"), envconfigNames(t, "../tokenwriter"))
		if _, err := tokenwriter.Load(); err != nil {
			t.Fatalf("tokenwriter.Load: %v", err)
		}
	})
}

// TestSystemdNginxConfig: the VM's configuration directory passes `nginx -t`.
func TestSystemdNginxConfig(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"nginx.conf": readFile(t, "../nginx/nginx.conf")}
	for _, f := range []string{"main.conf", "http.conf", "listen.conf"} {
		files["local/"+f] = readFile(t, "systemd/nginx/local/"+f)
	}
	writeSelfSigned(t, filepath.Join(dir, "tls"))
	// Only what the nginx unit's StateDirectory= makes exists under /var/lib.
	var existing []string
	for _, d := range stateDirs(mustParseUnit(t, "nginx.service.d/aws-ecr-ldap.conf")) {
		existing = append(existing, "var/lib/"+d)
	}
	assembleConfDir(t, dir, files, []rewrite{
		{"local/main.conf", "pid /run/nginx.pid;", "pid " + dir + "/nginx.pid;", 1},
		{"local/http.conf", " /var/lib/", " " + dir + "/var/lib/", 5},
		{"local/http.conf", "listen 80;", "listen 127.0.0.1:" + strconv.Itoa(freePort(t)) + ";", 1},
		{"local/listen.conf", "listen 443 ssl;", "listen 127.0.0.1:" + strconv.Itoa(freePort(t)) + " ssl;", 1},
		{"local/listen.conf", "/etc/aws-ecr-ldap/tls/", dir + "/tls/", 2},
	}, existing, ecrInclude("127.0.0.1", 5000, ecrToken(t, 6400)))
	if out, err := nginxTest(t, dir); err != nil {
		t.Fatalf("nginx -t on the VM configuration: %v\n%s", err, out)
	}
}

// TestSystemdAnalyzeVerify runs `systemd-analyze verify` on the units and
// the nginx drop-in, installed as deploy/README.md installs them, in a root
// made of this machine's unit directory (for nginx.service and the targets)
// and stand-ins for the binaries, which it only checks are executable. Any
// complaint (unknown key, bad value, missing dependency) fails the test.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	const system = "/usr/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(system, "nginx.service")); err != nil {
		t.Fatalf("the distribution's nginx.service is needed (apt-get install nginx): %v", err)
	}
	root := t.TempDir()
	if err := copyTree(system, filepath.Join(root, system)); err != nil {
		t.Fatal(err)
	}
	units := []string{"aws-ecr-ldap-authsvc.service", "aws-ecr-ldap-token-init.service", "aws-ecr-ldap-tokenwriter.service"}
	for _, u := range units {
		writeFile(t, filepath.Join(root, "etc/systemd/system", u), readFile(t, "systemd/"+u))
	}
	writeFile(t, filepath.Join(root, "etc/systemd/system/nginx.service.d/aws-ecr-ldap.conf"), readFile(t, "systemd/nginx.service.d/aws-ecr-ldap.conf"))
	for _, bin := range []string{"usr/local/bin/authsvc", "usr/local/bin/tokenwriter", "usr/sbin/nginx", "bin/kill"} {
		writeFile(t, filepath.Join(root, bin), "#!/bin/sh\n")
		if err := os.Chmod(filepath.Join(root, bin), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no", "--root=" + root, "nginx.service"}, units...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// copyTree copies a directory of regular files and symbolic links.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
	})
}
