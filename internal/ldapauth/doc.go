// Package ldapauth checks a username and password against an LDAP directory by
// search-then-bind: bind as a service account, find exactly one entry by the login
// attribute named in an RFC 4516 URL, bind as that entry with the password on a
// separate connection, and optionally require membership of one group.
//
// Its errors separate "denied" from "broken": [ErrInvalidCredentials] and
// [ErrForbidden] are answers about the user; everything else wraps [ErrUnavailable],
// so an outage or a misconfiguration never looks like a wrong password.
package ldapauth
