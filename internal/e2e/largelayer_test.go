package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A large layer streams through the gateway (G7): 2 GiB (E2E_LARGE_LAYER_MB
// overrides) pushed over the plain-HTTP listener, then pulled twice: the ECR
// way, a 307 to "S3" passed through untouched, and with the emulator serving
// blobs itself, so that the whole layer flows back through nginx. Each
// reads the layer to the end and so verifies its digest. All the while
// nginx must not buffer to temp files and nginx's and authsvc's memory must
// stay flat.
func TestLargeLayerStreamsThrough(t *testing.T) {
	sizeMB := envInt(t, "E2E_LARGE_LAYER_MB", 2048)
	alice := user(t, "alice")
	layer := newGenLayer(t, 5, int64(sizeMB)<<20)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(e.httpAddr + "/" + repoName + ":large")
	if err != nil {
		t.Fatal(err)
	}
	opts := e.remoteOpts(alice.Name, alice.Password)

	s := startProcSampler(t)
	start := time.Now()
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push: %v", err)
	}
	pushTime := time.Since(start)

	s3Before, _ := e.emu.S3Requests()
	start = time.Now()
	pullLayer(t, ref, layer.digest, opts)
	pullS3Time := time.Since(start)
	if s3, _ := e.emu.S3Requests(); s3 == s3Before {
		t.Errorf("pull the ECR way: got no S3 request; want the layer fetched from S3 after ECR's 307")
	}

	e.emu.ServeBlobsDirectly(true)
	t.Cleanup(func() { e.emu.ServeBlobsDirectly(false) })
	s3Before, _ = e.emu.S3Requests()
	start = time.Now()
	pullLayer(t, ref, layer.digest, opts)
	pullDirectTime := time.Since(start)
	e.emu.ServeBlobsDirectly(false)
	if s3, _ := e.emu.S3Requests(); s3 != s3Before {
		t.Errorf("pull through nginx: got %d S3 requests; want none (the layer comes through the gateway)", s3-s3Before)
	}
	m := s.stop()

	t.Logf("%d MiB: push %s (%.0f MB/s), pull via S3 %s (%.0f MB/s), pull through nginx %s (%.0f MB/s)", sizeMB,
		pushTime.Round(time.Millisecond), mbps(layer.size, pushTime),
		pullS3Time.Round(time.Millisecond), mbps(layer.size, pullS3Time),
		pullDirectTime.Round(time.Millisecond), mbps(layer.size, pullDirectTime))
	t.Logf("%s", m)
	m.assertFlat(t, 64<<10)
	assertNoForeignCredentials(t)
}

// pullLayer pulls ref's image and reads its one layer to the end; reading
// verifies the layer's digest.
func pullLayer(t *testing.T, ref name.Reference, want v1.Hash, opts []remote.Option) {
	t.Helper()
	pulled, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	layers, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("layers: got %d; want 1", len(layers))
	}
	if got, _ := layers[0].Digest(); got != want {
		t.Fatalf("layer digest in the manifest: got %s; want %s", got, want)
	}
	rc, err := layers[0].Compressed() // verifies the digest as it reads
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("pull layer %s: %v", want, err)
	}
}

// genLayer is an uncompressed layer of pseudo-random bytes (ChaCha8 from a
// seed), generated afresh on every read so that no copy of it is held in
// memory or on disk by the test. Its digest takes one pass to compute.
type genLayer struct {
	seed   [32]byte
	size   int64
	digest v1.Hash
}

var _ v1.Layer = (*genLayer)(nil)

func newGenLayer(t *testing.T, seed uint64, size int64) *genLayer {
	t.Helper()
	l := &genLayer{size: size}
	binary.LittleEndian.PutUint64(l.seed[:], seed)
	h := sha256.New()
	if _, err := io.Copy(h, l.open()); err != nil {
		t.Fatal(err)
	}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
	return l
}

func (l *genLayer) open() io.ReadCloser {
	return io.NopCloser(io.LimitReader(rand.NewChaCha8(l.seed), l.size))
}

func (l *genLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *genLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *genLayer) Compressed() (io.ReadCloser, error)   { return l.open(), nil }
func (l *genLayer) Uncompressed() (io.ReadCloser, error) { return l.open(), nil }
func (l *genLayer) Size() (int64, error)                 { return l.size, nil }
func (l *genLayer) MediaType() (types.MediaType, error)  { return types.DockerUncompressedLayer, nil }

// procSampler records, every 100 ms, the resident memory of nginx's workers
// (all generations: tokenwriter reloads nginx every few seconds and an old
// worker finishes the upload it holds), of authsvc and of this test process,
// and every file a worker holds open under the run directory's temp/. nginx
// unlinks its temp files as soon as it creates them, so the directory alone
// would not show them; the worker's open descriptors do.
type procSampler struct {
	done    chan struct{}
	stopped chan struct{}
	m       memFigures
}

