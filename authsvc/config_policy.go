package authsvc

import (
	"errors"
	"fmt"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/toanc/aws-ecr-ldap/internal/ldapauth"
	"github.com/toanc/aws-ecr-ldap/internal/policy"
)

// policyEnv is the policy half of the environment; its defaults live here
// and only here.
type policyEnv struct {
	File string `envconfig:"AUTH_POLICY_FILE"`
	Poll string `envconfig:"AUTH_POLICY_POLL" default:"5s"`
}

// PolicyConfig is the repository policy's part of Config.
type PolicyConfig struct {
	File string        // AUTH_POLICY_FILE: the policy; empty = no policy (any valid user may do anything)
	Poll time.Duration // AUTH_POLICY_POLL: how often the file is checked for changes; 0 = on SIGHUP only

	loaded *policy.Policy // the file as LoadConfig read it
}

// load reads the policy variables and the policy file. Each problem in the
// file is its own error, naming AUTH_POLICY_FILE and the line.
func (pc *PolicyConfig) load(failed map[string]bool) []error {
	var e policyEnv
	if err := envconfig.Process("", &e); err != nil {
		return []error{fmt.Errorf("read environment: %w", err)}
	}
	if e.Poll == "" {
		e.Poll = "5s"
	}
	var errs []error
	poll, err := time.ParseDuration(e.Poll)
	if err != nil {
		errs = append(errs, problem{"AUTH_POLICY_POLL", fmt.Sprintf("not a duration such as 5s or 1m, got %q", e.Poll)})
		failed["AUTH_POLICY_POLL"] = true
	}
	if e.File == "" {
		return errs // no policy: PolicyConfig stays zero
	}
	pc.File, pc.Poll = e.File, poll
	p, err := policy.Load(pc.File)
	if err != nil {
		failed["AUTH_POLICY_FILE"] = true
		for _, e := range splitJoined(err) {
			errs = append(errs, problem{"AUTH_POLICY_FILE", e.Error()})
		}
		return errs
	}
	pc.loaded = p
	return errs
}

func (pc PolicyConfig) problems(c Config) []problem {
	var ps []problem
	if pc.Poll < 0 {
		ps = append(ps, problem{"AUTH_POLICY_POLL", fmt.Sprintf("must be 0 (SIGHUP only) or positive, got %s", pc.Poll)})
	}
	if pc.loaded != nil && pc.loaded.UsesGroups() && !groupsResolved(c) {
		ps = append(ps, problem{"AUTH_POLICY_FILE", pc.File + ": rules name groups, but the directory resolves no groups: " +
			"set LDAP_GROUP_BASE (or LDAP_REQUIRE_GROUP, or LDAP_GROUP_MEMBERSHIP=memberof)"})
	}
	return ps
}

// groupsResolved mirrors ldapauth: a user's groups are looked up when a group
// is required, a group base is set, or membership is read from memberOf.
func groupsResolved(c Config) bool {
	m, _ := ldapauth.ParseMembership(c.Directory.GroupMembership)
	return len(RequiredGroups(c.LDAPRequireGroup)) > 0 || c.Directory.GroupBase != "" || m == ldapauth.MembershipMemberOf
}

// Loaded is the policy file as LoadConfig read it; nil without a policy.
func (pc PolicyConfig) Loaded() *policy.Policy { return pc.loaded }

// splitJoined undoes errors.Join.
func splitJoined(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}
