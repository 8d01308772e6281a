package tokenwriter

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// testTokenValue returns a deterministic authorizationToken of exactly n base64
// characters (n a multiple of 4, at least 8) decoding to "AWS:<password>".
func testTokenValue(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, seed))
	password := make([]byte, n/4*3-len("AWS:"))
	for i := range password {
		password[i] = byte(r.UintN(256))
	}
	return base64.StdEncoding.EncodeToString(append([]byte("AWS:"), password...))
}

func authData(token, endpoint string, expiresAt time.Time) types.AuthorizationData {
	return types.AuthorizationData{
		AuthorizationToken: aws.String(token),
		ProxyEndpoint:      aws.String(endpoint),
		ExpiresAt:          aws.Time(expiresAt),
	}
}

// fakeECR answers GetAuthorizationToken with the next of its answers (the last
// one repeats) and records the inputs.
type fakeECR struct {
	mu      sync.Mutex
	answers []fakeAnswer
	answer  func() fakeAnswer // when set, used instead of answers
	inputs  []*ecr.GetAuthorizationTokenInput
}

type fakeAnswer struct {
	data []types.AuthorizationData
	err  error
}

func (f *fakeECR) GetAuthorizationToken(_ context.Context, in *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inputs = append(f.inputs, in)
	var a fakeAnswer
	if f.answer != nil {
		a = f.answer()
	} else {
		a = f.answers[min(len(f.inputs), len(f.answers))-1]
	}
	if a.err != nil {
		return nil, a.err
	}
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: a.data}, nil
}

func (f *fakeECR) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.inputs)
}

type fakeReloader struct {
	mu    sync.Mutex
	err   error
	count int
}

func (f *fakeReloader) Reload(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	return f.err
}

func (f *fakeReloader) reloads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// syncBuffer collects log output written from other goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
