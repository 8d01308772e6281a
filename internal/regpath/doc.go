// Package regpath turns the method and raw URI of a registry (distribution v2)
// request, as nginx hands them to authsvc, into what the request does: the
// action (login, catalog, pull, push, delete), the repository, the tag or
// digest, and for a cross-repository blob mount the repository it mounts from.
//
// It is strict on purpose: a path that contains any percent-encoding, "..",
// "//", a backslash, a trailing slash where none belongs, control characters
// or anything outside the distribution grammar is refused rather than guessed
// or normalised, so that the policy can never judge one repository while ECR
// serves another. Query values (from, mount, digest, n, last) may be
// percent-encoded, as Go clients encode "/" as %2F; they are decoded, and from
// is then held to the repository grammar.
package regpath
