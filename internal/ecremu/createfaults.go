package ecremu

import (
	"fmt"
	"net/http"
	"sync"
)

// apiFaults are ECR API answers a test asks for, and the calls it counts.
type apiFaults struct {
	mu         sync.Mutex
	denyCreate map[string]bool
	calls      map[string]int // by operation, signature verified
}

// DenyCreateRepository makes CreateRepository of name answer ECR's
// AccessDeniedException, as for a role without ecr:CreateRepository on it.
// DescribeRepositories and the registry are unaffected: a push there still
// gets NAME_UNKNOWN while it does not exist.
func (e *Emulator) DenyCreateRepository(name string) {
	e.apiFaults.mu.Lock()
	defer e.apiFaults.mu.Unlock()
	if e.apiFaults.denyCreate == nil {
		e.apiFaults.denyCreate = make(map[string]bool)
	}
	e.apiFaults.denyCreate[name] = true
}

// AllowCreateRepository undoes DenyCreateRepository.
func (e *Emulator) AllowCreateRepository(name string) {
	e.apiFaults.mu.Lock()
	defer e.apiFaults.mu.Unlock()
	delete(e.apiFaults.denyCreate, name)
}

// DeniedCreateMessage is the message of the AccessDeniedException
// DenyCreateRepository injects for name.
func (e *Emulator) DeniedCreateMessage(name string) string {
	return fmt.Sprintf("User: "+AssumedRoleARN+" is not authorized to perform: ecr:CreateRepository on resource: "+
		"arn:aws:ecr:%s:%s:repository/%s because no identity-based policy allows the ecr:CreateRepository action",
		e.cfg.AccountID, e.cfg.Region, e.cfg.AccountID, name)
}

// APICalls counts the calls of ECR API operation op ("CreateRepository",
// "DescribeRepositories", ...) that passed signature verification.
func (e *Emulator) APICalls(op string) int {
	e.apiFaults.mu.Lock()
	defer e.apiFaults.mu.Unlock()
	return e.apiFaults.calls[op]
}

func (e *Emulator) countAPICall(op string) {
	e.apiFaults.mu.Lock()
	defer e.apiFaults.mu.Unlock()
	if e.apiFaults.calls == nil {
		e.apiFaults.calls = make(map[string]int)
	}
	e.apiFaults.calls[op]++
}

// refuseCreate is the injected answer to CreateRepository of name, or nil.
func (e *Emulator) refuseCreate(name string) *apiError {
	e.apiFaults.mu.Lock()
	deny := e.apiFaults.denyCreate[name]
	e.apiFaults.mu.Unlock()
	if !deny {
		return nil
	}
	return &apiError{http.StatusBadRequest, "AccessDeniedException", e.DeniedCreateMessage(name)}
}