// memFigures are resident set sizes in KiB: at the start, and the peak.
type memFigures struct {
	samples               int
	nginxStart, nginxPeak int64 // the largest worker
	authStart, authPeak   int64
	selfStart, selfPeak   int64
	tempOpen              []string
	tempFiles             []string
	nginxWorkersSeen      int
	fdListings            int // worker descriptor tables read
}

func startProcSampler(t *testing.T) *procSampler {
	t.Helper()
	s := &procSampler{done: make(chan struct{}), stopped: make(chan struct{})}
	master := nginxPID(t)
	gateway := e.gateway.Process.Pid
	tempDir := filepath.Join(e.runDir, "temp")
	seenWorkers := map[int]bool{}
	sample := func(first bool) {
		procs := processes()
		var worker, auth int64
		for _, p := range procs {
			switch {
			case p.ppid == master:
				seenWorkers[p.pid] = true
				worker = max(worker, rssKiB(p.pid))
				open, ok := openUnder(p.pid, tempDir)
				if ok {
					s.m.fdListings++
				}
				for _, fd := range open {
					s.m.tempOpen = append(s.m.tempOpen, fmt.Sprintf("worker %d: %s", p.pid, fd))
				}
			case p.ppid == gateway && p.comm == "authsvc":
				auth = rssKiB(p.pid)
			}
		}
		self := rssKiB(os.Getpid())
		if first {
			s.m.nginxStart, s.m.authStart, s.m.selfStart = worker, auth, self
		}
		s.m.nginxPeak = max(s.m.nginxPeak, worker)
		s.m.authPeak = max(s.m.authPeak, auth)
		s.m.selfPeak = max(s.m.selfPeak, self)
		s.m.samples++
		s.m.nginxWorkersSeen = len(seenWorkers)
	}
	sample(true)
	go func() {
		defer close(s.stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				sample(false)
				_ = filepath.WalkDir(tempDir, func(path string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						s.m.tempFiles = append(s.m.tempFiles, path)
					}
					return nil
				})
				return
			case <-tick.C:
				sample(false)
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-s.stopped:
		default:
			s.stop()
		}
	})
	return s
}

func (s *procSampler) stop() memFigures {
	close(s.done)
	<-s.stopped
	return s.m
}

func (m memFigures) String() string {
	return fmt.Sprintf("RSS (MiB, start → peak): nginx worker %.1f → %.1f (%d workers seen), authsvc %.1f → %.1f, test process %.1f → %.1f; %d samples",
		kib(m.nginxStart), kib(m.nginxPeak), m.nginxWorkersSeen, kib(m.authStart), kib(m.authPeak), kib(m.selfStart), kib(m.selfPeak), m.samples)
}

// assertFlat fails when nginx or authsvc grew by bound KiB or more, or when
// nginx buffered anything to its temp paths.
func (m memFigures) assertFlat(t *testing.T, bound int64) {
	t.Helper()
	if m.nginxStart == 0 || m.authStart == 0 || m.fdListings == 0 {
		t.Fatalf("nginx worker RSS %d KiB, authsvc RSS %d KiB, %d worker descriptor tables read: nothing was measured",
			m.nginxStart, m.authStart, m.fdListings)
	}
	if g := m.nginxPeak - m.nginxStart; g >= bound {
		t.Errorf("nginx worker RSS grew by %.1f MiB; want under %.0f MiB (streaming, no buffering)", kib(g), kib(bound))
	}
	if g := m.authPeak - m.authStart; g >= bound {
		t.Errorf("authsvc RSS grew by %.1f MiB; want under %.0f MiB", kib(g), kib(bound))
	}
	if len(m.tempOpen) != 0 {
		t.Errorf("nginx held %d temp files open; want none: %q", len(m.tempOpen), m.tempOpen[:min(len(m.tempOpen), 5)])
	}
	if len(m.tempFiles) != 0 {
		t.Errorf("files in nginx's temp paths: got %q; want none", m.tempFiles)
	}
}

type proc struct {
	pid, ppid int
	comm      string
}

// processes lists every process with its parent, from /proc/*/stat.
func processes() []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out = append(out, proc{pid: pid, ppid: ppid, comm: s[open+1 : end]})
	}
	return out
}

// rssKiB is a process's VmRSS in KiB, 0 when it is gone.
func rssKiB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// openUnder lists the files process pid holds open below dir, deleted or
// not; ok is false when its descriptor table could not be read.
func openUnder(pid int, dir string) (out []string, ok bool) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, false
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			out = append(out, target)
		}
	}
	return out, true
}

func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s: got %q; want a positive integer", key, v)
	}
	return n
}

func kib(n int64) float64 { return float64(n) / 1024 }

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }
