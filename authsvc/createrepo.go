package authsvc

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// RepositoryAPI is what create-on-push needs of ECR: the two calls of
// *ecr.Client that ecr:DescribeRepositories and ecr:CreateRepository allow.
type RepositoryAPI interface {
	DescribeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesInput, optFns ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	CreateRepository(ctx context.Context, in *ecr.CreateRepositoryInput, optFns ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
}

var _ RepositoryAPI = (*ecr.Client)(nil)

// Headers nginx sets on the auth subrequest from tokenwriter's include: the
// registry (account id, "" for the credentials' own) and region ("" for
// AWS_REGION) of the host the request is for.
const (
	RegistryIDHeader = "X-ECR-Registry-Id"
	RegionHeader     = "X-ECR-Region"
)

// Defaults of RepositoryOptions.
const (
	// DefaultRepositoryCallTimeout bounds one ensure (Describe, then Create
	// with the SDK's retries), well inside nginx's 20 s proxy_read_timeout of
	// the auth subrequest.
	DefaultRepositoryCallTimeout = 5 * time.Second
	// DefaultKnownRepositoryTTL is how long a repository seen to exist is not
	// looked up again; one deleted meanwhile gets ECR's NAME_UNKNOWN until then.
	DefaultKnownRepositoryTTL = 10 * time.Minute
	// DefaultKnownRepositories bounds the cache of existing repositories.
	DefaultKnownRepositories = 10000
	// repositoryFailureTTL: a repository that could not be created is not
	// tried again for this long, so that docker's retries of ten layer
	// uploads neither hammer a refusing API nor each wait for a dead one.
	repositoryFailureTTL = 10 * time.Second
)

// RepositoryOptions configure a RepositoryCreator. Zero values take the defaults.
type RepositoryOptions struct {
	// DefaultRegion is the region of a request for which nginx sends no
	// X-ECR-Region (AWS_REGION); a client is made per region, when first needed.
	DefaultRegion string
	TagMutability string // MUTABLE or IMMUTABLE; "" sends none
	ScanOnPush    *bool  // nil sends no imageScanningConfiguration
	Timeout       time.Duration
	KnownTTL      time.Duration
	KnownSize     int
	Logger        *slog.Logger          // nil discards
	Registerer    prometheus.Registerer // nil: a registry nobody reads
	Now           func() time.Time      // nil: time.Now
}

// RepositoryCreator makes sure the repository of an allowed upload start
// exists, creating it when it does not (AUTH_CREATE_REPOSITORIES). It never
// fails the request: a repository it could not create is logged, and the
// upload goes on to ECR, whose NAME_UNKNOWN or DENIED reaches the client.
type RepositoryCreator struct {
	clientFor func(region string) RepositoryAPI
	opts      RepositoryOptions
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	clients map[string]RepositoryAPI // by region

	known   *expiringSet // repositories seen to exist
	failed  *expiringSet // repositories that could not be created lately
	flights singleflight.Group

	checks, created prometheus.Counter
	failures        map[string]prometheus.Counter // by reason
}

// Failure reasons, the values of authsvc_repository_create_failures_total{reason}.
const (
	failDenied  = "denied"  // AccessDeniedException: the role lacks DescribeRepositories or CreateRepository
	failInvalid = "invalid" // InvalidParameterException, InvalidTagParameterException: ECR refuses the name or a setting
	failLimit   = "limit"   // LimitExceededException: too many repositories
	failTimeout = "timeout" // no answer within the timeout
	failError   = "error"   // anything else (throttling, network, KMS)
)

// NewRepositoryCreator returns a creator that calls ECR through
// clientFor(region), asked once per region ("" never: DefaultRegion stands in).
func NewRepositoryCreator(clientFor func(region string) RepositoryAPI, opts RepositoryOptions) *RepositoryCreator {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRepositoryCallTimeout
	}
	if opts.KnownTTL <= 0 {
		opts.KnownTTL = DefaultKnownRepositoryTTL
	}
	if opts.KnownSize <= 0 {
		opts.KnownSize = DefaultKnownRepositories
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authsvc_repository_create_failures_total",
		Help: "Missing repositories create-on-push could not create, by reason: denied, invalid, limit, timeout, error.",
	}, []string{"reason"})
	c := &RepositoryCreator{
		clientFor: clientFor,
		opts:      opts,
		log:       opts.Logger,
		now:       opts.Now,
		clients:   map[string]RepositoryAPI{},
		known:     newExpiringSet(opts.KnownTTL, opts.KnownSize),
		failed:    newExpiringSet(repositoryFailureTTL, opts.KnownSize),
		checks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authsvc_repository_checks_total",
			Help: "DescribeRepositories calls of create-on-push (one per repository not known to exist, shared by concurrent uploads).",
		}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authsvc_repositories_created_total", Help: "Repositories created by create-on-push.",
		}),
		failures: map[string]prometheus.Counter{},
	}
	for _, r := range []string{failDenied, failInvalid, failLimit, failTimeout, failError} {
		c.failures[r] = failures.WithLabelValues(r)
	}
	opts.Registerer.MustRegister(c.checks, c.created, failures)
	return c
}

// NewECRRepositoryClients returns a clientFor for NewRepositoryCreator: ECR
// clients from cfg (credentials, AWS_ENDPOINT_URL_ECR), each with its region.
func NewECRRepositoryClients(cfg aws.Config) func(region string) RepositoryAPI {
	return func(region string) RepositoryAPI {
		return ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.Region = region })
	}
}

// repoTarget is one repository of one registry.
type repoTarget struct {
	registryID string // "" omits registryId: the credentials' own registry
	region     string // never "": DefaultRegion stands in
	repository string
}

