package policy

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Store holds the policy in force. Readers never block: a reload swaps the
// pointer, and a request keeps the policy it started with.
type Store struct {
	cur atomic.Pointer[Policy]
}

// NewStore holds p.
func NewStore(p *Policy) *Store {
	s := &Store{}
	s.cur.Store(p)
	return s
}

// Policy is the policy in force.
func (s *Store) Policy() *Policy { return s.cur.Load() }

// Set puts p in force.
func (s *Store) Set(p *Policy) { s.cur.Store(p) }

// Watcher reloads a policy file into a Store when the file changes (its
// modification time or size, polled) and on demand (SIGHUP). A file that
// does not load keeps the policy in force; the problem is logged at ERROR once
// per change of the file.
type Watcher struct {
	Path     string
	Store    *Store
	Interval time.Duration // polling period; <= 0: no polling
	Logger   *slog.Logger
	// OnReload, if set, hears every reload attempt: err is nil when the new
	// policy is in force.
	OnReload func(err error)

	seen stamp // of the file last loaded or tried
}

type stamp struct {
	mod  time.Time
	size int64
	ok   bool // the stat worked
}

func statFile(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{mod: fi.ModTime(), size: fi.Size(), ok: true}, nil
}

// Open loads the file at path into a new Store and returns a Watcher for it,
// or the file's problems.
func Open(path string, interval time.Duration, logger *slog.Logger) (*Watcher, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st, _ := statFile(path) // taken before the read: a change during it is seen next time
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	return &Watcher{Path: path, Store: NewStore(p), Interval: interval, Logger: logger, seen: st}, nil
}

// Reload loads the file now and puts it in force if it is valid; why is
// logged ("signal", "file changed").
func (w *Watcher) Reload(why string) error {
	st, statErr := statFile(w.Path)
	w.seen = st
	p, err := Load(w.Path)
	if err == nil && statErr != nil {
		err = statErr
	}
	if err != nil {
		w.Logger.Error("policy reload failed; keeping the policy in force",
			slog.String("file", w.Path), slog.String("trigger", why), slog.String("error", err.Error()))
	} else {
		w.Store.Set(p)
		w.Logger.Info("policy reloaded", slog.String("file", w.Path), slog.String("trigger", why),
			slog.Int("rules", len(p.Rules)), slog.String("default", p.Default.String()))
	}
	if w.OnReload != nil {
		w.OnReload(err)
	}
	return err
}

// changed reports whether the file differs from the one last loaded or tried.
// A file that cannot be stat'ed counts as changed once.
func (w *Watcher) changed() bool {
	st, err := statFile(w.Path)
	if err != nil {
		return w.seen.ok
	}
	return !w.seen.ok || !st.mod.Equal(w.seen.mod) || st.size != w.seen.size
}

// Run reloads on every value from hup and whenever polling finds the file
// changed, until ctx ends. It returns nil then.
func (w *Watcher) Run(ctx context.Context, hup <-chan os.Signal) error {
	var tick <-chan time.Time
	if w.Interval > 0 {
		t := time.NewTicker(w.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-hup:
			if !ok {
				hup = nil
				continue
			}
			_ = w.Reload("signal")
		case <-tick:
			if w.changed() {
				_ = w.Reload("file changed")
			}
		}
	}
}
