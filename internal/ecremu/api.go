package ecremu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	targetPrefix = "AmazonEC2ContainerRegistry_V20150921."
	maxAPIBody   = 1 << 20
)

var registryIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// FailKind is a failure FailTokenCalls injects into GetAuthorizationToken.
type FailKind int

const (
	// InternalError answers 500 ServerException; the SDK retries it.
	InternalError FailKind = iota + 1
	// Throttle answers 400 ThrottlingException; the SDK retries it.
	Throttle
)

func (k FailKind) apiError() *apiError {
	if k == Throttle {
		return errThrottling
	}
	return errServer
}

// serveAPI is the ECR API: AWS JSON 1.1 on POST /, operation in X-Amz-Target.
func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	apiErr := e.handleAPI(w, r, op)
	if apiErr != nil {
		writeAPIError(w, apiErr)
		e.log.LogAttrs(r.Context(), slog.LevelInfo, "ecr api call", slog.String("operation", op),
			slog.Int("status", apiErr.status), slog.String("error", apiErr.typ))
		return
	}
	e.log.LogAttrs(r.Context(), slog.LevelInfo, "ecr api call", slog.String("operation", op), slog.Int("status", http.StatusOK))
}

func (e *Emulator) handleAPI(w http.ResponseWriter, r *http.Request, op string) *apiError {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return &apiError{http.StatusNotFound, "UnknownOperationException", "Only POST / is served."}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", "Request body could not be read."}
	}
	if apiErr := e.verifier.verify(r.Context(), r, body); apiErr != nil {
		return apiErr
	}
	e.countAPICall(op)
	var resp any
	switch op {
	case "GetAuthorizationToken":
		resp, err = e.getAuthorizationToken(body)
	case "CreateRepository":
		resp, err = e.createRepositoryOp(body)
	case "DescribeRepositories":
		resp, err = e.describeRepositories(body)
	default:
		return &apiError{http.StatusBadRequest, "UnknownOperationException", "Unknown operation " + strconv.Quote(op) + "."}
	}
	if apiErr, ok := errors.AsType[*apiError](err); ok {
		return apiErr
	}
	if err != nil {
		e.log.Error("ecr api operation failed", slog.String("operation", op), slog.Any("error", err))
		return &apiError{http.StatusInternalServerError, "ServerException", "Internal service error."}
	}
	writeAPIJSON(w, http.StatusOK, resp)
	return nil
}

func decodeInput(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", "Request body is not valid JSON for this operation."}
	}
	return nil
}

func invalidParameter(msg string) error {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", msg}
}

type authorizationData struct {
	AuthorizationToken string      `json:"authorizationToken"`
	ExpiresAt          json.Number `json:"expiresAt"`
	ProxyEndpoint      string      `json:"proxyEndpoint"`
}

func (e *Emulator) getAuthorizationToken(body []byte) (any, error) {
	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	for _, id := range in.RegistryIDs {
		if !registryIDPattern.MatchString(id) {
			return nil, invalidParameter(fmt.Sprintf("Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must satisfy regular expression pattern: [0-9]{12}', got %q.", id))
		}
	}

	size, failure := e.countTokenCall(in.RegistryIDs)
	if failure != nil {
		return nil, failure
	}
	token, password, err := newToken(size)
	if err != nil {
		return nil, err
	}
	expires := e.now().Add(e.cfg.TokenTTL)
	minted := in.RegistryIDs
	if len(minted) == 0 {
		minted = []string{e.cfg.AccountID} // the caller's own registry
	}
	e.tokens.addFor(password, expires, minted)
	e.log.Info("issued token", slog.Int("size", size), slog.Time("expires", expires))

	out := struct {
		AuthorizationData []authorizationData `json:"authorizationData"`
	}{}
	// ECR answers once per requested registry, each with that registry's
	// endpoint; the token is valid for all.
	for _, id := range minted {
		out.AuthorizationData = append(out.AuthorizationData, authorizationData{
			AuthorizationToken: token,
			ExpiresAt:          epochSeconds(expires),
			ProxyEndpoint:      "https://" + e.registryHostFor(id),
		})
	}
	return out, nil
}

