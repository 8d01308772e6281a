package ecremu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

const (
	deniedMessage = "Your authorization token has expired. Reauthenticate and try again."
	// registryJSON is the content type distribution and ECR give JSON errors.
	registryJSON = "application/json; charset=utf-8"

	blobProbeTimeout = 10 * time.Second
)

// serveFront is the registry endpoint: it authorizes the way ECR does, checks
// that the repository exists, redirects blob downloads to "S3" and proxies
// everything else to the backend registry.
func (e *Emulator) serveFront(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	switch e.tokens.check(r, e.now()) {
	case authMissing:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm="https://%s/",service="ecr.amazonaws.com"`, e.registryHost))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintln(w, "Not Authorized")
		return
	case authForeign:
		// Log that it happened, never the value.
		e.log.Warn("registry request with a credential this emulator never issued",
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
		writeRegistryJSON(w, http.StatusForbidden, registryError("DENIED", deniedMessage))
		return
	case authStale:
		writeRegistryJSON(w, http.StatusForbidden, registryError("DENIED", deniedMessage))
		return
	}
	e.tokens.noteAccount(r, e.cfg.AccountID)

	if e.injectFault(w, r) {
		return
	}
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		writeRegistryJSON(w, http.StatusOK, "{}")
		return
	}
	if p, ok := parseRepoPath(r.URL.Path); ok {
		if !e.repositoryExists(p.name, r.Method) {
			writeRegistryJSON(w, http.StatusNotFound, registryError("NAME_UNKNOWN", e.nameUnknownMessage(p.name)))
			return
		}
		if p.kind == kindBlob && r.Method == http.MethodGet && !e.blobsDirect.Load() && e.redirectBlob(w, r, p) {
			return
		}
		if p.kind == kindUpload && p.reference != "" {
			e.serveUpload(w, r, p.reference) // uploads.go: ECR's chunk minimum
			return
		}
	}
	// The backend sends its own; the proxy would add it to ours.
	w.Header().Del("Docker-Distribution-Api-Version")
	e.proxy.ServeHTTP(w, r)
}

func (e *Emulator) nameUnknownMessage(name string) string {
	return fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", name, e.cfg.AccountID)
}

// repositoryExists reports whether name exists, creating it first when
// CreateOnPush is set and the request writes.
func (e *Emulator) repositoryExists(name, method string) bool {
	if _, ok := e.repos.get(name); ok {
		return true
	}
	if !e.cfg.CreateOnPush || method == http.MethodGet || method == http.MethodHead {
		return false
	}
	_, err := e.repos.create(name, e.now())
	if err == nil {
		e.log.Info("created repository on push", slog.String("repository", name))
	}
	return err == nil || errors.Is(err, ErrRepositoryExists)
}

// redirectBlob answers a blob download with a 307 to a pre-signed "S3" URL,
// as ECR does, when the backend has the blob. It reports false when the
// request is left for the proxy, which then passes the backend's answer on.
func (e *Emulator) redirectBlob(w http.ResponseWriter, r *http.Request, p repoPath) bool {
	ctx, cancel := context.WithTimeout(r.Context(), blobProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, e.backend.JoinPath(r.URL.Path).String(), nil)
	if err != nil {
		return false
	}
	resp, err := e.backendClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	w.Header().Set("Location", e.s3.presign(p.name, p.reference, e.now()))
	w.WriteHeader(http.StatusTemporaryRedirect)
	return true
}

// registryError is a distribution-style error body with one error.
func registryError(code, message string) string {
	type entry struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Errors []entry `json:"errors"`
	}{[]entry{{code, message}}})
	return string(body)
}

func writeRegistryJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", registryJSON)
	w.WriteHeader(status)
	fmt.Fprintln(w, body)
}

// newProxy streams requests to the backend without the client's
// Authorization and makes backend Locations absolute on the front, as ECR's are.
func (e *Emulator) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(e.backend)
			pr.Out.Header.Del("Authorization")
		},
		Transport:     e.backendClient.Transport,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			e.uploadAnswered(resp) // uploads.go
			if loc := resp.Header.Get("Location"); loc != "" {
				resp.Header.Set("Location", e.frontLocation(loc))
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			e.log.Error("backend registry request failed", slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.Any("error", err))
			w.WriteHeader(http.StatusBadGateway)
		},
		ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
}

// frontLocation turns a backend Location, relative or absolute on the
// backend, into an absolute URL on the front. Other hosts are left alone.
func (e *Emulator) frontLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	abs := e.backend.ResolveReference(u)
	if abs.Host != e.backend.Host {
		return loc
	}
	abs.Scheme, abs.Host = "https", e.registryHost
	return abs.String()
}
