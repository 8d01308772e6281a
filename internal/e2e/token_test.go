package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
	"github.com/toanc/aws-ecr-ldap/internal/gateway"
)

// G1: tokens of 6, 8 and 16 KB load into nginx and reach ECR exactly (the
// emulator accepts only the exact tokens it issued).
func TestLargeTokensLoad(t *testing.T) {
	alice := user(t, "alice")
	defer e.emu.SetTokenSize(6400)
	for _, size := range []int{6 << 10, 8 << 10, 16 << 10} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			e.emu.SetTokenSize(size)
			waitFor(t, 30*time.Second, "a token of the new size in the include", func() bool {
				return len(e.currentToken(t)) == size
			})
			// nginx reloads after writing; give the new workers a moment.
			waitFor(t, 10*time.Second, "a 200 with the new token", func() bool {
				return e.do(t, http.MethodGet, "/v2/"+repoName+"/tags/list", basic(alice.Name, alice.Password)).status == http.StatusOK
			})
		})
	}
	assertNoForeignCredentials(t)
}

// G3: when ECR's API fails at refresh time, the previous token stays and keeps
// working; refreshes resume when ECR recovers.
func TestFailedRefreshKeepsOldToken(t *testing.T) {
	alice := user(t, "alice")
	failTokenCallsSettled(t, 1000)
	before := e.currentToken(t)
	calls := e.emu.TokenCalls()
	waitFor(t, 30*time.Second, "refresh attempts against a failing ECR", func() bool {
		return e.emu.TokenCalls() >= calls+4
	})
	if got := e.currentToken(t); got != before {
		t.Errorf("token file changed while ECR was failing")
	}
	if a := e.do(t, http.MethodGet, "/v2/", basic(alice.Name, alice.Password)); a.status != http.StatusOK {
		t.Errorf("GET /v2/ during failed refreshes: got %d; want 200", a.status)
	}
	e.emu.FailTokenCalls(0, ecremu.InternalError)
	waitFor(t, 30*time.Second, "a new token after ECR recovered", func() bool {
		return e.currentToken(t) != before
	})
}

// G2: an empty or truncated include is refused by nginx; the running
// configuration keeps serving and the user's credentials never go upstream.
func TestBrokenIncludeFailsClosed(t *testing.T) {
	alice := user(t, "alice")
	// Keep tokenwriter from replacing the broken file under the test: its
	// refreshes fail while ECR's API does, and a failed refresh writes nothing.
	failTokenCallsSettled(t, 1_000_000)
	defer e.emu.FailTokenCalls(0, ecremu.InternalError)
	good, err := os.ReadFile(e.tokenFile())
	if err != nil {
		t.Fatal(err)
	}
	confDir := filepath.Join(e.runDir, "conf")
	for _, broken := range []struct{ name, body string }{
		{"empty", ""},
		{"truncated at a line", string(good[:strings.LastIndex(strings.TrimRight(string(good), "\n"), "\n")+1])},
		{"truncated mid-line", string(good[:len(good)/2])},
	} {
		t.Run(broken.name, func(t *testing.T) {
			if err := os.WriteFile(e.tokenFile(), []byte(broken.body), 0o600); err != nil {
				t.Fatal(err)
			}
			argv := gateway.NginxTestCommand(confDir)
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err == nil {
				t.Errorf("nginx -t accepted the %s include; want it refused\n%s", broken.name, out)
			}
			pid, err := os.ReadFile(filepath.Join(e.runDir, "nginx.pid"))
			if err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
			if err := syscall.Kill(n, syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if a := e.do(t, http.MethodGet, "/v2/", basic(alice.Name, alice.Password)); a.status != http.StatusOK {
				t.Errorf("GET /v2/ after a reload with a broken include: got %d; want 200 from the old configuration", a.status)
			}
		})
	}
	// Once ECR answers again, tokenwriter's next refresh puts a good file back.
	e.emu.FailTokenCalls(0, ecremu.InternalError)
	waitFor(t, 30*time.Second, "tokenwriter to rewrite the include", func() bool {
		return len(e.currentToken(t)) > 0
	})
	assertNoForeignCredentials(t)
}

// failTokenCallsSettled makes the next n token calls fail and returns once
// tokenwriter can no longer write the include: a refresh that fetched its
// tokens just before may still install them, so it waits for two failed calls
// (tokenwriter's refreshes run one after another: by the second, that install
// is done).
func failTokenCallsSettled(t *testing.T, n int) {
	t.Helper()
	mark := len(e.emu.TokenCallLog())
	e.emu.FailTokenCalls(n, ecremu.InternalError)
	waitFor(t, 30*time.Second, "two failed token calls", func() bool {
		failed := 0
		for _, c := range e.emu.TokenCallLog()[mark:] {
			if c.Failed {
				failed++
			}
		}
		return failed >= 2
	})
}
