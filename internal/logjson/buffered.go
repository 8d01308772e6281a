package logjson

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// BufferedWriter batches log lines into few writes: at 30 000 decisions a
// second, one write system call per line is a large share of authsvc's work.
// Lines reach w within FlushInterval, when 64 KiB have gathered, and on Close.
type BufferedWriter struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// FlushInterval is the longest a line waits in the buffer.
const FlushInterval = 100 * time.Millisecond

// NewBufferedWriter starts the flusher; Close stops it and flushes.
func NewBufferedWriter(w io.Writer) *BufferedWriter {
	b := &BufferedWriter{buf: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// Write adds p (one log line, from slog) to the buffer.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *BufferedWriter) loop() {
	defer close(b.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.flush()
		case <-b.stop:
			b.flush()
			return
		}
	}
}

func (b *BufferedWriter) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.buf.Flush()
}

// Close flushes what is left and stops the flusher.
func (b *BufferedWriter) Close() error {
	close(b.stop)
	<-b.done
	return nil
}
