package ecremu

import (
	"fmt"
	"net/http"
	"sync"
)

// ThrottledMessage is the message of the 429 TOOMANYREQUESTS answers that
// ThrottleRequests injects, as ECR words it.
const ThrottledMessage = "Rate exceeded"

// AssumedRoleARN is the principal named in the DENIED answers DenyPush injects.
const AssumedRoleARN = "arn:aws:sts::%s:assumed-role/ecr-gateway/i-0123456789abcdef0"

// faults are registry answers a test asks for: IAM denials and throttling.
type faults struct {
	mu           sync.Mutex
	denyPush     map[string]bool
	throttleLeft int
}

// DenyPush makes every write to repository name (upload start, chunk,
// completion, manifest) answer ECR's 403 DENIED for missing IAM rights, as
// for a role without ecr:InitiateLayerUpload and friends. Pulls still work.
func (e *Emulator) DenyPush(name string) {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	if e.faults.denyPush == nil {
		e.faults.denyPush = make(map[string]bool)
	}
	e.faults.denyPush[name] = true
}

// AllowPush undoes DenyPush.
func (e *Emulator) AllowPush(name string) {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	delete(e.faults.denyPush, name)
}

// ThrottleRequests makes the next n authorized requests on repository paths
// answer 429 TOOMANYREQUESTS "Rate exceeded", as ECR does past its request
// rate quotas. /v2/ (a gateway's token probe) is left alone.
func (e *Emulator) ThrottleRequests(n int) {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	e.faults.throttleLeft = n
}

// DeniedPushMessage is the message of the DENIED answer DenyPush injects for
// action (such as "ecr:InitiateLayerUpload") on repository name.
func (e *Emulator) DeniedPushMessage(action, name string) string {
	return fmt.Sprintf("User: "+AssumedRoleARN+" is not authorized to perform: %s on resource: "+
		"arn:aws:ecr:%s:%s:repository/%s because no identity-based policy allows the %s action",
		e.cfg.AccountID, action, e.cfg.Region, e.cfg.AccountID, name, action)
}

// pushAction is the IAM action ECR checks for a write, "" for reads.
func pushAction(method string, p repoPath) string {
	switch {
	case p.kind == kindUpload && method == http.MethodPost:
		return "ecr:InitiateLayerUpload"
	case p.kind == kindUpload && method == http.MethodPatch:
		return "ecr:UploadLayerPart"
	case p.kind == kindUpload && method == http.MethodPut:
		return "ecr:CompleteLayerUpload"
	case p.kind == kindManifest && method == http.MethodPut:
		return "ecr:PutImage"
	}
	return ""
}

// injectFault answers r with an injected fault and reports whether it did.
func (e *Emulator) injectFault(w http.ResponseWriter, r *http.Request) bool {
	p, ok := parseRepoPath(r.URL.Path)
	if !ok {
		return false
	}
	e.faults.mu.Lock()
	throttle := e.faults.throttleLeft > 0
	if throttle {
		e.faults.throttleLeft--
	}
	var action string
	if e.faults.denyPush[p.name] {
		action = pushAction(r.Method, p)
	}
	e.faults.mu.Unlock()
	switch {
	case throttle:
		writeRegistryJSON(w, http.StatusTooManyRequests, registryError("TOOMANYREQUESTS", ThrottledMessage))
	case action != "":
		writeRegistryJSON(w, http.StatusForbidden, registryError("DENIED", e.DeniedPushMessage(action, p.name)))
	default:
		return false
	}
	return true
}
