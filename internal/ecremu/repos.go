package ecremu

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"
)

// repoNamePattern is ECR's rule for repository names.
const repoNamePattern = `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`

const maxRepoNameLen = 256

var repoNameRE = regexp.MustCompile(`^` + repoNamePattern + `$`)

var (
	// ErrInvalidRepositoryName is returned for a name ECR would refuse.
	ErrInvalidRepositoryName = errors.New("ecremu: invalid repository name")
	// ErrRepositoryExists is returned when creating a repository twice.
	ErrRepositoryExists = errors.New("ecremu: repository already exists")
)

func validRepoName(name string) bool {
	return len(name) >= 2 && len(name) <= maxRepoNameLen && repoNameRE.MatchString(name)
}

// repoSet is the set of repositories that exist, with their creation times.
type repoSet struct {
	mu      sync.Mutex
	created map[string]time.Time
}

func newRepoSet() *repoSet {
	return &repoSet{created: make(map[string]time.Time)}
}

func (s *repoSet) create(name string, now time.Time) (time.Time, error) {
	if !validRepoName(name) {
		return time.Time{}, fmt.Errorf("%w: %q", ErrInvalidRepositoryName, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.created[name]; ok {
		return time.Time{}, fmt.Errorf("%w: %q", ErrRepositoryExists, name)
	}
	s.created[name] = now
	return now, nil
}

func (s *repoSet) get(name string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.created[name]
	return t, ok
}

func (s *repoSet) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.created))
	for n := range s.created {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