func (t repoTarget) key() string { return t.registryID + "\x00" + t.region + "\x00" + t.repository }

// What ensure came to, for tests.
const (
	ensureKnown   = "known"   // in the cache: no call
	ensureExists  = "exists"  // DescribeRepositories found it (or CreateRepository said it exists)
	ensureCreated = "created" // CreateRepository made it
	ensureFailed  = "failed"  // could not be created: logged, request goes on
	ensureSkipped = "skipped" // failed lately, bad headers, or the request ended while waiting
)

// ensure makes sure repository exists in the registry nginx names in
// registryID and region (either may be ""), on behalf of user, whom the
// policy already let push there. Concurrent calls for one repository share
// one lookup; the caller's cancellation ends only its own wait.
func (c *RepositoryCreator) ensure(ctx context.Context, user, registryID, region, repository string) string {
	if region == "" {
		region = c.opts.DefaultRegion
	}
	if (registryID != "" && !validRegistryID(registryID)) || !validRegion(region) {
		c.log.LogAttrs(ctx, slog.LevelWarn, "repository not created: nginx sent an invalid registry or region",
			slog.String("user", clip(user, maxLoggedUser)), slog.String("repository", repository),
			slog.String("registry_id", clip(registryID, 64)), slog.String("region", clip(region, 64)))
		return ensureSkipped
	}
	t := repoTarget{registryID: registryID, region: region, repository: repository}
	key := t.key()
	now := c.now()
	if c.known.has(key, now) {
		return ensureKnown
	}
	if c.failed.has(key, now) {
		c.log.LogAttrs(ctx, slog.LevelDebug, "repository creation failed moments ago; not asking ecr",
			slog.String("user", clip(user, maxLoggedUser)), slog.String("repository", repository))
		return ensureSkipped
	}
	ch := c.flights.DoChan(key, func() (any, error) {
		if c.known.has(key, c.now()) { // a group that ended just now
			return ensureKnown, nil
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
		defer cancel()
		return c.lookUpOrCreate(cctx, user, t), nil
	})
	select {
	case res := <-ch:
		return res.Val.(string)
	case <-ctx.Done():
		return ensureSkipped
	}
}

// lookUpOrCreate asks ECR whether t exists and creates it if not. Describe
// first: a CreateRepository on every cold cache would fill CloudTrail with
// RepositoryAlreadyExistsException.
func (c *RepositoryCreator) lookUpOrCreate(ctx context.Context, user string, t repoTarget) string {
	api := c.client(t.region)
	var registryID *string
	if t.registryID != "" {
		registryID = aws.String(t.registryID)
	}
	c.checks.Inc()
	_, err := api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{
		RegistryId: registryID, RepositoryNames: []string{t.repository},
	})
	if err == nil {
		c.known.add(t.key(), c.now())
		return ensureExists
	}
	if code := apiErrorCode(err); code != "RepositoryNotFoundException" {
		return c.fail(ctx, user, t, "DescribeRepositories", err)
	}
	in := &ecr.CreateRepositoryInput{RegistryId: registryID, RepositoryName: aws.String(t.repository)}
	if c.opts.TagMutability != "" {
		in.ImageTagMutability = types.ImageTagMutability(c.opts.TagMutability)
	}
	if c.opts.ScanOnPush != nil {
		in.ImageScanningConfiguration = &types.ImageScanningConfiguration{ScanOnPush: *c.opts.ScanOnPush}
	}
	_, err = api.CreateRepository(ctx, in)
	switch {
	case err == nil:
		c.known.add(t.key(), c.now())
		c.created.Inc()
		c.log.LogAttrs(ctx, slog.LevelInfo, "repository created",
			slog.String("user", clip(user, maxLoggedUser)), slog.String("repository", t.repository),
			slog.String("registry_id", t.registryID), slog.String("region", t.region))
		return ensureCreated
	case apiErrorCode(err) == "RepositoryAlreadyExistsException":
		// Created meanwhile by someone else (another gateway, a pipeline).
		c.known.add(t.key(), c.now())
		return ensureExists
	}
	return c.fail(ctx, user, t, "CreateRepository", err)
}

// fail logs and counts a repository that could not be made sure of.
func (c *RepositoryCreator) fail(ctx context.Context, user string, t repoTarget, op string, err error) string {
	reason := failError
	switch code := apiErrorCode(err); {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		reason = failTimeout
	case code == "AccessDeniedException":
		reason = failDenied
	case code == "InvalidParameterException" || code == "InvalidTagParameterException" || code == "ValidationException":
		reason = failInvalid
	case code == "LimitExceededException":
		reason = failLimit
	}
	c.failures[reason].Inc()
	c.failed.add(t.key(), c.now())
	c.log.LogAttrs(ctx, slog.LevelWarn, "repository not created; the push goes on to ecr",
		slog.String("user", clip(user, maxLoggedUser)), slog.String("repository", t.repository),
		slog.String("registry_id", t.registryID), slog.String("region", t.region),
		slog.String("operation", op), slog.String("reason", reason), slog.String("error", err.Error()))
	return ensureFailed
}

// client is the ECR client of region, made when first needed.
func (c *RepositoryCreator) client(region string) RepositoryAPI {
	c.mu.Lock()
	defer c.mu.Unlock()
	api, ok := c.clients[region]
	if !ok {
		api = c.clientFor(region)
		c.clients[region] = api
	}
	return api
}

// apiErrorCode is the AWS error code in err ("RepositoryNotFoundException"), or "".
func apiErrorCode(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode()
	}
	return ""
}
