package authsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
)

// ecrCall is one call a fakeECR received.
type ecrCall struct {
	op, region, registryID, name string
	create                       *ecr.CreateRepositoryInput
}

func (c ecrCall) String() string {
	return fmt.Sprintf("%s(%s/%s/%s)", c.op, c.region, c.registryID, c.name)
}

// fakeECR is a registry of repositories: Describe finds what exists, Create
// adds. createErr and describeErr, when set, answer instead; gate, when set,
// holds every Describe until it is closed or the call's context ends.
type fakeECR struct {
	mu          sync.Mutex
	exists      map[string]bool
	calls       []ecrCall
	clients     []string // regions clients were made for
	describeErr error
	createErr   error
	gate        chan struct{}
}

func newFakeECR(existing ...string) *fakeECR {
	f := &fakeECR{exists: map[string]bool{}}
	for _, n := range existing {
		f.exists[n] = true
	}
	return f
}

func (f *fakeECR) clientFor(region string) RepositoryAPI {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients = append(f.clients, region)
	return regionClient{f, region}
}

func (f *fakeECR) got() []ecrCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ecrCall(nil), f.calls...)
}

func (f *fakeECR) set(fn func(f *fakeECR)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

type regionClient struct {
	f      *fakeECR
	region string
}

func opError(op string, err error) error {
	return &smithy.OperationError{ServiceID: "ECR", OperationName: op, Err: err}
}

func (c regionClient) DescribeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesInput, _ ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error) {
	f := c.f
	f.mu.Lock()
	f.calls = append(f.calls, ecrCall{op: "Describe", region: c.region, registryID: aws.ToString(in.RegistryId), name: in.RepositoryNames[0]})
	gate, derr := f.gate, f.describeErr
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, opError("DescribeRepositories", ctx.Err())
		}
	}
	if derr != nil {
		return nil, opError("DescribeRepositories", derr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists[in.RepositoryNames[0]] {
		return nil, opError("DescribeRepositories", &types.RepositoryNotFoundException{Message: aws.String("not found")})
	}
	return &ecr.DescribeRepositoriesOutput{}, nil
}

func (c regionClient) CreateRepository(_ context.Context, in *ecr.CreateRepositoryInput, _ ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error) {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	name := aws.ToString(in.RepositoryName)
	f.calls = append(f.calls, ecrCall{op: "Create", region: c.region, registryID: aws.ToString(in.RegistryId), name: name, create: in})
	if f.createErr != nil {
		return nil, opError("CreateRepository", f.createErr)
	}
	if f.exists[name] {
		return nil, opError("CreateRepository", &types.RepositoryAlreadyExistsException{Message: aws.String("exists")})
	}
	f.exists[name] = true
	return &ecr.CreateRepositoryOutput{}, nil
}

// createService is an /auth handler with the test policy (bob pushes
// team-b/**, alice only pulls) and create-on-push on a fakeECR.
type createService struct {
	h     http.Handler
	ecr   *fakeECR
	c     *RepositoryCreator
	clock *fakeClock
	logs  *logBuffer
	reg   *prometheus.Registry
}

func newCreateService(t *testing.T, f *fakeECR, withPolicy bool, opts RepositoryOptions) *createService {
	t.Helper()
	s := &createService{ecr: f, clock: newFakeClock(), logs: &logBuffer{}, reg: prometheus.NewRegistry()}
	logger := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.DefaultRegion == "" {
		opts.DefaultRegion = "eu-west-1"
	}
	opts.Logger, opts.Registerer, opts.Now = logger, s.reg, s.clock.Now
	s.c = NewRepositoryCreator(f.clientFor, opts)
	hopts := Options{Realm: testRealm, Logger: logger, Now: s.clock.Now, Repositories: s.c,
		CacheTTL: time.Minute, CacheSize: 10}
	if withPolicy {
		hopts.Policy = mustPolicy(t, testPolicy)
	}
	s.h = NewHandlerWith(policyAuth(), hopts)
	return s
}

// do sends one auth subrequest with nginx's registry headers (either may be "").
func (s *createService) do(ctx context.Context, c authCall, registryID, region string) int {
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/auth", nil)
	req.Header.Set("Authorization", basic(c.userpass))
	req.Header.Set("X-Original-Method", c.method)
	req.Header.Set("X-Original-URI", c.uri)
	req.Header.Set(RegistryIDHeader, registryID)
	req.Header.Set(RegionHeader, region)
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec.Code
}

// linesWith returns the log lines whose msg is msg.
func (s *createService) linesWith(t *testing.T, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range s.logs.lines(t) {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

func upload(userpass, repo string) authCall {
	return authCall{userpass, http.MethodPost, "/v2/" + repo + "/blobs/uploads/"}
}

func callsString(calls []ecrCall) string {
	var parts []string
	for _, c := range calls {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, " ")
}

// TestCreateOnPushOnlyForAllowedUploadStarts: an allowed upload start or
// mount creates the missing repository, once; pulls, other writes and denied
// users never call ECR.
func TestCreateOnPushOnlyForAllowedUploadStarts(t *testing.T) {
	bob, alice := "bob:bob-pw", "alice:alice-pw"
	mount := authCall{bob, http.MethodPost, "/v2/team-b/mounted/blobs/uploads/?mount=" + testDigest + "&from=team-b%2Fbase"}
	for _, tc := range []struct {
		name       string
		call       authCall
		registryID string
		region     string
		status     int
		want       string // the ECR calls
	}{
		{"upload start creates", upload(bob, "team-b/new"), "", "", 204,
			"Describe(eu-west-1//team-b/new) Create(eu-west-1//team-b/new)"},
		{"existing repository is looked up only", upload(bob, "team-b/api"), "", "", 204,
			"Describe(eu-west-1//team-b/api)"},
		{"mount creates", mount, "", "", 204,
			"Describe(eu-west-1//team-b/mounted) Create(eu-west-1//team-b/mounted)"},
		{"registry and region from nginx", upload(bob, "team-b/new"), "210987654321", "us-east-2", 204,
			"Describe(us-east-2/210987654321/team-b/new) Create(us-east-2/210987654321/team-b/new)"},
		{"pull never creates", authCall{bob, http.MethodGet, "/v2/team-b/new/manifests/latest"}, "", "", 204, ""},
		{"blob check never creates", authCall{bob, http.MethodHead, "/v2/team-b/new/blobs/" + testDigest}, "", "", 204, ""},
		{"manifest put does not create", authCall{bob, http.MethodPut, "/v2/team-b/new/manifests/latest"}, "", "", 204, ""},
		{"upload chunk does not create", authCall{bob, http.MethodPatch, "/v2/team-b/new/blobs/uploads/abc"}, "", "", 204, ""},
		{"denied user never creates", upload(alice, "team-b/new"), "", "", 403, ""},
		{"wrong password never creates", upload("bob:wrong", "team-b/new"), "", "", 401, ""},
		{"outside the required group never creates", upload("carol:carol-pw", "team-b/new"), "", "", 403, ""},
		{"bad registry id from nginx", upload(bob, "team-b/new"), "12345", "", 204, ""},
		{"bad region from nginx", upload(bob, "team-b/new"), "", "EU WEST", 204, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newCreateService(t, newFakeECR("team-b/api"), true, RepositoryOptions{})
			if got := s.do(t.Context(), tc.call, tc.registryID, tc.region); got != tc.status {
				t.Errorf("status: got %d; want %d", got, tc.status)
			}
			if got := callsString(s.ecr.got()); got != tc.want {
				t.Errorf("ecr calls: got %q; want %q", got, tc.want)
			}
			created := s.linesWith(t, "repository created")
			if wantCreated := strings.Contains(tc.want, "Create"); wantCreated != (len(created) == 1) {
				t.Fatalf("repository created lines: got %d; want %v", len(created), wantCreated)
			}
			if len(created) == 1 {
				l := created[0]
				if l["user"] != "bob" || l["repository"] != s.ecr.got()[1].name || l["registry_id"] != tc.registryID {
					t.Errorf("audit line: got %v; want user bob, the repository and registry_id %q", l, tc.registryID)
				}
				if v := value(s.c.created); v != 1 {
					t.Errorf("authsvc_repositories_created_total: got %v; want 1", v)
				}
			}
		})
	}
}

// TestCreateOnPushCachesAndSettings: a repository known to exist costs no call
// until KnownTTL; the optional settings reach CreateRepository; one client per region.
func TestCreateOnPushCachesAndSettings(t *testing.T) {
	scan := true
	s := newCreateService(t, newFakeECR(), true, RepositoryOptions{TagMutability: "IMMUTABLE", ScanOnPush: &scan})
	bob := "bob:bob-pw"
	for range 3 {
		if got := s.do(t.Context(), upload(bob, "team-b/new"), "", ""); got != 204 {
			t.Fatalf("status: got %d; want 204", got)
		}
	}
	calls := s.ecr.got()
	if got := callsString(calls); got != "Describe(eu-west-1//team-b/new) Create(eu-west-1//team-b/new)" {
		t.Fatalf("ecr calls for three uploads: got %q; want one Describe and one Create", got)
	}
	in := calls[1].create
	if in.ImageTagMutability != types.ImageTagMutabilityImmutable || in.ImageScanningConfiguration == nil || !in.ImageScanningConfiguration.ScanOnPush {
		t.Errorf("CreateRepository input: got mutability %q, scanning %+v; want IMMUTABLE and scan on push", in.ImageTagMutability, in.ImageScanningConfiguration)
	}
	s.clock.Advance(DefaultKnownRepositoryTTL - time.Second)
	s.do(t.Context(), upload(bob, "team-b/new"), "", "")
	if n := len(s.ecr.got()); n != 2 {
		t.Errorf("ecr calls just before the TTL: got %d; want 2", n)
	}
	s.clock.Advance(2 * time.Second)
	s.do(t.Context(), upload(bob, "team-b/new"), "", "")
	if got := callsString(s.ecr.got()[2:]); got != "Describe(eu-west-1//team-b/new)" {
		t.Errorf("ecr calls after the TTL: got %q; want one Describe", got)
	}
	s.do(t.Context(), upload(bob, "team-b/new"), "", "us-east-1")
	s.do(t.Context(), upload(bob, "team-b/other"), "", "us-east-1")
	if got := strings.Join(s.ecr.clients, " "); got != "eu-west-1 us-east-1" {
		t.Errorf("clients made for regions: got %q; want one per region", got)
	}

	// Unset settings are not sent: ECR (and the account's defaults) decide.
	s2 := newCreateService(t, newFakeECR(), true, RepositoryOptions{})
	s2.do(t.Context(), upload(bob, "team-b/new"), "", "")
	if in := s2.ecr.got()[1].create; in.ImageTagMutability != "" || in.ImageScanningConfiguration != nil {
		t.Errorf("CreateRepository input without settings: got %q, %+v; want neither", in.ImageTagMutability, in.ImageScanningConfiguration)
	}
}

// TestCreateOnPushSingleflight: ten parallel layer uploads into a missing
// repository cost one DescribeRepositories and one CreateRepository.
func TestCreateOnPushSingleflight(t *testing.T) {
	f := newFakeECR()
	f.gate = make(chan struct{})
	s := newCreateService(t, f, true, RepositoryOptions{})
	var wg sync.WaitGroup
	codes := make(chan int, 10)
	for range 10 {
		wg.Go(func() { codes <- s.do(t.Context(), upload("bob:bob-pw", "team-b/new"), "", "") })
	}
	time.Sleep(100 * time.Millisecond) // every request is waiting on the first lookup
	close(f.gate)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 204 {
			t.Errorf("status: got %d; want 204", c)
		}
	}
	if got := callsString(f.got()); got != "Describe(eu-west-1//team-b/new) Create(eu-west-1//team-b/new)" {
		t.Errorf("ecr calls: got %q; want one Describe and one Create", got)
	}
}

// TestCreateOnPushFailures: whatever ECR answers, the request is still
// allowed (ECR's own error reaches the client); a failure is logged once with
// user and repository, counted by reason, and not retried for 10 s.
func TestCreateOnPushFailures(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/gw/i-1 is not authorized to perform: ecr:CreateRepository"}
	for _, tc := range []struct {
		name                   string
		describeErr, createErr error
		reason, op             string
		calls                  string
	}{
		{"create denied", nil, denied, failDenied, "CreateRepository", "Describe Create"},
		{"describe denied", denied, nil, failDenied, "DescribeRepositories", "Describe"},
		{"invalid name", nil, &types.InvalidParameterException{Message: aws.String("Invalid parameter at 'repositoryName'")}, failInvalid, "CreateRepository", "Describe Create"},
		{"limit", nil, &types.LimitExceededException{Message: aws.String("too many repositories")}, failLimit, "CreateRepository", "Describe Create"},
		{"throttled", &smithy.GenericAPIError{Code: "ThrottlingException"}, nil, failError, "DescribeRepositories", "Describe"},
		{"network", errors.New("dial tcp: connection refused"), nil, failError, "DescribeRepositories", "Describe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeECR()
			f.describeErr, f.createErr = tc.describeErr, tc.createErr
			s := newCreateService(t, f, true, RepositoryOptions{})
			if got := s.do(t.Context(), upload("bob:bob-pw", "team-b/new"), "", ""); got != 204 {
				t.Errorf("status: got %d; want 204 (the request goes on to ECR)", got)
			}
			var ops []string
			for _, c := range f.got() {
				ops = append(ops, c.op)
			}
			if got := strings.Join(ops, " "); got != tc.calls {
				t.Errorf("ecr calls: got %q; want %q", got, tc.calls)
			}
			lines := s.linesWith(t, "repository not created; the push goes on to ecr")
			if len(lines) != 1 {
				t.Fatalf("failure lines: got %d; want 1:\n%s", len(lines), s.logs)
			}
			l := lines[0]
			if l["user"] != "bob" || l["repository"] != "team-b/new" || l["reason"] != tc.reason || l["operation"] != tc.op || l["level"] != "WARN" {
				t.Errorf("failure line: got %v; want user bob, repository team-b/new, reason %s, operation %s, WARN", l, tc.reason, tc.op)
			}
			if v := value(s.c.failures[tc.reason]); v != 1 {
				t.Errorf("failures{reason=%q}: got %v; want 1", tc.reason, v)
			}
			if len(s.linesWith(t, "repository created")) != 0 {
				t.Error("a repository created line after a failure")
			}
			// Docker's retries within the next seconds do not ask ECR again.
			n := len(f.got())
			s.clock.Advance(repositoryFailureTTL - time.Second)
			s.do(t.Context(), upload("bob:bob-pw", "team-b/new"), "", "")
			if got := len(f.got()); got != n {
				t.Errorf("ecr calls right after a failure: got %d more; want none", got-n)
			}
			// Then it is tried again, and a fixed problem is fixed.
			f.set(func(f *fakeECR) { f.describeErr, f.createErr = nil, nil })
			s.clock.Advance(2 * time.Second)
			s.do(t.Context(), upload("bob:bob-pw", "team-b/new"), "", "")
			if got := callsString(f.got()[n:]); got != "Describe(eu-west-1//team-b/new) Create(eu-west-1//team-b/new)" {
				t.Errorf("ecr calls after the failure memory: got %q; want Describe and Create", got)
			}
		})
	}
}

