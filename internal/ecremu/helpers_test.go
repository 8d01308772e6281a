package ecremu_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

const (
	testAccessKey = "AKIDEXAMPLE"
	testSecret    = "test-secret"
	testRegion    = "eu-west-1"
)

// startRegistry runs a real docker-registry for the test.
func startRegistry(t *testing.T) *ecremu.Registry {
	t.Helper()
	if _, err := os.Stat(ecremu.RegistryBinary); err != nil {
		t.Skipf("docker-registry not installed: %v", err)
	}
	reg, err := ecremu.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Stop() })
	return reg
}

// startEmulator starts an emulator with test credentials; cfg.Backend must
// be set unless the test never reaches the backend.
func startEmulator(t *testing.T, cfg ecremu.Config) *ecremu.Emulator {
	t.Helper()
	if cfg.Backend == "" {
		cfg.Backend = "http://127.0.0.1:1"
	}
	if cfg.AccessKeyID == "" {
		cfg.AccessKeyID, cfg.SecretAccessKey = testAccessKey, testSecret
	}
	if cfg.Region == "" {
		cfg.Region = testRegion
	}
	e, err := ecremu.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

// ecrClient is the real SDK client aimed at the emulator, retrying without
// backoff so failure-injection tests stay fast.
func ecrClient(t *testing.T, e *ecremu.Emulator, accessKey, secret, region string) *ecr.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(t.Context(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secret, "")),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(e.APIURL()) })
}

// apiErrorCode returns the AWS error code of err, or "" if it has none.
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// fetchToken gets a token through the real SDK and returns its password.
func fetchToken(t *testing.T, e *ecremu.Emulator) (password string) {
	t.Helper()
	out, err := ecrClient(t, e, testAccessKey, testSecret, testRegion).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	_, password, ok := decodeToken(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if !ok {
		t.Fatal("token does not decode to AWS:<password>")
	}
	return password
}

// frontClient trusts the emulator's CA and does not follow redirects.
func frontClient(e *ecremu.Emulator) *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: e.CA().ClientTLSConfig()},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 30 * time.Second,
	}
}

func frontRequest(t *testing.T, e *ecremu.Emulator, method, path, authorization string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.WithoutCancel(t.Context()), method, "https://"+e.RegistryHost()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := frontClient(e).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
