package authsvc

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// repositoryEnv is the create-on-push half of the environment, read by
// envconfig as strings like env.
type repositoryEnv struct {
	Create        string `envconfig:"AUTH_CREATE_REPOSITORIES" default:"false"`
	TagMutability string `envconfig:"AUTH_CREATE_REPOSITORY_TAG_MUTABILITY"`
	ScanOnPush    string `envconfig:"AUTH_CREATE_REPOSITORY_SCAN_ON_PUSH"`
}

// awsVariables are the AWS settings create-on-push uses: the names
// tokenwriter reads (AWS_REGION, and the old image's REGION, AWS_KEY,
// AWS_SECRET) and the SDK's own, which the SDK reads itself. They are looked
// up here rather than declared to envconfig: they are not authsvc's own
// settings, and the deployments hand every declared variable to authsvc,
// while AWS credentials are tokenwriter's unless an operator turns
// create-on-push on and gives authsvc an identity (deploy/iam).
var awsVariables = struct{ region, oldRegion, key, secret, accessKeyID, secretAccessKey, endpointECR string }{
	"AWS_REGION", "REGION", "AWS_KEY", "AWS_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_ECR",
}

// RepositoryConfig is the create-on-push part of Config: with Create set,
// authsvc creates a missing repository when a user the policy lets push there
// starts a blob upload. Each field names its environment variable.
type RepositoryConfig struct {
	Create bool // AUTH_CREATE_REPOSITORIES: default false
	// TagMutability is AUTH_CREATE_REPOSITORY_TAG_MUTABILITY, MUTABLE or
	// IMMUTABLE; "" sends none (ECR's default, MUTABLE).
	TagMutability string
	// ScanOnPush is AUTH_CREATE_REPOSITORY_SCAN_ON_PUSH; nil sends none (the
	// registry's scanning configuration decides).
	ScanOnPush *bool

	AWSRegion      string // AWS_REGION: the ECR API's region unless nginx names one (X-ECR-Region)
	Region         string // REGION: the old image's name for it, used when AWS_REGION is unset
	AWSKey         string // AWS_KEY: the old image's static access key; unset: the SDK's default chain
	AWSSecret      Secret // AWS_SECRET: its secret
	EndpointURLECR string // AWS_ENDPOINT_URL_ECR: the ECR API endpoint (VPC endpoint, emulator), read by the SDK

	accessKeyID, secretAccessKey bool // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY are set
}

// load reads the create-on-push variables; values that do not parse are
// reported and marked failed.
func (rc *RepositoryConfig) load(failed map[string]bool) []error {
	var e repositoryEnv
	if err := envconfig.Process("", &e); err != nil {
		return []error{fmt.Errorf("read environment: %w", err)}
	}
	v := awsVariables
	*rc = RepositoryConfig{
		TagMutability: strings.ToUpper(strings.TrimSpace(e.TagMutability)),
		AWSRegion:     os.Getenv(v.region), Region: os.Getenv(v.oldRegion),
		AWSKey: os.Getenv(v.key), AWSSecret: Secret(os.Getenv(v.secret)),
		EndpointURLECR:  os.Getenv(v.endpointECR),
		accessKeyID:     os.Getenv(v.accessKeyID) != "",
		secretAccessKey: os.Getenv(v.secretAccessKey) != "",
	}
	var errs []error
	bad := func(name, value string) {
		errs = append(errs, problem{name, fmt.Sprintf("must be true or false, got %q", value)})
		failed[name] = true
	}
	if e.Create != "" {
		v, err := strconv.ParseBool(e.Create)
		if err != nil {
			bad("AUTH_CREATE_REPOSITORIES", e.Create)
		}
		rc.Create = v
	}
	if e.ScanOnPush != "" {
		v, err := strconv.ParseBool(e.ScanOnPush)
		if err != nil {
			bad("AUTH_CREATE_REPOSITORY_SCAN_ON_PUSH", e.ScanOnPush)
		} else {
			rc.ScanOnPush = &v
		}
	}
	return errs
}

// errNoRegion: create-on-push found no region anywhere at start.
var errNoRegion = problem{"AWS_REGION", "required when AUTH_CREATE_REPOSITORIES=true (or REGION, a profile's region, or the EC2 instance's), e.g. eu-west-1"}

// DefaultRegion is the region of ECR calls for which nginx names none:
// AWS_REGION, else REGION; "" leaves it to the SDK (profile, EC2 metadata).
func (rc RepositoryConfig) DefaultRegion() string {
	if rc.AWSRegion != "" {
		return rc.AWSRegion
	}
	return rc.Region
}

func (rc RepositoryConfig) problems() []problem {
	var ps []problem
	add := func(name, format string, args ...any) {
		ps = append(ps, problem{name, fmt.Sprintf(format, args...)})
	}
	switch rc.TagMutability {
	case "", "MUTABLE", "IMMUTABLE":
	default:
		add("AUTH_CREATE_REPOSITORY_TAG_MUTABILITY", "must be MUTABLE or IMMUTABLE (unset: ECR's default), got %q", rc.TagMutability)
	}
	if !rc.Create {
		return ps // authsvc makes no AWS call: the AWS variables are tokenwriter's business
	}
	// No region here may still be found at start: the shared config file's
	// profile, or on EC2 the instance's own region (errNoRegion otherwise).
	if rc.DefaultRegion() != "" && !validRegion(rc.DefaultRegion()) {
		add("AWS_REGION", "not a region name such as eu-west-1, got %q", rc.DefaultRegion())
	}
	switch {
	case rc.AWSKey != "" && rc.AWSSecret == "":
		add("AWS_SECRET", "required when AWS_KEY is set")
	case rc.AWSKey == "" && rc.AWSSecret != "":
		add("AWS_KEY", "required when AWS_SECRET is set")
	}
	if rc.AWSKey == "" {
		switch {
		case rc.accessKeyID && !rc.secretAccessKey:
			add("AWS_SECRET_ACCESS_KEY", "required when AWS_ACCESS_KEY_ID is set")
		case !rc.accessKeyID && rc.secretAccessKey:
			add("AWS_ACCESS_KEY_ID", "required when AWS_SECRET_ACCESS_KEY is set")
		}
	}
	if rc.EndpointURLECR != "" {
		if u, err := url.Parse(rc.EndpointURLECR); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("AWS_ENDPOINT_URL_ECR", "want an http(s) URL such as https://api.ecr.eu-west-1.amazonaws.com, got %q", rc.EndpointURLECR)
		}
	}
	return ps
}

// validRegion accepts the shape of AWS region names (eu-west-1,
// us-gov-west-1, cn-north-1): lower-case letters and digits joined by dashes.
func validRegion(s string) bool {
	if len(s) > 32 || !strings.Contains(s, "-") || strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-") || strings.Contains(s, "--") {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validRegistryID accepts a 12-digit account id.
func validRegistryID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
