package deploy

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestMakeImages: `make images` builds exactly the images tested here, with
// the VERSION build arg their labels use.
func TestMakeImages(t *testing.T) {
	mk := readFile(t, "../Makefile")
	m := regexp.MustCompile(`(?m)^IMAGES := (.+)$`).FindStringSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: no IMAGES := line")
	}
	var want []string
	for _, img := range images {
		want = append(want, strings.TrimSuffix(img.file, ".Dockerfile"))
	}
	got := strings.Fields(m[1])
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Makefile IMAGES got %v; want %v", got, want)
	}
	if !strings.Contains(mk, "docker build -f deploy/$$x.Dockerfile --build-arg VERSION=$(VERSION)") {
		t.Error("Makefile images: want docker build -f deploy/<x>.Dockerfile --build-arg VERSION=$(VERSION)")
	}
	if !regexp.MustCompile(`(?m)^images:`).MatchString(mk) {
		t.Error("Makefile: no images target")
	}
}
