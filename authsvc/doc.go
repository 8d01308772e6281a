// Package authsvc is the nginx auth_request endpoint of the gateway: it checks the
// docker client's Basic credentials against LDAP and answers nginx with a status.
//
// The contract with nginx (GET /auth, keepalive upstream):
//
//	204  allowed; X-Auth-Request-User: <name as the directory spells it>
//	401  missing, malformed or wrong credentials, or too many failed logins;
//	     WWW-Authenticate: Basic realm="<AUTH_REALM>", charset="UTF-8"
//	403  authenticated but not permitted: not in the required group, refused by the
//	     policy, or an unsupported or non-canonical registry request;
//	     X-Auth-Reason: <one line for the docker client, escaped for a JSON string>
//	503  LDAP unreachable, timed out or misconfigured (never 401: an outage must not look like a wrong password)
//
// nginx passes the client's Authorization header and X-Original-Method,
// X-Original-URI and X-Real-IP. GET /healthz answers 200 without touching LDAP;
// GET /readyz answers 200 when an LDAP server answers a ping (one ping per 5 s at
// most, shared by concurrent probes), else 503. With AUTH_METRICS_ADDR set,
// Prometheus metrics are served on that separate listener at /metrics.
//
// # Repository policy
//
// With AUTH_POLICY_FILE set, every request whose identity is established is
// also judged by the policy (package policy documents the file): the original
// method and URI are parsed by package regpath into an action (login, catalog,
// pull, push, delete), a repository, a tag or digest, and for a blob mount the
// repository mounted from; the first matching rule decides. GET /v2/ (docker
// login) is allowed to every authenticated user. A request the parser refuses
// (percent-encoding, "..", "//", a backslash, a method the route does not
// take, anything outside the registry API) is a 403 "unsupported registry
// request". The credential cache keeps the identity only: the policy is
// evaluated on every request, cache hits included, with no allocation.
// Without AUTH_POLICY_FILE nothing changes: any user LDAP accepts (and in
// LDAP_REQUIRE_GROUP, when set) may do anything.
//
// The file is read at start (a broken file stops authsvc, naming the line),
// then reloaded on SIGHUP and whenever its modification time or size changes
// (checked every AUTH_POLICY_POLL, default 5s; 0 polls never). A reload swaps
// the policy atomically; a file that does not load leaves the old policy in
// force and logs an ERROR with the problem. Metrics: authsvc_policy_reload_success
// (0 or 1, the last attempt), authsvc_policy_last_reload_success_timestamp_seconds,
// authsvc_policy_rules.
//
// # Denial reasons (X-Auth-Reason)
//
// A 403 carries a reason the docker client can print, e.g. "alice may pull but
// not push team-b/api (needs group team-b-devs)", "alice is not in a group
// allowed to use this registry" (LDAP_REQUIRE_GROUP), or "unsupported registry
// request" (never the path). The value is ready to paste between the double
// quotes of a JSON string: '"' and '\' are escaped, control characters
// dropped, and everything outside printable ASCII written \uXXXX; it is at
// most 1024 bytes. A 401 never carries a reason, so nothing tells whether a
// user exists; a 403 only goes to a user who proved the password.
//
// # Credential cache
//
// A login LDAP accepted is trusted for AUTH_CACHE_TTL (default 5m; 0 turns the
// cache off) under a key that is HMAC-SHA256(len(user) ‖ user ‖ len(password) ‖
// password) with a random key drawn at start: nothing stored can be turned back
// into a password, and a restart forgets everything. A hit does not extend the
// TTL. Only successes are cached. A changed password is a new key, so it goes to
// LDAP at once, and its success evicts the user's cached entries with another
// password (other spellings of the name with the same password stay);
// until someone logs in with the new one, the old one keeps working from the cache
// for its TTL, which is the price of a cache (keep the TTL short). Credentials
// LDAP has just refused are remembered for 10 s (failureMemory): a burst of
// retries with the same wrong password costs the directory one failed bind, not
// one per request, and does not count again against the failed-login limits. A 403 is not cached: a user
// added to the group gets in on the next request, and a 403 ends a docker session
// at once, so there is no stream of them to save. At most AUTH_CACHE_SIZE
// credentials are kept; the least recently used go first. Concurrent requests with
// the same uncached credentials share one LDAP check (singleflight on the same
// key); a success is cached before the group ends, so a docker push with fresh
// credentials costs one bind.
//
// # Failed logins
//
// A wrong password or an unknown user (the two are never told apart) counts as a
// failure in three leaky buckets, each holding up to N failures and draining
// evenly over AUTH_FAILURE_WINDOW (default 5m):
//
//   - the username from one client address, N = AUTH_MAX_FAILURES (10);
//   - all usernames from one address, N = AUTH_MAX_FAILURES_PER_IP (50), against
//     password spraying;
//   - the username from any address, N = AUTH_MAX_FAILURES_PER_USER (30), against
//     guessing spread over many addresses. It does not apply at an address where
//     that user logged in successfully within the last 24 hours.
//
// While a bucket is full, attempts it covers are answered 401 with the challenge,
// exactly like a wrong password, without asking LDAP; a refused attempt adds
// nothing, so after the burst one more attempt is allowed every window/N and the
// count is empty one window after the last real failure. One WARN line is logged
// when a bucket fills. Not 429: nginx turns any auth_request status but 401 and 403
// into a 500. The username is folded (lower case, spaces trimmed) for counting,
// the client address is X-Real-IP, which only nginx can set on this listener.
//
// Checks run in this order: malformed credentials → 401; cache hit → 204 (the
// password is proven, so no limit applies); limits → 401; LDAP. So an attacker
// cannot lock a user out of a cached, correct password, cannot lock the user out
// at another address with attempts from one address (those fill only their own
// buckets), and cannot lock a user out of an address where the user has logged in
// lately. A distributed attack can keep the per-user bucket full for addresses the
// user has not used before, for as long as it goes on; that is the trade against
// unlimited distributed guessing. Every table is bounded (100 000 keys each).
//
// # Outages
//
// With AUTH_GRACE_PERIOD set (default 0, off; it must exceed AUTH_CACHE_TTL),
// verified credentials are kept that long, and while LDAP is unavailable a request
// whose exact credentials were verified within the period is allowed, logged at
// WARN "ldap unavailable; allowing from grace cache". Everyone else gets 503. The
// next success once LDAP is back refreshes the entry.
//
// # Creating repositories on first push
//
// With AUTH_CREATE_REPOSITORIES=true (default false), an allowed upload start
// (POST /v2/<name>/blobs/uploads/, mounts included: the first write of every
// push) first makes sure the repository exists: DescribeRepositories, then
// CreateRepository (with AUTH_CREATE_REPOSITORY_TAG_MUTABILITY and
// AUTH_CREATE_REPOSITORY_SCAN_ON_PUSH when set) before the 204. Pulls, other
// writes and every denied request never call ECR. The registry is the one
// nginx names in X-ECR-Registry-Id (a 12-digit account id; none: the
// credentials' own) and X-ECR-Region (none: AWS_REGION), from tokenwriter's
// include; a client cannot set them. Repositories seen to exist are
// remembered for 10 minutes (10 000 at most), concurrent uploads share one
// lookup, and each lookup has 5 s. RepositoryAlreadyExistsException is a
// success. A refusal (AccessDenied, an invalid name, the repository limit)
// or a timeout is logged at WARN with user and repository, counted in
// authsvc_repository_create_failures_total{reason}, not retried for 10 s,
// and the request is still allowed: ECR's own NAME_UNKNOWN or DENIED reaches
// the client. A creation is logged at INFO "repository created" with user,
// repository, registry_id and region, and counted in
// authsvc_repositories_created_total. The AWS identity is the SDK's default
// chain (or AWS_KEY/AWS_SECRET), the region AWS_REGION, REGION, a profile's
// or the EC2 instance's; AWS_ENDPOINT_URL_ECR is honoured.
//
// # Logs
//
// One JSON line per decision: decision (allow, deny_401, deny_403, error,
// limited), status, user (the directory's spelling when known), client_ip,
// method, uri, cache (hit, miss, grace), duration; when the request parses,
// action, repository, reference (tag or digest) and mount_from (mounts only);
// rule (the policy rule's name or "rule N", "default", "login", or
// "required-group") and reason (why it was refused). Never the password,
// the Authorization header or anything derived from them. With
// AUTH_LOG_CACHE_HITS=false, allowed cache hits are logged at debug level: the
// line is most of a hit's cost, and nginx's access log already has them.
// cmd/authsvc batches the lines (logjson.BufferedWriter): each is written
// within 100 ms, and all are flushed when authsvc stops.
package authsvc
