package policy

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	pullOnly = "rules:\n  - {repositories: [\"**\"], actions: [pull], everyone: true}\n"
	pushToo  = "rules:\n  - {repositories: [\"**\"], actions: [pull, push], everyone: true}\n"
	broken   = "rules:\n  - {repositories: [\"**\"], actions: [pusj], everyone: true}\n"
)

// writeFile replaces path atomically and moves its mtime forward, so that a
// change is seen even on a filesystem with a coarse clock.
func writeFile(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOpenRefusesBrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, broken, time.Now())
	_, err := Open(path, time.Second, nil)
	if err == nil || !strings.Contains(err.Error(), path+`:2: rule 1: unknown action "pusj"`) {
		t.Errorf("got %v; want the line of the bad action", err)
	}
}

func TestWatcher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	base := time.Now().Add(-time.Hour)
	writeFile(t, path, pullOnly, base)
	logs := &syncBuffer{}
	w, err := Open(path, 10*time.Millisecond, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var oks, fails atomic.Int32
	w.OnReload = func(err error) {
		if err != nil {
			fails.Add(1)
		} else {
			oks.Add(1)
		}
	}
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx, hup) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	s := subject("anyone")
	actions := func() Actions { return w.Store.Policy().Grant(s, "x").Actions }

	// Readers all the while: none may ever see a missing or broken policy.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var bad atomic.Int32
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if a := actions(); a != Pull && a != Pull|Push {
					bad.Add(1)
				}
			}
		}()
	}

	writeFile(t, path, pushToo, base.Add(time.Minute))
	waitFor(t, "the changed file to load", func() bool { return actions() == Pull|Push })

	writeFile(t, path, broken, base.Add(2*time.Minute))
	waitFor(t, "the broken file to be reported", func() bool { return fails.Load() == 1 })
	if actions() != Pull|Push {
		t.Errorf("after a broken file: got %v; want the old policy's pull, push", actions())
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"policy reload failed; keeping the policy in force"`) ||
		!strings.Contains(logs.String(), `policy.yaml:2: rule 1: unknown action \"pusj\"`) {
		t.Errorf("log lacks the ERROR naming the problem:\n%s", logs)
	}
	time.Sleep(50 * time.Millisecond)
	if fails.Load() != 1 {
		t.Errorf("the same broken file was reported %d times; want once", fails.Load())
	}

	// Same size and content kind, only the mtime moves: a SIGHUP-less edit.
	writeFile(t, path, pullOnly, base.Add(3*time.Minute))
	// Its OnReload too: the policy is in place a moment before the callback
	// runs, and a late count would look like the signal's below.
	waitFor(t, "the fixed file to load", func() bool { return actions() == Pull && oks.Load() == 2 })

	// SIGHUP reloads even when the file looks unchanged (same mtime and size).
	before := oks.Load()
	hup <- os.Interrupt
	waitFor(t, "the signal reload", func() bool { return oks.Load() == before+1 })

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the missing file to be reported", func() bool { return fails.Load() == 2 })
	if actions() != Pull {
		t.Errorf("after the file vanished: got %v; want the old policy's pull", actions())
	}
	close(stop)
	readers.Wait()
	if bad.Load() != 0 {
		t.Errorf("readers saw %d wrong policies", bad.Load())
	}
}
