package regpath

import (
	"errors"
	"net/url"
	"strings"
)

// Action is what a request does, as the policy sees it.
type Action string

// The actions. Login is GET /v2/, allowed to any authenticated user.
const (
	ActionLogin   Action = "login"
	ActionCatalog Action = "catalog"
	ActionPull    Action = "pull"
	ActionPush    Action = "push"
	ActionDelete  Action = "delete"
)

// Endpoint is the registry API route a request addresses.
type Endpoint uint8

// The routes of the distribution API that the gateway passes on.
const (
	EndpointBase        Endpoint = iota + 1 // /v2/
	EndpointCatalog                         // /v2/_catalog
	EndpointManifest                        // /v2/<name>/manifests/<reference>
	EndpointBlob                            // /v2/<name>/blobs/<digest>
	EndpointUploadStart                     // /v2/<name>/blobs/uploads/
	EndpointUpload                          // /v2/<name>/blobs/uploads/<id>
	EndpointTags                            // /v2/<name>/tags/list
	EndpointReferrers                       // /v2/<name>/referrers/<digest>
)

// Request is what one registry request does.
type Request struct {
	Action     Action
	Repository string // "" for login and catalog
	// Reference is the tag or digest of a manifest, the digest of a blob or
	// referrers request, the digest of a mount, or the digest that completes
	// an upload (PUT ...?digest=); "" otherwise.
	Reference string
	// MountFrom is the repository a cross-repository blob mount
	// (POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>) reads,
	// which needs pull on it as well as push on Repository.
	MountFrom string
	Endpoint  Endpoint
	Upload    string // the upload session id of EndpointUpload
}

// ErrUnsupported is every refusal of Parse: a path or method outside the
// registry API the gateway passes on, or one that is not in canonical form.
var ErrUnsupported = errors.New("unsupported registry request")

// Longest accepted raw URI; a registry URI is far shorter.
const maxURI = 4096

// Grammar limits of the distribution specification.
const (
	MaxRepository = 255
	maxTag        = 128
	maxDigest     = 256
	maxUpload     = 256
)

// refusal is one reason Parse refuses a request. Its values are constants,
// so that refusing allocates nothing (authsvc parses for its audit line even
// without a policy).
type refusal string

func (r refusal) Error() string { return ErrUnsupported.Error() + ": " + string(r) }
func (r refusal) Unwrap() error { return ErrUnsupported }

// Parse reads the method and the raw request URI (nginx's $request_uri: path
// and query, still percent-encoded). Every error wraps ErrUnsupported and does
// not repeat the URI.
func Parse(method, rawURI string) (Request, error) {
	if len(rawURI) > maxURI {
		return Request{}, refusal("uri longer than 4096 bytes")
	}
	path, query, _ := strings.Cut(rawURI, "?")
	for i := 0; i < len(rawURI); i++ {
		if c := rawURI[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return Request{}, refusal("uri contains a control, space, non-ASCII or '#' byte")
		}
	}
	if err := checkPath(path); err != nil {
		return Request{}, err
	}
	r, err := route(path[len("/v2/"):])
	if err != nil {
		return Request{}, err
	}
	if r.Action, err = action(method, r.Endpoint); err != nil {
		return Request{}, err
	}
	if err := r.readQuery(query); err != nil {
		return Request{}, err
	}
	return r, nil
}

// checkPath refuses every form that a server could read as another path.
func checkPath(path string) error {
	if !strings.HasPrefix(path, "/v2/") {
		return refusal("path does not start with /v2/")
	}
	switch {
	case strings.IndexByte(path, '%') >= 0:
		return refusal("path contains percent-encoding")
	case strings.IndexByte(path, '\\') >= 0:
		return refusal(`path contains '\'`)
	case strings.Contains(path, "//"):
		return refusal("path contains '//'")
	case strings.Contains(path, ".."):
		return refusal("path contains '..'")
	}
	return nil
}

// route reads the path after /v2/. The route is told by the path's last
// components, so a repository may itself contain "manifests" or "blobs".
func route(rest string) (Request, error) {
	switch rest {
	case "":
		return Request{Endpoint: EndpointBase}, nil
	case "_catalog":
		return Request{Endpoint: EndpointCatalog}, nil
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return named(Request{Endpoint: EndpointTags}, name)
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads/"); ok {
		return named(Request{Endpoint: EndpointUploadStart}, name)
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return Request{}, refusal("no registry route")
	}
	head, last := rest[:i], rest[i+1:]
	j := strings.LastIndexByte(head, '/')
	if j < 0 {
		return Request{}, refusal("no registry route")
	}
	name, kind := head[:j], head[j+1:]
	switch kind {
	case "manifests":
		if !ValidTag(last) && !ValidDigest(last) {
			return Request{}, refusal("manifest reference is neither a tag nor a digest")
		}
		return named(Request{Endpoint: EndpointManifest, Reference: last}, name)
	case "blobs":
		if !ValidDigest(last) {
			return Request{}, refusal("blob reference is not a digest")
		}
		return named(Request{Endpoint: EndpointBlob, Reference: last}, name)
	case "referrers":
		if !ValidDigest(last) {
			return Request{}, refusal("referrers reference is not a digest")
		}
		return named(Request{Endpoint: EndpointReferrers, Reference: last}, name)
	case "uploads":
		name, ok := strings.CutSuffix(name, "/blobs")
		if !ok {
			return Request{}, refusal("no registry route")
		}
		if !validUpload(last) {
			return Request{}, refusal("bad upload id")
		}
		return named(Request{Endpoint: EndpointUpload, Upload: last}, name)
	}
	return Request{}, refusal("no registry route")
}

