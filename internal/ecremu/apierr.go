package ecremu

import (
	"encoding/json"
	"net/http"
)

// apiError is an AWS JSON 1.1 error: an HTTP status and an error type the
// SDK turns into a typed error or a smithy.APIError code.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

var (
	errMissingAuthToken = &apiError{http.StatusBadRequest, "MissingAuthenticationTokenException",
		"Missing Authentication Token"}
	errUnrecognizedClient = &apiError{http.StatusBadRequest, "UnrecognizedClientException",
		"The security token included in the request is invalid."}
	errSignatureMismatch = &apiError{http.StatusForbidden, "InvalidSignatureException",
		"The request signature we calculated does not match the signature you provided. " +
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	errServer = &apiError{http.StatusInternalServerError, "ServerException",
		"Internal service error (injected by ecremu)."}
	errThrottling = &apiError{http.StatusBadRequest, "ThrottlingException",
		"Rate exceeded (injected by ecremu)."}
)

const jsonContentType = "application/x-amz-json-1.1"

func writeAPIError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	writeAPIJSON(w, e.status, struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.typ, e.msg})
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"__type":"ServerException","message":"encode response"}`)
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	w.Write(body)
}
