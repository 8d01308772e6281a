package ecremu

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PresignExpiry is how long a blob download URL stays valid, as on ECR.
const PresignExpiry = 10 * time.Minute

// blobSigner makes and checks the pre-signed-looking "S3" URLs the front
// redirects blob downloads to. Only the emulator knows its key.
type blobSigner struct {
	base   string // http://127.0.0.1:<port>
	bucket string
	key    []byte

	mu              sync.Mutex
	total, withAuth int
}

func newBlobSigner(base, region string) (*blobSigner, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("ecremu: s3 key: %w", err)
	}
	return &blobSigner{base: base, bucket: "prod-" + region + "-starport-layer-bucket", key: key}, nil
}

func (s *blobSigner) signature(path, amzDate, expires string) string {
	mac := hmac.New(sha256.New, s.key)
	io.WriteString(mac, path+"\n"+amzDate+"\n"+expires)
	return hex.EncodeToString(mac.Sum(nil))
}

// presign returns the URL that serves blob digest of repository name.
func (s *blobSigner) presign(name, digest string, now time.Time) string {
	path := "/" + s.bucket + "/" + name + "/" + digest
	amzDate := now.UTC().Format(amzDateFormat)
	expires := strconv.Itoa(int(PresignExpiry / time.Second))
	q := url.Values{
		"X-Amz-Algorithm": {sigV4Algorithm},
		"X-Amz-Expires":   {expires},
		"X-Amz-Date":      {amzDate},
		"X-Amz-Signature": {s.signature(path, amzDate, expires)},
	}
	u := url.URL{Path: path, RawQuery: q.Encode()}
	return s.base + u.String()
}

// verify checks a request's pre-signed query; it returns "" when valid, or
// the reason it is not.
func (s *blobSigner) verify(r *http.Request, now time.Time) string {
	q := r.URL.Query()
	amzDate, expires := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires")
	if q.Get("X-Amz-Algorithm") != sigV4Algorithm || q.Get("X-Amz-Signature") == "" {
		return "Query-string authentication requires the X-Amz-Algorithm, X-Amz-Date, X-Amz-Expires and X-Amz-Signature parameters"
	}
	want := s.signature(r.URL.Path, amzDate, expires)
	if !hmac.Equal([]byte(want), []byte(q.Get("X-Amz-Signature"))) {
		return "The request signature we calculated does not match the signature you provided"
	}
	signedAt, err := time.Parse(amzDateFormat, amzDate)
	secs, err2 := strconv.Atoi(expires)
	if err != nil || err2 != nil || now.After(signedAt.Add(time.Duration(secs)*time.Second)) {
		return "Request has expired"
	}
	return ""
}

// object splits an object path into repository name and digest.
func (s *blobSigner) object(path string) (name, digest string, ok bool) {
	key, ok := strings.CutPrefix(path, "/"+s.bucket+"/")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(key, '/')
	if i < 0 || !validRepoName(key[:i]) || key[i+1:] == "" {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

func (s *blobSigner) count(withAuthorization bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if withAuthorization {
		s.withAuth++
	}
}

func (s *blobSigner) counts() (total, withAuthorization int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.withAuth
}

// serveS3 serves pre-signed blob URLs by streaming from the backend. Like S3
// it refuses a request that also carries an Authorization header.
func (e *Emulator) serveS3(w http.ResponseWriter, r *http.Request) {
	hasAuth := len(r.Header.Values("Authorization")) > 0
	e.s3.count(hasAuth)
	if hasAuth {
		e.log.Warn("s3 request carried an Authorization header", slog.String("path", r.URL.Path))
		writeS3Error(w, http.StatusBadRequest, "InvalidArgument",
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeS3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	if reason := e.s3.verify(r, e.now()); reason != "" {
		writeS3Error(w, http.StatusForbidden, "AccessDenied", reason)
		return
	}
	name, digest, ok := e.s3.object(r.URL.Path)
	if !ok {
		writeS3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	e.streamBlob(r.Context(), w, r, name, digest)
}

func (e *Emulator) streamBlob(ctx context.Context, w http.ResponseWriter, r *http.Request, name, digest string) {
	req, err := http.NewRequestWithContext(ctx, r.Method, e.backend.JoinPath("v2", name, "blobs", digest).String(), nil)
	if err != nil {
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	if rng := r.Header.Get("Range"); rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := e.backendClient.Do(req)
	if err != nil {
		e.log.Error("s3 backend request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
	case http.StatusNotFound:
		writeS3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	default:
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	for _, h := range []string{"Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", strconv.Quote(digest))
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		e.log.Warn("s3 blob stream cut", slog.String("path", r.URL.Path), slog.Any("error", err))
	}
}

func writeS3Error(w http.ResponseWriter, status int, code, message string) {
	body, _ := xml.Marshal(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}{Code: code, Message: message})
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	w.Write(body)
}
