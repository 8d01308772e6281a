package deploy

import (
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/toanc/aws-ecr-ldap/internal/gateway"
)

// image describes what each Dockerfile must produce.
type image struct {
	file    string   // in this directory
	cmd     []string // the final stage's CMD
	binary  string   // Go command built into the image, "" for none
	nonRoot bool     // the final stage must run as a non-root user
	nginx   bool     // carries the nginx configuration directory
}

var images = []image{
	{file: "authsvc.Dockerfile", cmd: gateway.AuthsvcCommand(), binary: "authsvc", nonRoot: true},
	{file: "nginx.Dockerfile", cmd: gateway.NginxCommand(confDir), nginx: true},
	{file: "tokenwriter.Dockerfile", cmd: gateway.TokenwriterCommand(), binary: "tokenwriter", nginx: true},
}

func mustParseDockerfile(t *testing.T, file string) dockerfile {
	t.Helper()
	d, err := parseDockerfile(readFile(t, file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return d
}

// pinnedRef reports whether ref names an image by tag or digest, not latest.
func pinnedRef(ref string) bool {
	if strings.Contains(ref, "$") {
		return false
	}
	if _, digest, ok := strings.Cut(ref, "@"); ok {
		return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(digest)
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	return ok && tag != "" && tag != "latest"
}

func TestPinnedRef(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{"nginx:1.27-bookworm", true},
		{"gcr.io/distroless/static-debian12:nonroot", true},
		{"localhost:5000/x:1", true},
		{"nginx@sha256:" + strings.Repeat("a", 64), true},
		{"nginx", false},
		{"nginx:latest", false},
		{"localhost:5000/x", false},
		{"nginx:${TAG}", false},
		{"nginx@sha256:abc", false},
	}
	for _, tc := range tests {
		if got := pinnedRef(tc.ref); got != tc.want {
			t.Errorf("pinnedRef(%q) got %v; want %v", tc.ref, got, tc.want)
		}
	}
}

func TestDockerfiles(t *testing.T) {
	for _, img := range images {
		t.Run(img.file, func(t *testing.T) {
			d := mustParseDockerfile(t, img.file)
			for _, s := range d.stages {
				if _, isStage := d.stageNamed(s.from); !isStage && !pinnedRef(s.from) {
					t.Errorf("FROM %s: want a tag or digest, not latest", s.from)
				}
			}
			final := d.final()

			// The command is the gateway's, with nothing in front of it.
			cmd, ok := final.last("CMD")
			if got, _ := cmd.execForm(); !ok || !slices.Equal(got, img.cmd) {
				t.Errorf("CMD got %s; want exec form %q", cmd.args, img.cmd)
			}
			if ep, ok := final.last("ENTRYPOINT"); !ok || ep.args != "[]" {
				t.Errorf("ENTRYPOINT got %q (set %v); want [] (the base image's entrypoint reset)", ep.args, ok)
			}

			user, hasUser := final.last("USER")
			if img.nonRoot {
				u, _, _ := strings.Cut(user.args, ":")
				if !hasUser || u == "" || u == "0" || u == "root" {
					t.Errorf("USER got %q (set %v); want a non-root user", user.args, hasUser)
				}
			}

			if _, ok := final.last("ARG"); !ok {
				t.Error("final stage: no ARG VERSION, so the version label would be empty")
			}
			labels := final.labels()
			if got := labels["org.opencontainers.image.version"]; got != "${VERSION}" {
				t.Errorf("label org.opencontainers.image.version got %q; want ${VERSION}", got)
			}
			for _, key := range []string{"title", "description", "source"} {
				if labels["org.opencontainers.image."+key] == "" {
					t.Errorf("no label org.opencontainers.image.%s", key)
				}
			}

			if img.binary != "" {
				checkGoBuild(t, d, img.binary)
			}
			if img.nginx {
				checkNginxConfigCopied(t, final)
			}
			checkContextPaths(t, d)
		})
	}
}

// checkGoBuild: a static, reproducible build of ./cmd/<binary> with the
// version stamped in, copied onto PATH in the final stage.
func checkGoBuild(t *testing.T, d dockerfile, binary string) {
	t.Helper()
	var build instruction
	for _, s := range d.stages {
		for _, in := range s.all("RUN") {
			if strings.Contains(in.args, "go build") {
				build = in
			}
		}
	}
	want := `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}"`
	if !strings.Contains(build.args, want) || !strings.HasSuffix(build.args, "./cmd/"+binary) {
		t.Errorf("go build got %q; want %s ... ./cmd/%s", build.args, want, binary)
	}
	onPath := false
	for _, c := range d.final().copies() {
		if c.from != "" && c.dest == "/usr/local/bin/"+binary {
			onPath = true
		}
	}
	if !onPath {
		t.Errorf("final stage does not COPY --from the build stage to /usr/local/bin/%s", binary)
	}
	if m, _ := filepath.Glob(filepath.Join("..", "cmd", binary, "*.go")); len(m) == 0 {
		t.Errorf("go build ./cmd/%s: no Go files in cmd/%s", binary, binary)
	}
	builder, ok := d.stageNamed("build")
	if !ok {
		t.Fatal("no build stage")
	}
	// The golang image sets GOTOOLCHAIN=local: its Go must satisfy go.mod.
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, "../go.mod"))
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	if want := "golang:" + m[1] + "-"; !strings.HasPrefix(builder.from, want) {
		t.Errorf("build stage FROM %s; want %s* (go.mod says go %s)", builder.from, want, m[1])
	}
}

