// Package authsvc is the nginx auth_request endpoint of the gateway: it checks the
// docker client's Basic credentials against LDAP and answers nginx with a status.
//
// The contract with nginx (GET /auth, keepalive upstream):
//
//	204  allowed; X-Auth-Request-User: <name as the directory spells it>
//	401  missing, malformed or wrong credentials; WWW-Authenticate: Basic realm="<AUTH_REALM>", charset="UTF-8"
//	403  authenticated but not in the required group
//	503  LDAP unreachable, timed out or misconfigured (never 401: an outage must not look like a wrong password)
//
// nginx passes the client's Authorization header and X-Original-Method,
// X-Original-URI and X-Real-IP, which are only logged. GET /healthz answers 200
// without touching LDAP.
package authsvc
