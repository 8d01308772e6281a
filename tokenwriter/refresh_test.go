package tokenwriter

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
)

const testEndpoint = "https://123456789012.dkr.ecr.eu-west-3.amazonaws.com"

// testConfig writes the include to a directory that does not exist yet and
// "tests" it with test, a shell script body.
func testConfig(t *testing.T, test string) Config {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "nginx-t.sh")
	if err := os.WriteFile(script, []byte(test), 0o755); err != nil {
		t.Fatal(err)
	}
	return Config{
		AWSRegion:        "eu-west-3",
		TokenFile:        filepath.Join(dir, "ecr", "ecr.conf"),
		TokenFileMode:    0o600,
		RefreshInterval:  6 * time.Hour,
		ExpiryMargin:     time.Hour,
		RetryMin:         10 * time.Millisecond,
		RetryMax:         40 * time.Millisecond,
		CallTimeout:      time.Second,
		NginxTestCommand: "sh " + script,
	}
}

const (
	nginxOK = "exit 0\n"
	// nginxChecksFile passes only if the include written is complete when tested.
	nginxChecksFile = "grep -q 'ecr_authorization { default \"Basic $ecr_token_0$ecr_token_1$ecr_token_2\"; }' \"$(dirname \"$0\")/ecr/ecr.conf\"\n"
	nginxFails      = "echo 'nginx: [emerg] unknown \"ecr_authorization\" variable' >&2\nexit 1\n"
)

