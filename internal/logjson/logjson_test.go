package logjson

import (
	"bytes"
	"encoding/json"
	"log/slog"
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