// checkNginxConfigCopied: the image carries nginx.conf and the container
// versions of local/*.conf where ARCHITECTURE.md puts them.
func checkNginxConfigCopied(t *testing.T, final stage) {
	t.Helper()
	got := nginxConfigFiles(final)
	want := map[string]string{
		"/etc/nginx/nginx.conf":        "nginx/nginx.conf",
		"/etc/nginx/local/http.conf":   "deploy/nginx/local/http.conf",
		"/etc/nginx/local/listen.conf": "deploy/nginx/local/listen.conf",
		"/etc/nginx/local/main.conf":   "deploy/nginx/local/main.conf",
	}
	for dest, src := range want {
		if got[dest] != src {
			t.Errorf("%s got from %q; want COPY %s", dest, got[dest], src)
		}
	}
	if len(got) != len(want) {
		t.Errorf("configuration files got %v; want exactly %v", got, want)
	}
}

// nginxConfigFiles maps each file a stage copies from the build context into
// /etc/nginx to its source in the repository.
func nginxConfigFiles(s stage) map[string]string {
	out := map[string]string{}
	for _, c := range s.copies() {
		if c.from != "" || !strings.HasPrefix(c.dest, confDir+"/") {
			continue
		}
		for _, src := range c.srcs {
			dest := c.dest
			if strings.HasSuffix(dest, "/") {
				dest += path.Base(src)
			}
			out[dest] = src
		}
	}
	return out
}

// checkContextPaths: every COPY from the build context names something that
// exists in the repository and that .dockerignore lets through.
func checkContextPaths(t *testing.T, d dockerfile) {
	t.Helper()
	ignored := dockerignore(t)
	for _, s := range d.stages {
		for _, c := range s.copies() {
			if c.from != "" {
				continue
			}
			for _, src := range c.srcs {
				if _, err := os.Stat(filepath.Join("..", filepath.FromSlash(src))); err != nil {
					t.Errorf("line %d: COPY %s: %v", c.line, src, err)
				}
				if first, _, _ := strings.Cut(src, "/"); slices.Contains(ignored, first) {
					t.Errorf("line %d: COPY %s, but .dockerignore excludes %s", c.line, src, first)
				}
			}
		}
	}
	// The Go builds need the packages behind ./cmd/authsvc and ./cmd/tokenwriter.
	for _, dir := range []string{"cmd", "internal", "authsvc", "tokenwriter", "go.mod", "go.sum"} {
		if slices.Contains(ignored, dir) {
			t.Errorf(".dockerignore excludes %s, which the build needs", dir)
		}
	}
}

