package ecremu

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// ECR's blob upload quirks, imitated on top of docker-registry so that a
// gateway is tested against what ECR really sends: a PATCH is answered 201
// Created (the distribution spec and docker-registry say 202), and in a
// chunked upload every part but the last must carry at least
// MinLayerPartSize bytes (ECR stores parts as S3 multipart parts).
// Locations are already absolute on the front (newProxy).

// MinLayerPartSize is the smallest part ECR accepts in a chunked upload,
// except for the last part: 5 MiB.
const MinLayerPartSize = 5 << 20

// LayerPartTooSmallCode and LayerPartTooSmallMessage are the registry error
// the front answers, with status 400, to a part that follows one smaller than
// MinLayerPartSize. The message is ECR's LayerPartTooSmallException as
// CloudTrail records it (dotnet/sdk-container-builds#424); the code is the one
// ECR's registry endpoint gives its other layer-part errors (416
// BLOB_UPLOAD_INVALID "First byte of the layer part is ...",
// apple/container#1895). The status is not confirmed from a real ECR answer.
const (
	LayerPartTooSmallCode    = "BLOB_UPLOAD_INVALID"
	LayerPartTooSmallMessage = "All layer parts except the last part should be at least 5MB"
)

const (
	// maxDrain bounds how much of a refused part is read before answering, so
	// that a streaming proxy in front sees the answer, not a reset.
	maxDrain = 64 << 20
	// maxTrackedUploads bounds the part sizes remembered for uploads a
	// client started and never finished.
	maxTrackedUploads = 4096
)

// uploadParts remembers, per upload id, the size of the last part received.
// The front can only know that a part was not the last when another one
// arrives for the same upload.
type uploadParts struct {
	mu   sync.Mutex
	last map[string]int64
}

func (u *uploadParts) previous(id string) (size int64, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	size, ok = u.last[id]
	return size, ok
}

func (u *uploadParts) record(id string, size int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		u.last = make(map[string]int64)
	}
	if _, ok := u.last[id]; !ok && len(u.last) >= maxTrackedUploads {
		for k := range u.last { // any one: abandoned uploads only
			delete(u.last, k)
			break
		}
	}
	u.last[id] = size
}

func (u *uploadParts) forget(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.last, id)
}

// serveUpload proxies a request on an upload in progress (PATCH, PUT,
// DELETE, GET) to the backend, refusing, as ECR does, a part that follows a
// part smaller than MinLayerPartSize. A PUT that carries a body is a part
// too: the last one.
func (e *Emulator) serveUpload(w http.ResponseWriter, r *http.Request, id string) {
	carriesPart := r.Method == http.MethodPatch || (r.Method == http.MethodPut && r.ContentLength != 0)
	if carriesPart {
		if size, ok := e.uploads.previous(id); ok && size < MinLayerPartSize {
			io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
			writeRegistryJSON(w, http.StatusBadRequest, registryError(LayerPartTooSmallCode, LayerPartTooSmallMessage))
			return
		}
	}
	if r.Method == http.MethodPatch && r.Body != nil {
		part := &countingBody{ReadCloser: r.Body}
		r = r.WithContext(context.WithValue(r.Context(), uploadPartKey{}, &uploadPart{id: id, body: part}))
		r.Body = part
	}
	// The backend sends its own; the proxy would add it to ours.
	w.Header().Del("Docker-Distribution-Api-Version")
	e.proxy.ServeHTTP(w, r)
}

type uploadPartKey struct{}

// uploadPart is a PATCH on its way to the backend.
type uploadPart struct {
	id   string
	body *countingBody
}

// uploadAnswered gives a backend answer on an upload ECR's status, 201
// Created for a PATCH that docker-registry answers 202 Accepted (Location,
// Range and Docker-Upload-UUID stay as they are), and notes the size of the
// part it accepted. It runs before the answer reaches the client, so the
// size is known when the client sends the next part, on whatever connection.
func (e *Emulator) uploadAnswered(resp *http.Response) {
	if resp.Request == nil || resp.StatusCode/100 != 2 {
		return
	}
	p, ok := parseRepoPath(resp.Request.URL.Path)
	if !ok || p.kind != kindUpload || p.reference == "" {
		return
	}
	switch resp.Request.Method {
	case http.MethodPatch:
		if resp.StatusCode == http.StatusAccepted {
			resp.StatusCode, resp.Status = http.StatusCreated, "201 Created"
		}
		// The backend answers a PATCH once it has read the whole part.
		if part, ok := resp.Request.Context().Value(uploadPartKey{}).(*uploadPart); ok {
			e.uploads.record(part.id, part.body.n.Load())
		}
	case http.MethodPut, http.MethodDelete:
		e.uploads.forget(p.reference)
	}
}

// ServeBlobsDirectly makes the front answer blob downloads itself, streaming
// them from the backend, when on; off, the default, it answers them as ECR
// does, with a 307 to a pre-signed "S3" URL. Some registries behind such a
// gateway serve blobs themselves; here it lets a test send a download
// through the gateway.
func (e *Emulator) ServeBlobsDirectly(on bool) { e.blobsDirect.Store(on) }

// countingBody counts the bytes read from a request body. The proxy's
// transport may still be reading it when the answer is already back.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