func named(r Request, name string) (Request, error) {
	if !ValidRepository(name) {
		return Request{}, refusal("repository name outside the distribution grammar")
	}
	r.Repository = name
	return r, nil
}

// action maps method and route to an action; unknown pairs are refused.
func action(method string, e Endpoint) (Action, error) {
	read := method == "GET" || method == "HEAD"
	switch e {
	case EndpointBase:
		if read {
			return ActionLogin, nil
		}
	case EndpointCatalog:
		if read {
			return ActionCatalog, nil
		}
	case EndpointManifest:
		switch {
		case read:
			return ActionPull, nil
		case method == "PUT":
			return ActionPush, nil
		case method == "DELETE":
			return ActionDelete, nil
		}
	case EndpointBlob:
		switch {
		case read:
			return ActionPull, nil
		case method == "DELETE":
			return ActionDelete, nil
		}
	case EndpointTags, EndpointReferrers:
		if read {
			return ActionPull, nil
		}
	case EndpointUploadStart:
		if method == "POST" {
			return ActionPush, nil
		}
	case EndpointUpload:
		// GET is the upload's status and DELETE cancels it: both are part
		// of a push, not a read or a deletion of content.
		switch method {
		case "GET", "PATCH", "PUT", "DELETE":
			return ActionPush, nil
		}
	}
	return "", refusal("method not supported on this route")
}

// readQuery reads the parameters that matter to the policy and refuses the
// query forms a server could read differently: ';' separators, a parameter
// given twice, or one spelt in another case.
func (r *Request) readQuery(q string) error {
	if strings.IndexByte(q, ';') >= 0 {
		return refusal("query contains ';'")
	}
	var mount, from, digest string
	var seen uint8
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return refusal("bad query encoding")
		}
		var bit uint8
		var dst *string
		switch {
		case strings.EqualFold(key, "mount"):
			bit, dst = 1, &mount
		case strings.EqualFold(key, "from"):
			bit, dst = 2, &from
		case strings.EqualFold(key, "digest"):
			bit, dst = 4, &digest
		default:
			if _, err := url.QueryUnescape(v); err != nil {
				return refusal("bad query encoding")
			}
			continue
		}
		if key != strings.ToLower(key) {
			return refusal("query parameter mount, from or digest spelt in another case")
		}
		if seen&bit != 0 {
			return refusal("query parameter mount, from or digest given twice")
		}
		seen |= bit
		if *dst, err = url.QueryUnescape(v); err != nil {
			return refusal("bad query encoding")
		}
	}
	if seen&3 != 0 {
		if r.Endpoint != EndpointUploadStart {
			return refusal("mount or from outside an upload start")
		}
		if !ValidDigest(mount) {
			return refusal("mount is not a digest")
		}
		if !ValidRepository(from) {
			return refusal("from is not a repository name")
		}
		r.Reference, r.MountFrom = mount, from
	}
	if seen&4 != 0 {
		if r.Endpoint != EndpointUpload && r.Endpoint != EndpointUploadStart {
			return refusal("digest outside an upload")
		}
		if !ValidDigest(digest) {
			return refusal("digest is not a digest")
		}
		if r.Reference == "" {
			r.Reference = digest
		}
	}
	return nil
}

// Path renders r as the path Parse read it from.
func (r Request) Path() string {
	switch r.Endpoint {
	case EndpointBase:
		return "/v2/"
	case EndpointCatalog:
		return "/v2/_catalog"
	case EndpointManifest:
		return "/v2/" + r.Repository + "/manifests/" + r.Reference
	case EndpointBlob:
		return "/v2/" + r.Repository + "/blobs/" + r.Reference
	case EndpointUploadStart:
		return "/v2/" + r.Repository + "/blobs/uploads/"
	case EndpointUpload:
		return "/v2/" + r.Repository + "/blobs/uploads/" + r.Upload
	case EndpointTags:
		return "/v2/" + r.Repository + "/tags/list"
	case EndpointReferrers:
		return "/v2/" + r.Repository + "/referrers/" + r.Reference
	}
	return ""
}