// countTokenCall counts a GetAuthorizationToken call and returns the token
// size to use, or the injected failure this call must answer with.
func (e *Emulator) countTokenCall(ids []string) (size int, failure *apiError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokenCalls++
	call := TokenCall{RegistryIDs: slices.Clone(ids)}
	defer func() { e.accounts.calls = append(e.accounts.calls, call) }()
	if e.failLeft > 0 {
		e.failLeft--
		call.Failed = true
		return 0, e.failKind.apiError()
	}
	if f := e.accountFailure(ids); f != nil {
		call.Failed = true
		return 0, f
	}
	return e.tokenSize, nil
}

type repositoryJSON struct {
	RepositoryARN              string      `json:"repositoryArn"`
	RegistryID                 string      `json:"registryId"`
	RepositoryName             string      `json:"repositoryName"`
	RepositoryURI              string      `json:"repositoryUri"`
	CreatedAt                  json.Number `json:"createdAt"`
	ImageTagMutability         string      `json:"imageTagMutability"`
	ImageScanningConfiguration struct {
		ScanOnPush bool `json:"scanOnPush"`
	} `json:"imageScanningConfiguration"`
	EncryptionConfiguration struct {
		EncryptionType string `json:"encryptionType"`
	} `json:"encryptionConfiguration"`
}

func (e *Emulator) repositoryJSON(name string, created time.Time) repositoryJSON {
	r := repositoryJSON{
		RepositoryARN:      fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", e.cfg.Region, e.cfg.AccountID, name),
		RegistryID:         e.cfg.AccountID,
		RepositoryName:     name,
		RepositoryURI:      e.registryHost + "/" + name,
		CreatedAt:          epochSeconds(created),
		ImageTagMutability: "MUTABLE",
	}
	r.EncryptionConfiguration.EncryptionType = "AES256"
	return r
}

func (e *Emulator) createRepositoryOp(body []byte) (any, error) {
	var in struct {
		RepositoryName string `json:"repositoryName"`
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if apiErr := e.refuseCreate(in.RepositoryName); apiErr != nil {
		return nil, apiErr
	}
	created, err := e.repos.create(in.RepositoryName, e.now())
	switch {
	case errors.Is(err, ErrInvalidRepositoryName):
		return nil, invalidParameter(fmt.Sprintf("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '%s'', got %q.", repoNamePattern, in.RepositoryName))
	case errors.Is(err, ErrRepositoryExists):
		return nil, &apiError{http.StatusBadRequest, "RepositoryAlreadyExistsException",
			fmt.Sprintf("The repository with name '%s' already exists in the registry with id '%s'", in.RepositoryName, e.cfg.AccountID)}
	case err != nil:
		return nil, err
	}
	e.log.Info("created repository", slog.String("repository", in.RepositoryName))
	return struct {
		Repository repositoryJSON `json:"repository"`
	}{e.repositoryJSON(in.RepositoryName, created)}, nil
}

func (e *Emulator) describeRepositories(body []byte) (any, error) {
	var in struct {
		RepositoryNames []string `json:"repositoryNames"`
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	names := in.RepositoryNames
	if len(names) == 0 {
		names = e.repos.names()
	}
	out := struct {
		Repositories []repositoryJSON `json:"repositories"`
	}{Repositories: []repositoryJSON{}}
	for _, name := range names {
		created, ok := e.repos.get(name)
		if !ok {
			return nil, &apiError{http.StatusBadRequest, "RepositoryNotFoundException", e.nameUnknownMessage(name)}
		}
		out.Repositories = append(out.Repositories, e.repositoryJSON(name, created))
	}
	return out, nil
}

// epochSeconds renders t the way ECR does: fractional seconds since the epoch.
func epochSeconds(t time.Time) json.Number {
	return json.Number(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64))
}
