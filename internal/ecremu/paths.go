package ecremu

import (
	"regexp"
)

// resourceKind is what a /v2/<name>/... path addresses.
type resourceKind int

const (
	kindManifest resourceKind = iota + 1
	kindBlob                  // /v2/<name>/blobs/<digest>
	kindUpload                // /v2/<name>/blobs/uploads/[<uuid>]
	kindTags                  // /v2/<name>/tags/list
)

// repoPath is a parsed registry API path that names a repository.
type repoPath struct {
	name      string
	kind      resourceKind
	reference string // tag or digest for manifests, digest for blobs, upload id
}

// repoPathRE follows distribution's routes: the name is matched greedily,
// so the last /manifests/, /blobs/ or /tags/ segment is the resource.
var repoPathRE = regexp.MustCompile(`^/v2/(` + repoNamePattern + `)/(?:` +
	`manifests/([^/]+)|` +
	`blobs/uploads/([^/]*)|` +
	`blobs/([^/]+)|` +
	`(tags/list))$`)

// parseRepoPath parses the URL path of a registry request that addresses a
// repository. It reports false for /v2/, /v2/_catalog and anything else.
func parseRepoPath(path string) (repoPath, bool) {
	m := repoPathRE.FindStringSubmatch(path)
	if m == nil {
		return repoPath{}, false
	}
	p := repoPath{name: m[1]}
	switch {
	case m[2] != "":
		p.kind, p.reference = kindManifest, m[2]
	case m[4] != "" && m[4] != "uploads":
		p.kind, p.reference = kindBlob, m[4]
	case m[5] != "":
		p.kind = kindTags
	default:
		p.kind, p.reference = kindUpload, m[3]
	}
	if len(p.name) > maxRepoNameLen {
		return repoPath{}, false
	}
	return p, true
}