// TestCreateOnPushAlreadyExists: a repository created meanwhile by someone
// else is a success: no failure, no "created" line, cached.
func TestCreateOnPushAlreadyExists(t *testing.T) {
	f := newFakeECR()
	s := newCreateService(t, f, true, RepositoryOptions{})
	// Describe says missing, Create finds it: another gateway got there first.
	s.c.clientFor = func(region string) RepositoryAPI { return racingClient{regionClient{f, region}} }
	if got := s.do(t.Context(), upload("bob:bob-pw", "team-b/new"), "", ""); got != 204 {
		t.Errorf("status: got %d; want 204", got)
	}
	if n := len(s.linesWith(t, "repository created")) + len(s.linesWith(t, "repository not created; the push goes on to ecr")); n != 0 {
		t.Errorf("created or failure lines: got %d; want none:\n%s", n, s.logs)
	}
	s.do(t.Context(), upload("bob:bob-pw", "team-b/new"), "", "")
	if got := len(f.got()); got != 2 {
		t.Errorf("ecr calls: got %d; want 2 (Describe, Create; then cached)", got)
	}
}

// racingClient creates the repository between Describe and Create.
type racingClient struct{ regionClient }

func (c racingClient) DescribeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesInput, o ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error) {
	out, err := c.regionClient.DescribeRepositories(ctx, in, o...)
	c.f.set(func(f *fakeECR) { f.exists[in.RepositoryNames[0]] = true })
	return out, err
}

