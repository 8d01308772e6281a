// Package policy decides which authenticated users may pull, push and delete
// which repositories, from a small YAML file (AUTH_POLICY_FILE) that ops can
// read at a glance. It also reloads that file while authsvc runs.
//
// # The file
//
//	# Authenticated users that match no rule get these actions (default: none).
//	default: []
//	rules:
//	  - name: quarantine                     # actions: [] takes everything away
//	    repositories: ["**"]
//	    actions: []
//	    users: [mallory]
//	  - name: ci pushes everything          # optional, shown in logs and denials
//	    repositories: ["**"]
//	    actions: [pull, push]
//	    users: [ci-bot]
//	  - name: team-a owns its namespace
//	    repositories: ["team-a", "team-a/**"]
//	    actions: [pull, push, delete]
//	    groups: ["cn=team-a-devs,ou=groups,dc=example,dc=org", "team-a-admins"]
//	  - repositories: ["*", "*/**"]
//	    actions: [pull, catalog]
//	    groups: [registry-users]
//	  - repositories: ["public/**"]
//	    actions: [pull]
//	    everyone: true
//
// Keys: default (a list of actions, optional, default none) and rules (a list,
// required; rules: [] grants only the default). A rule has repositories
// (required), actions (required; [] grants nothing), and its subjects: users,
// groups, or everyone: true (at least one; everyone does not combine with the
// others). name is optional and unique. Any other key, a repeated key, an
// unknown action or a bad pattern is an error; every error is reported at
// once with its line: "policy.yaml:12: rule 3: unknown action \"pusj\"".
//
// Actions: pull (GET and HEAD of manifests, blobs, tags and referrers), push
// (blob uploads and PUT of manifests), delete (DELETE of manifests and blobs),
// catalog (GET /v2/_catalog), and "*" for all four. Logging in (GET /v2/) needs
// none: every authenticated user may.
//
// Repository patterns are components joined by '/': "*" matches exactly one
// component, "**" one or more (at most one "**" per pattern), anything else
// that component literally, in lower case as repository names are. So
// "team-a/**" matches team-a/app and team-a/x/y but NOT team-a itself (list
// "team-a" too to include it); "**" matches every repository; "*" only names
// without a '/'. Partial wildcards such as "team-*" are refused.
//
// Subjects: users are canonical names (as LDAP spells them; authsvc check
// shows them), compared case-insensitively. A group containing '=' is a DN,
// compared as a DN (case-insensitively, spacing ignored) with each of the
// user's group DNs; any other group is compared case-insensitively with the
// first RDN value (the cn) of each of the user's groups, so "team-a-admins"
// matches cn=team-a-admins in any branch of the directory. Groups need the
// directory to resolve them (LDAP_GROUP_BASE, LDAP_REQUIRE_GROUP or
// LDAP_GROUP_MEMBERSHIP=memberof); authsvc refuses to start otherwise.
//
// # Evaluation: the first match wins
//
// For a request on repository R, the rules are read top to bottom; the first
// rule whose repositories match R and whose subjects include the user decides
// the user's actions on R, and later rules are not consulted. No such rule:
// the default. So put narrower rules first: in the example, mallory may do
// nothing anywhere, even in public/**, and ci-bot may not delete in team-a even
// if in team-a-devs.
// A cross-repository blob mount (POST .../blobs/uploads/?mount=D&from=F) needs
// push on the target and pull on F, each decided this way. The catalog names no
// repository: the first rule whose subjects include the user decides, whatever
// its repositories, else the default.
//
// # Denials
//
// Authorize explains a denial in one line for the docker client, naming the
// subjects (that the user is not already in) of the rules that would grant the
// action on that repository and come before the rule that decides for the
// user, since only those could change the answer: "alice may pull but not
// push team-b/api (needs group team-b-devs)", "alice may not push team-b/api
// (no rule grants push on team-b/api)", "alice may not pull team-b/base to
// mount a blob from it into team-a/app (needs group team-b-devs)". When only
// later rules grant it: "(rule \"quarantine\" decides first)".
//
// # Reloading
//
// A Watcher polls the file's modification time and size and reloads on a
// change or on demand (SIGHUP in authsvc). A new policy replaces the old one
// atomically; requests in flight finish with the one they started with. A file
// that does not load leaves the old policy in force and is logged at ERROR.
// Write the file by renaming a complete copy into place, so that a reload
// never reads half of it.
package policy
