package authsvc

// Warm-cache cost of one /auth request inside the process, against a bare
// handler that answers 204. Run:
//
//	go test -run '^$' -bench . -benchmem ./authsvc

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// benchWriter is a ResponseWriter that keeps nothing, so that the benchmark
// measures the handler rather than httptest.ResponseRecorder.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

func (w *benchWriter) reset() { clear(w.h); w.code = 0 }

func authRequest() *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/auth", nil)
	req.Header.Set("Authorization", basic("alice:alice-secret"))
	req.Header.Set("X-Real-IP", "192.0.2.7")
	req.Header.Set("X-Original-Method", "HEAD")
	req.Header.Set("X-Original-URI", "/v2/team/app/blobs/sha256:0123456789abcdef")
	return req
}

func benchHandler(b *testing.B, h http.Handler, want int) {
	b.Helper()
	req := authRequest()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: http.Header{}}
		for pb.Next() {
			w.reset()
			h.ServeHTTP(w, req)
			if w.code != want {
				b.Errorf("status: got %d; want %d", w.code, want)
				return
			}
		}
	})
}

func warmHandler(b *testing.B, logger *slog.Logger, quietHits bool) http.Handler {
	b.Helper()
	auth := &countingAuth{passwords: map[string]string{"alice": "alice-secret"}}
	h := NewHandlerWith(auth, Options{
		Realm: testRealm, Logger: logger, Metrics: NewMetrics(prometheus.NewRegistry()),
		CacheTTL: time.Hour, CacheSize: 10000, Limits: Limits{PerUserAddr: 10, PerUser: 30, PerAddr: 50, Window: 5 * time.Minute},
		QuietHits: quietHits,
	})
	w := &benchWriter{h: http.Header{}}
	h.ServeHTTP(w, authRequest()) // warm the cache
	if w.code != 204 || auth.calls.Load() != 1 {
		b.Fatalf("warm-up: got %d after %d calls; want 204 after 1", w.code, auth.calls.Load())
	}
	return h
}

// BenchmarkBareHandler is the floor: a handler that answers 204, as the
// reference "bare Go handler" of the nginx measurements.
func BenchmarkBareHandler(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	benchHandler(b, bare, 204)
}

// BenchmarkWarmCache is the whole /auth handler (mux, parse, HMAC, cache,
// metrics, the JSON decision line) with the credentials cached; quiet-hits
// is the same with AUTH_LOG_CACHE_HITS=false.
func BenchmarkWarmCache(b *testing.B) {
	json := slog.New(slog.NewJSONHandler(io.Discard, nil))
	b.Run("json-log", func(b *testing.B) { benchHandler(b, warmHandler(b, json, false), 204) })
	b.Run("quiet-hits", func(b *testing.B) { benchHandler(b, warmHandler(b, json, true), 204) })
}

// BenchmarkCredKey is the HMAC alone.
func BenchmarkCredKey(b *testing.B) {
	k := newKeyer()
	b.ReportAllocs()
	for b.Loop() {
		k.key("alice", "alice-secret")
	}
}

// BenchmarkColdSingleflight: every request has fresh credentials, answered
// by a backend that costs nothing: the overhead of a miss (singleflight
// goroutine, cache insert, limiter).
func BenchmarkColdSingleflight(b *testing.B) {
	auth := authFunc(func(user string) error { return nil })
	h := NewHandlerWith(auth, Options{
		Realm: testRealm, Metrics: NewMetrics(prometheus.NewRegistry()),
		// Fewer entries than distinct credentials, used in a cycle: every request misses.
		CacheTTL: time.Hour, CacheSize: 16, Limits: Limits{PerUserAddr: 10, PerUser: 30, PerAddr: 50, Window: 5 * time.Minute},
	})
	reqs := make([]*http.Request, 1024)
	for i := range reqs {
		reqs[i] = authRequest()
		reqs[i].Header.Set("Authorization", basic("alice:pw-"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))))
	}
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, reqs[i%len(reqs)])
		i++
	}
}
