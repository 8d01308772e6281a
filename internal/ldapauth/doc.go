// Package ldapauth checks a username and password against an LDAP directory by
// search-then-bind: find exactly one entry by the login attribute named in an
// RFC 4516 URL (as the service account, on a pooled connection), bind as that
// entry with the password (on a connection of a second pool that carries user
// binds only), then resolve the user's groups and require one of the
// configured groups.
//
// Its errors separate "denied" from "broken": [ErrInvalidCredentials] and
// [ErrForbidden] are answers about the user; everything else wraps
// [ErrUnavailable], so an outage or a misconfiguration never looks like a wrong
// password.
//
// # Servers, pool, TLS
//
// Several URLs (see [ParseURLs]) are tried in order. A server that fails is
// skipped for 5s or DialTimeout, whichever is longer, doubling to 60s; when
// every server is backing off, the one whose back-off ends first is tried
// first. Once its back-off ends, one request retries it while concurrent ones
// pass it by, and it gets only what leaves a full DialTimeout for a healthy
// server after it. Connection set-up (TCP, TLS or StartTLS, service bind) is
// bounded by DialTimeout or what is left of Timeout, whichever is less, so a
// server that drops packets costs at most that; a server is never marked
// failed because the caller's time ran out. New warns (see
// [Settings].Warnings) when (servers-1) x DialTimeout >= Timeout, when an
// ldap:// URL runs without StartTLS (clear-text passwords), and when TLS files
// are given but nothing uses TLS; StartTLS with only ldaps:// URLs is refused. Each pool holds at most
// PoolSize connections; idle ones older than PoolIdleTimeout are dropped, and a
// pooled connection found broken is replaced and the operation retried once.
// StartTLS never falls back to plain text.
//
// # Names
//
// Surrounding spaces are trimmed from the username before the search; tabs and
// other control characters are refused. Identity.Name is the login attribute's
// value as the directory spells it, so "BOB", " bob" and (on Active Directory)
// "CORP\bob" and "bob@corp.example.com" are all "bob".
//
// # Groups
//
// Groups are resolved when RequireGroups or GroupBaseDN is set, or membership
// is read from memberOf (Identity.Groups is then non-nil, empty for a user in
// no group): one paged search (RFC 2696) under the group base for
// groups whose member/uniqueMember lists the user's DN (memberUid: the name),
// or the user's memberOf values. Nested groups add one search per level
// (breadth-first, at most NestedDepth levels, cycles ignored), or on Active
// Directory a single search with the in-chain rule 1.2.840.113556.1.4.1941.
// A user in any required group is allowed; DNs compare case-insensitively as
// DNs. Before a 403, each required group is read directly: one that lists the
// user outside the group base still admits them (and is logged), and required
// groups that do not exist at all are a 5xx.
//
// # Presets
//
// A preset fills only what was not set: the URL's attribute and filter when
// LDAP_URL leaves them out, the member attribute, the membership mode and the
// nested-group mode when empty. Anything set explicitly wins, even when it is
// the generic default (?uid, (objectClass=*), member). [Client.Settings]
// reports the values in effect.
//
// activedirectory: attribute sAMAccountName, filter
// (&(objectCategory=person)(objectClass=user)), member attribute member,
// nested groups (when enabled) by the in-chain rule. Logins may be "bob",
// "CORP\bob" (the domain is stripped, and checked against LDAP_AD_DOMAIN when
// set) or "bob@corp.example.com" (searched by userPrincipalName). Disabled
// accounts (userAccountControl bit 0x2) and expired ones (accountExpires in the
// past) are refused as invalid credentials without a bind; AD's bind sub-codes
// (52e, 525, 530, 531, 532, 533, 701, 773, 775) are logged at debug level only.
//
//	LDAP_PRESET=activedirectory
//	LDAP_URL=ldaps://dc1.corp.example.com/dc=corp,dc=example,dc=com ldaps://dc2.corp.example.com
//	LDAP_BIND_DN=CN=svc-registry,OU=Service Accounts,DC=corp,DC=example,DC=com
//	LDAP_BIND_PASSWORD_FILE=/run/secrets/ldap
//	LDAP_CA_FILE=/etc/ssl/corp-root-ca.pem
//	LDAP_AD_DOMAIN=CORP
//	LDAP_NESTED_GROUPS=true
//	LDAP_REQUIRE_GROUP=CN=Registry Users,OU=Groups,DC=corp,DC=example,DC=com;CN=Domain Admins,CN=Users,DC=corp,DC=example,DC=com
//
// okta (Okta LDAP Interface): filter (objectClass=inetOrgPerson), member
// attribute uniqueMember. Users are uid=<login>,ou=users,dc=<org>,dc=okta,dc=com
// and groups live under ou=groups; use LDAPS on 636 (or StartTLS on 389). The
// bind DN is an Okta admin's uid.
//
//	LDAP_PRESET=okta
//	LDAP_URL=ldaps://acme.ldap.okta.com/ou=users,dc=acme,dc=okta,dc=com?uid
//	LDAP_BIND_DN=uid=svc-registry@acme.com,ou=users,dc=acme,dc=okta,dc=com
//	LDAP_BIND_PASSWORD_FILE=/run/secrets/ldap
//	LDAP_GROUP_BASE=ou=groups,dc=acme,dc=okta,dc=com
//	LDAP_REQUIRE_GROUP=cn=registry-users,ou=groups,dc=acme,dc=okta,dc=com
//
// openldap: filter (objectClass=inetOrgPerson), member attribute member
// (groupOfNames); nested groups by the breadth-first walk. With the memberof
// overlay, LDAP_GROUP_MEMBERSHIP=memberof reads groups from the user entry.
//
//	LDAP_PRESET=openldap
//	LDAP_URL=ldap://ldap1.corp:389/ou=people,dc=corp,dc=com ldap://ldap2.corp:389
//	LDAP_START_TLS=true
//	LDAP_CA_FILE=/etc/ssl/corp-ca.pem
//	LDAP_BIND_DN=cn=gateway\, reader,ou=services,dc=corp,dc=com
//	LDAP_BIND_PASSWORD_FILE=/run/secrets/ldap
//	LDAP_GROUP_BASE=ou=groups,dc=corp,dc=com
//	LDAP_REQUIRE_GROUP=cn=ops\, registry,ou=groups,dc=corp,dc=com;cn=registry-users,ou=groups,dc=corp,dc=com
package ldapauth