// TestCreateOnPushTimeout: an ECR that does not answer holds the request for
// the timeout at most, then lets it go on; a request that ends meanwhile is
// answered at once.
func TestCreateOnPushTimeout(t *testing.T) {
	f := newFakeECR()
	f.gate = make(chan struct{}) // ECR hangs until the test ends
	t.Cleanup(func() { close(f.gate) })
	s := newCreateService(t, f, true, RepositoryOptions{Timeout: 50 * time.Millisecond})
	start := time.Now()
	if got := s.do(t.Context(), upload("bob:bob-pw", "team-b/new"), "", ""); got != 204 {
		t.Errorf("status: got %d; want 204", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answer after %s; want about the 50ms timeout", d)
	}
	if v := value(s.c.failures[failTimeout]); v != 1 {
		t.Errorf("failures{reason=timeout}: got %v; want 1", v)
	}

	s2 := newCreateService(t, f, true, RepositoryOptions{Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	s2.do(ctx, upload("bob:bob-pw", "team-b/other"), "", "")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a cancelled request answered after %s; want at once", d)
	}
}

// TestCreateOnPushWithoutPolicy: with no policy every user LDAP accepts may
// push anywhere, so create-on-push applies to all of them.
func TestCreateOnPushWithoutPolicy(t *testing.T) {
	s := newCreateService(t, newFakeECR(), false, RepositoryOptions{})
	if got := s.do(t.Context(), upload("alice:alice-pw", "anything/new"), "", ""); got != 204 {
		t.Errorf("status: got %d; want 204", got)
	}
	if got := callsString(s.ecr.got()); got != "Describe(eu-west-1//anything/new) Create(eu-west-1//anything/new)" {
		t.Errorf("ecr calls: got %q; want Describe and Create", got)
	}
	if got := s.do(t.Context(), authCall{"alice:alice-pw", http.MethodGet, "/v2/other/manifests/x"}, "", ""); got != 204 || len(s.ecr.got()) != 2 {
		t.Errorf("pull: got %d and %d calls; want 204 and no new call", got, len(s.ecr.got())-2)
	}
}

func TestExpiringSetBounded(t *testing.T) {
	s := newExpiringSet(time.Minute, 3)
	now := time.Now()
	for i := range 10 {
		s.add(fmt.Sprint(i), now)
	}
	if n := s.len(); n != 3 {
		t.Errorf("size: got %d; want 3", n)
	}
	if !s.has("9", now) {
		t.Error("the last key added: got absent; want present")
	}
	if s.has("9", now.Add(time.Minute)) {
		t.Error("a key after its ttl: got present; want absent")
	}
}

func TestRepositoryConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		want  []string // problems, by variable
		check func(t *testing.T, rc RepositoryConfig)
	}{
		{"off by default", nil, nil, func(t *testing.T, rc RepositoryConfig) {
			if rc.Create || rc.TagMutability != "" || rc.ScanOnPush != nil {
				t.Errorf("got %+v; want off, no settings", rc)
			}
		}},
		{"old REGION is enough", map[string]string{"AUTH_CREATE_REPOSITORIES": "true", "REGION": "eu-west-1", "AWS_KEY": "AKID", "AWS_SECRET": "sekrit-9f3"}, nil,
			func(t *testing.T, rc RepositoryConfig) {
				if rc.DefaultRegion() != "eu-west-1" || rc.AWSKey != "AKID" || rc.AWSSecret.Reveal() != "sekrit-9f3" {
					t.Errorf("got region %q, key %q; want eu-west-1, AKID", rc.DefaultRegion(), rc.AWSKey)
				}
			}},
		{"settings", map[string]string{"AUTH_CREATE_REPOSITORIES": "1", "AWS_REGION": "us-east-1", "AUTH_CREATE_REPOSITORY_TAG_MUTABILITY": "immutable",
			"AUTH_CREATE_REPOSITORY_SCAN_ON_PUSH": "false"}, nil, func(t *testing.T, rc RepositoryConfig) {
			if !rc.Create || rc.TagMutability != "IMMUTABLE" || rc.ScanOnPush == nil || *rc.ScanOnPush {
				t.Errorf("got %+v; want on, IMMUTABLE, scan on push false", rc)
			}
		}},
		{"every problem", map[string]string{"AUTH_CREATE_REPOSITORIES": "yes please", "AUTH_CREATE_REPOSITORY_TAG_MUTABILITY": "sometimes",
			"AUTH_CREATE_REPOSITORY_SCAN_ON_PUSH": "maybe"}, []string{
			`AUTH_CREATE_REPOSITORIES: must be true or false, got "yes please"`,
			`AUTH_CREATE_REPOSITORY_SCAN_ON_PUSH: must be true or false, got "maybe"`,
			`AUTH_CREATE_REPOSITORY_TAG_MUTABILITY: must be MUTABLE or IMMUTABLE`}, nil},
		{"credentials in pairs", map[string]string{"AUTH_CREATE_REPOSITORIES": "true", "AWS_REGION": "eu-west-1", "AWS_SECRET": "sekrit-9f3",
			"AWS_ENDPOINT_URL_ECR": "api.ecr.local"}, []string{"AWS_KEY: required when AWS_SECRET is set", "AWS_ENDPOINT_URL_ECR: want an http(s) URL"}, nil},
		{"sdk credentials in pairs", map[string]string{"AUTH_CREATE_REPOSITORIES": "true", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID"},
			[]string{"AWS_SECRET_ACCESS_KEY: required when AWS_ACCESS_KEY_ID is set"}, nil},
		{"bad region", map[string]string{"AUTH_CREATE_REPOSITORIES": "true", "AWS_REGION": "Frankfurt"}, []string{`AWS_REGION: not a region name`}, nil},
		{"off: aws variables are not authsvc's business", map[string]string{"AWS_SECRET": "sekrit-9f3"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"AUTH_CREATE_REPOSITORIES", "AUTH_CREATE_REPOSITORY_TAG_MUTABILITY", "AUTH_CREATE_REPOSITORY_SCAN_ON_PUSH",
				"AWS_REGION", "REGION", "AWS_KEY", "AWS_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_ECR"} {
				t.Setenv(name, tc.env[name])
			}
			var rc RepositoryConfig
			failed := map[string]bool{}
			errs := rc.load(failed)
			for _, p := range rc.problems() {
				if !failed[p.name] {
					errs = append(errs, p)
				}
			}
			got := errors.Join(errs...)
			for _, w := range tc.want {
				if got == nil || !strings.Contains(got.Error(), w) {
					t.Errorf("problems: got %v; want one containing %q", got, w)
				}
			}
			if len(tc.want) == 0 && got != nil {
				t.Errorf("problems: got %v; want none", got)
			}
			if len(tc.want) > 0 && len(errs) != len(tc.want) {
				t.Errorf("problems: got %d (%v); want %d", len(errs), got, len(tc.want))
			}
			if tc.check != nil {
				tc.check(t, rc)
			}
			if got != nil && strings.Contains(got.Error(), tc.env["AWS_SECRET"]) && tc.env["AWS_SECRET"] != "" {
				t.Errorf("problems print the secret: %v", got)
			}
		})
	}
}

// With no region anywhere, create-on-push refuses to start, naming AWS_REGION.
func TestCreateOnPushNeedsRegion(t *testing.T) {
	for _, name := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "REGION", "AWS_PROFILE"} {
		t.Setenv(name, "")
	}
	empty := t.TempDir() + "/empty"
	writeFileT(t, empty, "")
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	_, err := newRepositoryCreator(t.Context(), RepositoryConfig{Create: true}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if !errors.Is(err, errNoRegion) || !strings.HasPrefix(err.Error(), "AWS_REGION: required when AUTH_CREATE_REPOSITORIES=true") {
		t.Errorf("got %v; want %v", err, errNoRegion)
	}
	c, err := newRepositoryCreator(t.Context(), RepositoryConfig{Create: true, Region: "eu-central-1"}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil || c.opts.DefaultRegion != "eu-central-1" {
		t.Errorf("with the old REGION: got %v, region %q; want eu-central-1", err, c.opts.DefaultRegion)
	}
}

func writeFileT(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
