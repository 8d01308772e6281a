package logjson

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDurationsAreReadable(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo).Info("x", "cache_ttl", 5*time.Minute, "n", 3)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if got := line["cache_ttl"]; got != "5m0s" {
		t.Errorf("cache_ttl: got %v; want \"5m0s\"", got)
	}
	if got := line["n"]; got != float64(3) {
		t.Errorf("n: got %v; want 3", got)
	}
}

func TestBufferedWriterDeliversEveryLine(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := NewBufferedWriter(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}))
	log := New(w, slog.LevelInfo)
	log.Info("first")
	time.Sleep(3 * FlushInterval)
	mu.Lock()
	got := out.String()
	mu.Unlock()
	if !strings.Contains(got, `"msg":"first"`) {
		t.Errorf("after %s: got %q; want the line flushed", 3*FlushInterval, got)
	}
	for i := range 1000 {
		log.Info("line", "i", i)
	}
	w.Close()
	if n := strings.Count(out.String(), `"msg":"line"`); n != 1000 {
		t.Errorf("after Close: got %d lines; want 1000", n)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