// dockerignore returns the patterns of ../.dockerignore.
func dockerignore(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(readFile(t, "../.dockerignore"), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	ignored := dockerignore(t)
	for _, want := range []string{".git", ".env", "tls", "secrets", ".run", "*.key"} {
		if !slices.Contains(ignored, want) {
			t.Errorf(".dockerignore got %v; want %s among them", ignored, want)
		}
	}
}

// TestNginxImagesAgree: tokenwriter's `nginx -t` checks what nginx loads, so
// both images start from the same nginx and carry the same configuration.
func TestNginxImagesAgree(t *testing.T) {
	n := mustParseDockerfile(t, "nginx.Dockerfile").final()
	tw := mustParseDockerfile(t, "tokenwriter.Dockerfile").final()
	if n.from != tw.from || !strings.HasPrefix(n.from, "nginx:") {
		t.Errorf("FROM got %s (nginx) and %s (tokenwriter); want the same official nginx image", n.from, tw.from)
	}
	if got, want := nginxConfigFiles(tw), nginxConfigFiles(n); !maps.Equal(got, want) {
		t.Errorf("tokenwriter copies %v; nginx copies %v; want the same", got, want)
	}
	// The base image stops nginx with SIGQUIT; Go dumps goroutines on it.
	if sig, ok := tw.last("STOPSIGNAL"); !ok || sig.args != "SIGTERM" {
		t.Errorf("tokenwriter STOPSIGNAL got %q; want SIGTERM", sig.args)
	}
	if _, ok := n.last("STOPSIGNAL"); ok {
		t.Error("nginx image overrides STOPSIGNAL; want the base image's SIGQUIT (graceful)")
	}

	// As root without CAP_CHOWN, `nginx -t` fails unless its temp directories
	// exist, owned by the nginx user: tokenwriter's image must create each path
	// local/http.conf names.
	var runs strings.Builder
	for _, in := range tw.all("RUN") {
		runs.WriteString(in.args + "\n")
	}
	paths := regexp.MustCompile(`(?m)^\s*\w+_temp_path\s+(\S+);`).FindAllStringSubmatch(readFile(t, "nginx/local/http.conf"), -1)
	if len(paths) != 5 {
		t.Fatalf("local/http.conf: got %d temp paths; want 5", len(paths))
	}
	for _, p := range paths {
		dir, base := path.Split(p[1])
		if !strings.Contains(runs.String(), base) || !strings.Contains(runs.String(), strings.TrimSuffix(dir, "/")) {
			t.Errorf("tokenwriter.Dockerfile does not create %s", p[1])
		}
	}
	if !strings.Contains(runs.String(), "-o nginx") {
		t.Error("tokenwriter.Dockerfile: temp directories not owned by nginx")
	}
}

// TestComposeBuildsTheseDockerfiles ties docker-compose.yml to the files
// tested here.
func TestComposeBuildsTheseDockerfiles(t *testing.T) {
	p := mustLoadCompose(t)
	want := map[string]string{
		"authsvc":          "deploy/authsvc.Dockerfile",
		"nginx":            "deploy/nginx.Dockerfile",
		"tokenwriter":      "deploy/tokenwriter.Dockerfile",
		"tokenwriter-init": "deploy/tokenwriter.Dockerfile",
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range want {
		s := service(t, p, name)
		if s.Build == nil || s.Build.Context != root || s.Build.Dockerfile != file {
			t.Errorf("%s: build got %+v; want context %s, dockerfile %s", name, s.Build, root, file)
			continue
		}
		if _, ok := s.Build.Args["VERSION"]; !ok {
			t.Errorf("%s: build args got %v; want VERSION", name, s.Build.Args)
		}
	}
}
