package deploy

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/toanc/aws-ecr-ldap/authsvc"
	"github.com/toanc/aws-ecr-ldap/internal/gateway"
	"github.com/toanc/aws-ecr-ldap/tokenwriter"
)

const k8sDir = "kubernetes"

// ldapSecretExample shows the shape of the Secret the operator creates; it is
// not a resource of the kustomization.
const ldapSecretExample = "examples/ldap-bind-password.secret.yaml"

// kustomization is the part of kustomization.yaml the tests read.
type kustomization struct {
	APIVersion         string   `json:"apiVersion"`
	Kind               string   `json:"kind"`
	Namespace          string   `json:"namespace"`
	Labels             []any    `json:"labels"`
	SecretGenerator    []any    `json:"secretGenerator"`
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
		Envs  []string `json:"envs"`
	} `json:"configMapGenerator"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// k8sObject strictly decodes one manifest into the real API type: an unknown
// or misspelt field is an error, as `kubectl apply --validate=strict` makes it.
func k8sObject[T any](t *testing.T, file string) T {
	t.Helper()
	var v T
	if err := yaml.UnmarshalStrict([]byte(readFile(t, filepath.Join(k8sDir, file))), &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

func loadKustomization(t *testing.T) kustomization {
	t.Helper()
	return k8sObject[kustomization](t, "kustomization.yaml")
}

// generated returns the files (key=path) of the configMapGenerator entry name.
func (k kustomization) generated(t *testing.T, name string) map[string]string {
	t.Helper()
	for _, g := range k.ConfigMapGenerator {
		if g.Name != name {
			continue
		}
		out := map[string]string{}
		for _, f := range g.Files {
			key, file, ok := strings.Cut(f, "=")
			if !ok {
				key, file = path.Base(f), f
			}
			out[key] = file
		}
		for _, e := range g.Envs {
			out[""] = e
		}
		return out
	}
	t.Fatalf("kustomization.yaml: no configMapGenerator %s", name)
	return nil
}

// TestKubernetesManifestsParse: every resource of the kustomization decodes
// strictly into its API type, and every file here is one of them.
func TestKubernetesManifestsParse(t *testing.T) {
	k := loadKustomization(t)
	kinds := map[string]func(){
		"namespace.yaml":      func() { k8sObject[corev1.Namespace](t, "namespace.yaml") },
		"serviceaccount.yaml": func() { k8sObject[corev1.ServiceAccount](t, "serviceaccount.yaml") },
		"deployment.yaml":     func() { k8sObject[appsv1.Deployment](t, "deployment.yaml") },
		"service.yaml":        func() { k8sObject[corev1.Service](t, "service.yaml") },
		"pdb.yaml":            func() { k8sObject[policyv1.PodDisruptionBudget](t, "pdb.yaml") },
		"hpa.yaml":            func() { k8sObject[autoscalingv2.HorizontalPodAutoscaler](t, "hpa.yaml") },
	}
	if !slices.Equal(slices.Sorted(slices.Values(k.Resources)), slices.Sorted(func(yield func(string) bool) {
		for f := range kinds {
			if !yield(f) {
				return
			}
		}
	})) {
		t.Errorf("kustomization resources got %v; want exactly the manifests this test decodes", k.Resources)
	}
	for file, decode := range kinds {
		t.Run(file, func(t *testing.T) { decode() })
	}
	// A Secret among the resources would be applied again by every
	// `kubectl apply -k`, overwriting the one the operator created.
	for _, file := range k.Resources {
		var m struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(k8sDir, file))), &m); err != nil || m.Kind == "" || m.Kind == "Secret" {
			t.Errorf("resource %s: kind %q (%v); want a kind, and no Secret", file, m.Kind, err)
		}
	}
	if len(k.SecretGenerator) != 0 {
		t.Errorf("kustomization secretGenerator %v; want none (the Secrets are created out of band)", k.SecretGenerator)
	}
	t.Run("examples/ldap-bind-password.secret.yaml", func(t *testing.T) {
		k8sObject[corev1.Secret](t, ldapSecretExample)
	})
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && kinds[b] == nil {
			t.Errorf("%s is not in kustomization.yaml's resources", f)
		}
	}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range append(slices.Clone(g.Envs), g.Files...) {
			_, file, ok := strings.Cut(f, "=")
			if !ok {
				file = f
			}
			if _, err := os.Stat(filepath.Join(k8sDir, file)); err != nil || strings.Contains(file, "..") {
				t.Errorf("configMapGenerator %s: %s must be a file inside deploy/kubernetes: %v", g.Name, f, err)
			}
		}
	}
}

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func mountAt(c corev1.Container, p string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.MountPath == p {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func volume(t *testing.T, spec corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %s", name)
	return corev1.Volume{}
}

// TestKubernetesPod: the commands are the gateway's, and the pod wires nginx,
// authsvc and tokenwriter together as ARCHITECTURE.md's configuration
// directory and reload path require.
func TestKubernetesPod(t *testing.T) {
	d := k8sObject[appsv1.Deployment](t, "deployment.yaml")
	spec := d.Spec.Template.Spec
	if len(spec.InitContainers) != 1 || len(spec.Containers) != 3 {
		t.Fatalf("init containers %d, containers %d; want 1 and 3", len(spec.InitContainers), len(spec.Containers))
	}
	init := spec.InitContainers[0]
	nginx := container(t, spec.Containers, "nginx")
	auth := container(t, spec.Containers, "authsvc")
	tw := container(t, spec.Containers, "tokenwriter")
	for _, tc := range []struct {
		c     corev1.Container
		want  []string
		image string
	}{
		{init, gateway.TokenwriterOnceCommand(), "aws-ecr-ldap/tokenwriter"},
		{nginx, gateway.NginxCommand(confDir), "aws-ecr-ldap/nginx"},
		{auth, gateway.AuthsvcCommand(), "aws-ecr-ldap/authsvc"},
		{tw, gateway.TokenwriterCommand(), "aws-ecr-ldap/tokenwriter"},
	} {
		if !slices.Equal(tc.c.Command, tc.want) || len(tc.c.Args) != 0 {
			t.Errorf("%s: command %q args %q; want %q", tc.c.Name, tc.c.Command, tc.c.Args, tc.want)
		}
		if tc.c.Image != tc.image {
			t.Errorf("%s: image %q; want %q (kustomization images sets the tag)", tc.c.Name, tc.c.Image, tc.image)
		}
		if tc.c.Resources.Requests.Cpu().IsZero() || tc.c.Resources.Requests.Memory().IsZero() || tc.c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v; want cpu and memory requests and a memory limit", tc.c.Name, tc.c.Resources)
		}
		sc := tc.c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
			t.Errorf("%s: securityContext %+v; want no privilege escalation, read-only root, all capabilities dropped", tc.c.Name, sc)
		}
	}
	k := loadKustomization(t)
	newNames := map[string]string{}
	for _, i := range k.Images {
		newNames[i.Name] = i.NewName
	}
	// Without newName the short names resolve to docker.io/aws-ecr-ldap/*,
	// someone else's images; the placeholder registry fails to pull instead.
	for _, want := range []string{"aws-ecr-ldap/nginx", "aws-ecr-ldap/authsvc", "aws-ecr-ldap/tokenwriter"} {
		if got := newNames[want]; got != "registry.example.com/"+want {
			t.Errorf("kustomization images %s: newName %q; want registry.example.com/%s, an obvious placeholder", want, got, want)
		}
	}

	// Reload path: one PID namespace, the pid file on a shared emptyDir, and
	// nginx and tokenwriter under the same uid (a signal needs no capability).
	if spec.ShareProcessNamespace == nil || !*spec.ShareProcessNamespace {
		t.Error("shareProcessNamespace: want true (tokenwriter signals nginx by pid)")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || psc.FSGroup == nil {
		t.Fatalf("pod securityContext %+v; want runAsNonRoot, runAsUser and fsGroup", psc)
	}
	for _, c := range []corev1.Container{nginx, tw} {
		if c.SecurityContext.RunAsUser != nil && *c.SecurityContext.RunAsUser != *psc.RunAsUser {
			t.Errorf("%s runs as %d; want the pod's uid %d, like the other of nginx and tokenwriter", c.Name, *c.SecurityContext.RunAsUser, *psc.RunAsUser)
		}
	}
	pidFile, _ := envValue(tw, "NGINX_PID_FILE")
	main := readFile(t, filepath.Join(k8sDir, "nginx/local/main.conf"))
	if !strings.Contains(stripComments(main), "pid "+pidFile+";") {
		t.Errorf("local/main.conf does not write the pid file tokenwriter reads (%s)", pidFile)
	}
	nm, ok1 := mountAt(nginx, path.Dir(pidFile))
	tm, ok2 := mountAt(tw, path.Dir(pidFile))
	if !ok1 || !ok2 || nm.Name != tm.Name || nm.ReadOnly || !tm.ReadOnly || volume(t, spec, nm.Name).EmptyDir == nil {
		t.Errorf("pid directory %s: nginx %+v, tokenwriter %+v; want one emptyDir, writable by nginx only", path.Dir(pidFile), nm, tm)
	}
	if _, ok := mountAt(init, path.Dir(pidFile)); ok {
		t.Errorf("tokenwriter-init mounts %s; it must not see a pid file (nginx is not running)", path.Dir(pidFile))
	}

	// The token include: written by both tokenwriters, read by nginx, on one emptyDir.
	wantTest := strings.Join(gateway.NginxTestCommand(confDir), " ")
	for _, c := range []corev1.Container{init, tw} {
		tokenFile, _ := envValue(c, "TOKEN_FILE")
		if tokenFile != path.Join(ecrDir, "ecr.conf") {
			t.Errorf("%s: TOKEN_FILE %q; want %s/ecr.conf (nginx.conf includes ecr/ecr.conf)", c.Name, tokenFile, ecrDir)
		}
		if got, _ := envValue(c, "NGINX_TEST_COMMAND"); got != wantTest {
			t.Errorf("%s: NGINX_TEST_COMMAND %q; want %q", c.Name, got, wantTest)
		}
		m, ok := mountAt(c, ecrDir)
		if !ok || m.ReadOnly {
			t.Errorf("%s: %s got %+v; want it writable", c.Name, ecrDir, m)
		}
		if n, _ := mountAt(nginx, ecrDir); n.Name != m.Name || !n.ReadOnly {
			t.Errorf("nginx: %s got %+v; want %s's volume read-only", ecrDir, n, c.Name)
		}
	}
	if v := volume(t, spec, "ecr-token"); v.EmptyDir == nil {
		t.Errorf("ecr-token: %+v; want an emptyDir", v)
	}

	// nginx and both tokenwriters see the same configuration directory, so
	// that `nginx -t` checks what nginx loads.
	for _, p := range []string{confDir + "/nginx.conf", confDir + "/local", tlsDir, "/var/cache/nginx"} {
		n, ok := mountAt(nginx, p)
		if !ok {
			t.Errorf("nginx: nothing mounted at %s", p)
			continue
		}
		for _, c := range []corev1.Container{init, tw} {
			if m, ok := mountAt(c, p); !ok || m.Name != n.Name || m.SubPath != n.SubPath {
				t.Errorf("%s: %s got %+v; want nginx's %+v", c.Name, p, m, n)
			}
		}
	}

	// The ConfigMap's keys are the generated files, and the mounts put them
	// where nginx.conf includes them.
	files := k.generated(t, "aws-ecr-ldap-nginx")
	conf, _ := mountAt(nginx, confDir+"/nginx.conf")
	if v := volume(t, spec, conf.Name); v.ConfigMap == nil || v.ConfigMap.Name != "aws-ecr-ldap-nginx" || conf.SubPath != "nginx.conf" ||
		len(v.ConfigMap.Items) != 1 || v.ConfigMap.Items[0].Key != "nginx.conf" || v.ConfigMap.Items[0].Path != "nginx.conf" {
		t.Errorf("nginx.conf: volume %+v subPath %q; want key nginx.conf of aws-ecr-ldap-nginx", v, conf.SubPath)
	}
	local, _ := mountAt(nginx, confDir+"/local")
	lv := volume(t, spec, local.Name)
	var got []string
	for _, it := range lv.ConfigMap.Items {
		if it.Key != it.Path {
			t.Errorf("local/: key %s mounted as %s", it.Key, it.Path)
		}
		if _, ok := files[it.Key]; !ok {
			t.Errorf("local/: key %s is not generated by kustomization.yaml", it.Key)
		}
		got = append(got, it.Path)
	}
	slices.Sort(got)
	if want := []string{"http.conf", "listen.conf", "main.conf"}; !slices.Equal(got, want) {
		t.Errorf("local/ got %v; want %v", got, want)
	}
	if files["nginx.conf"] != "nginx/nginx.conf" {
		t.Errorf("configMapGenerator nginx.conf from %q; want nginx/nginx.conf", files["nginx.conf"])
	}

	// TLS: the Secret holds tls.crt and tls.key, as listen.conf names them.
	listen := stripComments(readFile(t, filepath.Join(k8sDir, "nginx/local/listen.conf")))
	for _, f := range []string{"tls.crt", "tls.key"} {
		if !strings.Contains(listen, tlsDir+"/"+f+";") {
			t.Errorf("listen.conf does not use %s/%s", tlsDir, f)
		}
	}
	if v := volume(t, spec, "tls"); v.Secret == nil || v.Secret.SecretName == "" {
		t.Errorf("tls volume %+v; want a kubernetes.io/tls Secret", v)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken: want false (nothing here talks to the Kubernetes API)")
	}
}

// TestKubernetesSecretAndIdentity: the bind password reaches authsvc as the
// file LDAP_BIND_PASSWORD_FILE names; AWS credentials come from IRSA.
func TestKubernetesSecretAndIdentity(t *testing.T) {
	d := k8sObject[appsv1.Deployment](t, "deployment.yaml")
	spec := d.Spec.Template.Spec
	auth := container(t, spec.Containers, "authsvc")
	file, ok := envValue(auth, "LDAP_BIND_PASSWORD_FILE")
	if !ok {
		t.Fatal("authsvc: no LDAP_BIND_PASSWORD_FILE")
	}
	m, ok := mountAt(auth, path.Dir(file))
	if !ok || !m.ReadOnly {
		t.Fatalf("authsvc: %s got %+v; want a read-only mount", path.Dir(file), m)
	}
	secret := k8sObject[corev1.Secret](t, ldapSecretExample)
	v := volume(t, spec, m.Name)
	if v.Secret == nil || v.Secret.SecretName != secret.Name {
		t.Fatalf("volume %s: %+v; want Secret %s", m.Name, v, secret.Name)
	}
	found := false
	for _, it := range v.Secret.Items {
		if it.Path == path.Base(file) {
			_, inSecret := secret.StringData[it.Key]
			found = inSecret
		}
	}
	if !found {
		t.Errorf("Secret %s items %+v: want a key of the Secret at %s", secret.Name, v.Secret.Items, path.Base(file))
	}
	for _, c := range spec.Containers {
		if c.Name == "authsvc" {
			continue
		}
		if _, ok := mountAt(c, path.Dir(file)); ok {
			t.Errorf("%s mounts the LDAP password", c.Name)
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "LDAP_") {
				t.Errorf("%s gets %s", c.Name, e.Name)
			}
		}
	}
	if _, ok := envValue(auth, "LDAP_BIND_PASSWORD"); ok {
		t.Error("authsvc: LDAP_BIND_PASSWORD set next to the file")
	}

	sa := k8sObject[corev1.ServiceAccount](t, "serviceaccount.yaml")
	if spec.ServiceAccountName != sa.Name {
		t.Errorf("serviceAccountName %q; want %q", spec.ServiceAccountName, sa.Name)
	}
	if arn := sa.Annotations["eks.amazonaws.com/role-arn"]; !strings.HasPrefix(arn, "arn:aws:iam::") || !strings.Contains(arn, ":role/") {
		t.Errorf("IRSA annotation got %q; want a role ARN", arn)
	}
	if !strings.Contains(readFile(t, filepath.Join(k8sDir, "serviceaccount.yaml")), "create-pod-identity-association") {
		t.Error("serviceaccount.yaml: no EKS Pod Identity note")
	}
}

// TestKubernetesProbesAndService: probes and the Service hit ports and paths
// nginx actually serves; the PDB and the HPA select the Deployment.
func TestKubernetesProbesAndService(t *testing.T) {
	d := k8sObject[appsv1.Deployment](t, "deployment.yaml")
	spec := d.Spec.Template.Spec
	nginx := container(t, spec.Containers, "nginx")
	auth := container(t, spec.Containers, "authsvc")
	ports := map[string]int32{}
	for _, p := range nginx.Ports {
		ports[p.Name] = p.ContainerPort
	}
	listen := stripComments(readFile(t, filepath.Join(k8sDir, "nginx/local/listen.conf")))
	httpConf := stripComments(readFile(t, filepath.Join(k8sDir, "nginx/local/http.conf")))
	if !strings.Contains(listen, "listen "+strconv.Itoa(int(ports["https"]))+" ssl;") {
		t.Errorf("port https %d: listen.conf does not listen on it with TLS", ports["https"])
	}
	if !strings.Contains(httpConf, "listen "+strconv.Itoa(int(ports["ready"]))+";") || !strings.Contains(httpConf, "proxy_pass http://authsvc/readyz;") {
		t.Errorf("port ready %d: http.conf does not serve authsvc's /readyz on it", ports["ready"])
	}
	lp, rp := nginx.LivenessProbe, nginx.ReadinessProbe
	if lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" || lp.HTTPGet.Port.StrVal != "https" || lp.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("nginx liveness %+v; want GET https /healthz on port https", lp)
	}
	if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/readyz" || rp.HTTPGet.Port.StrVal != "ready" {
		t.Errorf("nginx readiness %+v; want GET /readyz on port ready", rp)
	}
	if ap := auth.LivenessProbe; ap == nil || ap.Exec == nil || !slices.Equal(ap.Exec.Command, []string{"authsvc", "-healthcheck"}) {
		t.Errorf("authsvc liveness %+v; want exec authsvc -healthcheck", ap)
	}
	addr, _ := envValue(auth, "AUTH_LISTEN_ADDR")
	if !strings.HasPrefix(addr, "127.0.0.1:") || !strings.Contains(httpConf, "server "+addr+";") {
		t.Errorf("AUTH_LISTEN_ADDR %q: want loopback, and http.conf's authsvc upstream on it", addr)
	}

	labels := d.Spec.Template.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(d.Spec.Selector.MatchLabels) {
		t.Errorf("Deployment selector %v does not match its template labels %v", d.Spec.Selector.MatchLabels, labels)
	}
	svc := k8sObject[corev1.Service](t, "service.yaml")
	if !matches(svc.Spec.Selector) {
		t.Errorf("Service selector %v does not match the pods %v", svc.Spec.Selector, labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.StrVal != "https" {
		t.Errorf("Service ports %+v; want 443 to the named port https", svc.Spec.Ports)
	}
	pdb := k8sObject[policyv1.PodDisruptionBudget](t, "pdb.yaml")
	if pdb.Spec.Selector == nil || !matches(pdb.Spec.Selector.MatchLabels) || pdb.Spec.MinAvailable == nil {
		t.Errorf("PDB %+v; want minAvailable and a selector of the pods", pdb.Spec)
	}
	hpa := k8sObject[autoscalingv2.HorizontalPodAutoscaler](t, "hpa.yaml")
	ref := hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != d.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("HPA target %+v; want Deployment %s", ref, d.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || *hpa.Spec.MinReplicas > int32(hpa.Spec.MaxReplicas) {
		t.Errorf("HPA replicas %v..%d; want at least 2", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if pdb.Spec.MinAvailable.IntValue() >= int(*hpa.Spec.MinReplicas) {
		t.Errorf("PDB minAvailable %v with %d replicas: a node drain could never evict", pdb.Spec.MinAvailable, *hpa.Spec.MinReplicas)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("Deployment replicas %d; want unset (the HPA owns it)", *d.Spec.Replicas)
	}
}

// TestKubernetesNginxConfCopy: the ConfigMap's nginx.conf is the repository's.
func TestKubernetesNginxConfCopy(t *testing.T) {
	src := readFile(t, "../nginx/nginx.conf")
	dst := filepath.Join(k8sDir, "nginx", "nginx.conf")
	if *update {
		writeFile(t, dst, src)
	}
	if readFile(t, dst) != src {
		t.Fatalf("%s differs from nginx/nginx.conf; run go test ./deploy -run TestKubernetesNginxConfCopy -update", dst)
	}
}

// readEnvFile reads a kustomize envs file (KEY=VALUE lines, # comments).
func readEnvFile(t *testing.T, file string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, file)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", file, line)
		}
		out[k] = v
	}
	return out
}

// podEnv is what a container sees: its envFrom ConfigMap, then env.
func podEnv(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	k := loadKustomization(t)
	out := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		for key, v := range readEnvFile(t, filepath.Join(k8sDir, k.generated(t, ef.ConfigMapRef.Name)[""])) {
			out[key] = v
		}
	}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

// TestKubernetesConfigLoads: each program's own loader accepts the
// environment its container gets, and reads every variable of it.
func TestKubernetesConfigLoads(t *testing.T) {
	d := k8sObject[appsv1.Deployment](t, "deployment.yaml")
	spec := d.Spec.Template.Spec
	t.Run("authsvc", func(t *testing.T) {
		e := podEnv(t, container(t, spec.Containers, "authsvc"))
		names := envconfigNames(t, "../authsvc")
		for k := range e {
			if !slices.Contains(names, k) {
				t.Errorf("authsvc: %s is not read by the program", k)
			}
		}
		pw := filepath.Join(t.TempDir(), "bind-password")
		writeFile(t, pw, "from-the-secret\n")
		e["LDAP_BIND_PASSWORD_FILE"] = pw
		setEnv(t, e, names)
		cfg, err := authsvc.LoadConfig()
		if err != nil {
			t.Fatalf("authsvc.LoadConfig: %v", err)
		}
		if string(cfg.LDAPBindPassword) != "from-the-secret" {
			t.Error("bind password: not the one from the file")
		}
	})
	for _, name := range []string{"tokenwriter-init", "tokenwriter"} {
		t.Run(name, func(t *testing.T) {
			c := container(t, append(slices.Clone(spec.InitContainers), spec.Containers...), name)
			e := podEnv(t, c)
			names := envconfigNames(t, "../tokenwriter")
			for k := range e {
				if !slices.Contains(names, k) {
					t.Errorf("%s: %s is not read by the program", name, k)
				}
			}
			setEnv(t, e, names)
			cfg, err := tokenwriter.Load()
			if err != nil {
				t.Fatalf("tokenwriter.Load: %v", err)
			}
			if cfg.TokenFile != ecrDir+"/ecr.conf" {
				t.Errorf("token file %q", cfg.TokenFile)
			}
		})
	}
}

// setEnv makes the process environment exactly e for names (and the SDK's).
func setEnv(t *testing.T, e map[string]string, names []string) {
	t.Helper()
	for _, k := range slices.Concat(names, sdkVariables) {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range e {
		t.Setenv(k, v)
	}
}

// k8sConfDir lays out the pod's /etc/nginx from the ConfigMap's files, as the
// Deployment mounts them, with the pod's paths and ports mapped into dir.
func k8sConfDir(t *testing.T, authPort int) (dir string, httpsPort, readyPort int) {
	t.Helper()
	dir = t.TempDir()
	httpsPort, readyPort = freePort(t), freePort(t)
	k := loadKustomization(t)
	files := map[string]string{}
	for key, file := range k.generated(t, "aws-ecr-ldap-nginx") {
		name := "local/" + key
		if key == "nginx.conf" {
			name = key
		}
		files[name] = readFile(t, filepath.Join(k8sDir, file))
	}
	writeSelfSigned(t, filepath.Join(dir, "tls"))
	assembleConfDir(t, dir, files, []rewrite{
		{"local/main.conf", "pid /run/nginx/nginx.pid;", "pid " + dir + "/nginx.pid;", 1},
		{"local/http.conf", "server 127.0.0.1:9000;", "server 127.0.0.1:" + strconv.Itoa(authPort) + ";", 1},
		{"local/http.conf", "/var/cache/nginx/", dir + "/cache/", 5},
		{"local/http.conf", "listen 8081;", "listen 127.0.0.1:" + strconv.Itoa(readyPort) + ";", 1},
		{"local/listen.conf", "listen 8443 ssl;", "listen 127.0.0.1:" + strconv.Itoa(httpsPort) + " ssl;", 1},
		{"local/listen.conf", tlsDir + "/", dir + "/tls/", 2},
	}, []string{"cache"}, // the nginx-cache emptyDir at /var/cache/nginx
		ecrInclude("127.0.0.1", freePort(t), ecrToken(t, 6400)))
	return dir, httpsPort, readyPort
}

// TestKubernetesNginx runs the pod's nginx configuration with the real nginx:
// `nginx -t`, then nginx itself, the probes' requests, and `nginx -t` again
// while nginx runs (tokenwriter's check shares the pod's network namespace).
func TestKubernetesNginx(t *testing.T) {
	ready := true
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/readyz" && ready:
			w.WriteHeader(http.StatusOK)
		case r.URL.Path == "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(auth.Close)
	_, portStr, _ := net.SplitHostPort(auth.Listener.Addr().String())
	authPort, _ := strconv.Atoi(portStr)

	dir, httpsPort, readyPort := k8sConfDir(t, authPort)
	if out, err := nginxTest(t, dir); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	argv := gateway.NginxCommand(dir)
	cmd := exec.Command(nginxBinary(t), argv[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		<-exited
	})
	if !waitListening(httpsPort, exited) {
		t.Fatal("nginx does not listen")
	}
	base := "https://127.0.0.1:" + strconv.Itoa(httpsPort)
	if r := get(t, base+"/healthz"); r.status != http.StatusOK {
		t.Errorf("liveness GET /healthz got %d; want 200", r.status)
	}
	readyURL := "http://127.0.0.1:" + strconv.Itoa(readyPort) + "/readyz"
	if r := get(t, readyURL); r.status != http.StatusOK {
		t.Errorf("readiness GET /readyz got %d; want 200 (authsvc ready)", r.status)
	}
	ready = false
	if r := get(t, readyURL); r.status != http.StatusServiceUnavailable {
		t.Errorf("readiness GET /readyz got %d; want 503 (authsvc not ready)", r.status)
	}
	if r := get(t, "http://127.0.0.1:"+strconv.Itoa(readyPort)+"/auth"); r.status != http.StatusNotFound {
		t.Errorf("GET /auth on the readiness port got %d; want 404 (only /readyz)", r.status)
	}
	if r := get(t, base+"/v2/"); r.status != http.StatusUnauthorized {
		t.Errorf("GET /v2/ got %d; want 401", r.status)
	}
	if out, err := nginxTest(t, dir); err != nil {
		t.Errorf("nginx -t while nginx runs: %v\n%s", err, out)
	}
}

// tokenwriter's health is watched (a stuck tokenwriter would otherwise go
// unnoticed until the token expires), and the NLB keeps client addresses for
// authsvc's per-address failed-login limit.
func TestKubernetesTokenwriterHealthAndClientIP(t *testing.T) {
	d := k8sObject[appsv1.Deployment](t, "deployment.yaml")
	tw := container(t, d.Spec.Template.Spec.Containers, "tokenwriter")
	addr, ok := envValue(tw, "TOKENWRITER_LISTEN_ADDR")
	if !ok || addr == "" {
		t.Fatal("tokenwriter: TOKENWRITER_LISTEN_ADDR not set; its /healthz and /readyz are off")
	}
	for name, p := range map[string]*corev1.Probe{"liveness": tw.LivenessProbe, "readiness": tw.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
		if p == nil || p.Exec == nil || !strings.Contains(strings.Join(p.Exec.Command, " "), "http://"+addr+want) {
			t.Errorf("tokenwriter %s probe: got %+v; want a check of http://%s%s", name, p, addr, want)
		}
	}
	s := k8sObject[corev1.Service](t, "service.yaml")
	if got := s.Annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"]; !strings.Contains(got, "preserve_client_ip.enabled=true") {
		t.Errorf("service: target group attributes %q; want preserve_client_ip.enabled=true", got)
	}
}