func TestRefreshWritesTestsAndReloads(t *testing.T) {
	cfg := testConfig(t, nginxChecksFile)
	value := testTokenValue(8192, 7)
	expires := time.Now().Add(12 * time.Hour)
	api := &fakeECR{answers: []fakeAnswer{{data: []types.AuthorizationData{authData(value, testEndpoint, expires)}}}}
	rl := &fakeReloader{}

	r := NewRefresher(api, rl, cfg, discardLogger())
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	tok := r.state.current()
	if string(tok.Value) != value || !tok.ExpiresAt.Equal(expires) {
		t.Errorf("got token of %d chars expiring %s; want %d chars expiring %s", len(tok.Value), tok.ExpiresAt, len(value), expires)
	}
	got, err := os.ReadFile(cfg.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := Render(tok); !bytes.Equal(got, want) {
		t.Errorf("include is\n%s\nwant\n%s", got, want)
	}
	fi, err := os.Stat(cfg.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %v; want 0600", fi.Mode().Perm())
	}
	if n := rl.reloads(); n != 1 {
		t.Errorf("got %d reloads; want 1", n)
	}
	entries, _ := os.ReadDir(filepath.Dir(cfg.TokenFile))
	if len(entries) != 2 || entries[0].Name() != filepath.Base(cfg.TokenFile) || entries[1].Name() != filepath.Base(savedFile(cfg.TokenFile)) {
		t.Errorf("got files %v next to the include; want only the include and its saved tokens", entries)
	}
	if fi, err := os.Stat(savedFile(cfg.TokenFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("saved tokens: %v, %v; want mode 0600 like the include", fi, err)
	}
	if ids := api.inputs[0].RegistryIds; ids != nil {
		t.Errorf("got registryIds %v; want none without ECR_REGISTRY_ID", ids)
	}
}

func TestRefreshSendsRegistryID(t *testing.T) {
	cfg := testConfig(t, nginxOK)
	cfg.RegistryID = "123456789012"
	cfg.TokenFileMode = 0o640
	api := &fakeECR{answers: []fakeAnswer{{data: []types.AuthorizationData{authData(testTokenValue(64, 1), testEndpoint, time.Now().Add(time.Hour))}}}}
	if err := NewRefresher(api, nil, cfg, discardLogger()).Refresh(context.Background()); err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	if ids := api.inputs[0].RegistryIds; len(ids) != 1 || ids[0] != "123456789012" {
		t.Errorf("got registryIds %v; want [123456789012]", ids)
	}
	if fi, err := os.Stat(cfg.TokenFile); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("got %v, %v; want mode 0640", fi.Mode(), err)
	}
}

func TestRefreshFailureKeepsPreviousInclude(t *testing.T) {
	good := []types.AuthorizationData{authData(testTokenValue(6400, 3), testEndpoint, time.Now().Add(12*time.Hour))}
	bad := func(token string) []types.AuthorizationData {
		return []types.AuthorizationData{authData(token, testEndpoint, time.Now().Add(12*time.Hour))}
	}
	for _, tc := range []struct {
		name      string
		answer    fakeAnswer
		nginx     string
		reloadErr error
		wantIs    error
		wantText  string
		reloads   int
	}{
		{name: "ecr error", answer: fakeAnswer{err: errors.New("ThrottlingException: rate exceeded")}, nginx: nginxOK, wantText: "ThrottlingException"},
		{name: "malformed token", answer: fakeAnswer{data: bad("QVdTOnA=\"; }")}, nginx: nginxOK, wantIs: ErrInvalidToken},
		{name: "empty token", answer: fakeAnswer{data: bad("")}, nginx: nginxOK, wantIs: ErrInvalidToken},
		{name: "expired token", answer: fakeAnswer{data: []types.AuthorizationData{authData(testTokenValue(64, 1), testEndpoint, time.Now().Add(-time.Second))}}, nginx: nginxOK, wantIs: ErrInvalidToken},
		{name: "nginx -t fails", answer: fakeAnswer{data: good}, nginx: nginxFails, wantIs: ErrNginxTest, wantText: `unknown "ecr_authorization" variable`},
		{name: "reload fails", answer: fakeAnswer{data: good}, nginx: nginxOK, reloadErr: ErrNotRunning, wantIs: ErrNotRunning, reloads: 1},
	} {
		for _, existed := range []bool{true, false} {
			t.Run(tc.name+"/previous="+strconv.FormatBool(existed), func(t *testing.T) {
				cfg := testConfig(t, tc.nginx)
				previous := []byte("# previous include\nmap \"\" $ecr_authorization { default \"Basic b2xk\"; }\n")
				if existed {
					if err := os.MkdirAll(filepath.Dir(cfg.TokenFile), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(cfg.TokenFile, previous, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				rl := &fakeReloader{err: tc.reloadErr}
				api := &fakeECR{answers: []fakeAnswer{tc.answer}}

				err := NewRefresher(api, rl, cfg, discardLogger()).Refresh(context.Background())
				if err == nil {
					t.Fatal("got no error; want one")
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("got %v; want an error wrapping %v", err, tc.wantIs)
				}
				if !strings.Contains(err.Error(), tc.wantText) {
					t.Errorf("got %q; want it to contain %q", err, tc.wantText)
				}
				got, rerr := os.ReadFile(cfg.TokenFile)
				switch {
				case existed && !bytes.Equal(got, previous):
					t.Errorf("include is now\n%.300s\nwant it unchanged:\n%s", got, previous)
				case !existed && !errors.Is(rerr, os.ErrNotExist):
					t.Errorf("include exists (%.100q, %v); want none as before", got, rerr)
				}
				if n := rl.reloads(); n != tc.reloads {
					t.Errorf("got %d reloads; want %d", n, tc.reloads)
				}
				if entries, _ := os.ReadDir(filepath.Dir(cfg.TokenFile)); len(entries) > 1 {
					t.Errorf("got %v next to the include; want no temporary files left", entries)
				}
			})
		}
	}
}

func TestLoopRefreshesShortLivedTokens(t *testing.T) {
	cfg := testConfig(t, nginxOK)
	const life = 200 * time.Millisecond // margin 1h is longer: refresh at half life
	var mu sync.Mutex
	var calls []time.Time
	api := &fakeECR{answer: func() fakeAnswer {
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()
		return fakeAnswer{data: []types.AuthorizationData{authData(testTokenValue(64, 1), testEndpoint, time.Now().Add(life))}}
	}}
	rl := &fakeReloader{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewRefresher(api, rl, cfg, discardLogger()).Loop(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for rl.reloads() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("got error %v; want nil after ctx is done", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) < 4 {
		t.Fatalf("got %d refreshes in 10s of %s tokens; want one per half life", len(calls), life)
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < life/2-10*time.Millisecond {
			t.Errorf("refresh %d came %s after the previous; want at least half the %s life", i, gap, life)
		}
	}
}

func TestLoopRetriesAfterFailure(t *testing.T) {
	cfg := testConfig(t, nginxOK)
	api := &fakeECR{answers: []fakeAnswer{
		{err: errors.New("500 internal error")},
		{err: errors.New("500 internal error")},
		{data: []types.AuthorizationData{authData(testTokenValue(64, 1), testEndpoint, time.Now().Add(12*time.Hour))}},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := NewRefresher(api, nil, cfg, discardLogger()).Loop(ctx); err != nil {
		t.Fatalf("got error %v; want nil after ctx is done", err)
	}
	// Two backoffs of 10-20 ms, then the next refresh is hours away.
	if n := api.calls(); n != 3 {
		t.Errorf("got %d calls; want 3", n)
	}
	if _, err := os.Stat(cfg.TokenFile); err != nil {
		t.Errorf("got %v; want the include written", err)
	}
}

func TestOnce(t *testing.T) {
	okData := []types.AuthorizationData{authData(testTokenValue(64, 1), testEndpoint, time.Now().Add(time.Hour))}
	for _, tc := range []struct {
		name     string
		answers  []fakeAnswer
		reloader Reloader
		wantErr  string
		minCalls int
	}{
		{"succeeds after retries", []fakeAnswer{{err: errors.New("throttled")}, {err: errors.New("throttled")}, {data: okData}}, nil, "", 3},
		{"gives up at the deadline", []fakeAnswer{{err: errors.New("throttled")}}, nil, "throttled", 3},
		{"nginx not started yet", []fakeAnswer{{data: okData}}, NginxReloader{PIDFile: "/nonexistent/nginx.pid"}, "", 1},
		{"reload command fails", []fakeAnswer{{data: okData}}, NginxReloader{Command: []string{"false"}}, "reload nginx", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, nginxOK)
			api := &fakeECR{answers: tc.answers}
			r := NewRefresher(api, tc.reloader, cfg, discardLogger())
			if r.reloader != nil {
				r.reloader = skipIfStopped{next: r.reloader, log: discardLogger()}
			}
			err := r.Once(context.Background(), time.Second)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got error %v; want one containing %q", err, tc.wantErr)
			}
			if n := api.calls(); n < tc.minCalls {
				t.Errorf("got %d calls; want at least %d", n, tc.minCalls)
			}
			_, serr := os.Stat(cfg.TokenFile)
			if written := serr == nil; written != (tc.wantErr == "") {
				t.Errorf("include written: %v; want %v", written, tc.wantErr == "")
			}
		})
	}
}

// Wrong credentials are not retried: -once answers at once instead of after
// minutes of backoff.
func TestOnceStopsOnPermanentAWSError(t *testing.T) {
	cfg := testConfig(t, nginxOK)
	api := &fakeECR{answers: []fakeAnswer{{err: &smithy.GenericAPIError{Code: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}}}}
	r := NewRefresher(api, nil, cfg, discardLogger())
	err := r.Once(context.Background(), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Fatalf("got error %v; want the UnrecognizedClientException", err)
	}
	if n := api.calls(); n != 1 {
		t.Errorf("got %d calls; want 1 (no retry of wrong credentials)", n)
	}
}

func TestNginxReloader(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "nginx.pid")

	t.Run("SIGHUP to the pid", func(t *testing.T) {
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
		if err := (NginxReloader{PIDFile: pidFile}).Reload(context.Background()); err != nil {
			t.Fatalf("got error %v; want none", err)
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGHUP {
			t.Errorf("sleep ended with %v; want killed by SIGHUP", err)
		}
	})
	t.Run("process gone", func(t *testing.T) {
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
		if err := (NginxReloader{PIDFile: pidFile}).Reload(context.Background()); !errors.Is(err, ErrNotRunning) {
			t.Errorf("got %v; want ErrNotRunning", err)
		}
	})
	t.Run("pid file missing", func(t *testing.T) {
		err := NginxReloader{PIDFile: filepath.Join(dir, "none.pid"), Command: []string{"true"}}.Reload(context.Background())
		if !errors.Is(err, ErrNotRunning) {
			t.Errorf("got %v; want ErrNotRunning", err)
		}
	})
	t.Run("pid file names tokenwriter", func(t *testing.T) {
		os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644)
		if err := (NginxReloader{PIDFile: pidFile}).Reload(context.Background()); !errors.Is(err, ErrNotRunning) {
			t.Errorf("got %v; want ErrNotRunning", err)
		}
	})
	t.Run("pid file empty", func(t *testing.T) {
		os.WriteFile(pidFile, nil, 0o644)
		if err := (NginxReloader{PIDFile: pidFile}).Reload(context.Background()); !errors.Is(err, ErrNotRunning) {
			t.Errorf("got %v; want ErrNotRunning", err)
		}
	})
	t.Run("command", func(t *testing.T) {
		if err := (NginxReloader{Command: []string{"true"}}).Reload(context.Background()); err != nil {
			t.Errorf("got %v; want none", err)
		}
		err := NginxReloader{Command: []string{"sh", "-c", "echo 'nginx: [error] invalid PID number' >&2; exit 1"}}.Reload(context.Background())
		if err == nil || !strings.Contains(err.Error(), "invalid PID number") {
			t.Errorf("got %v; want the command's stderr", err)
		}
	})
}
