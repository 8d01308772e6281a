package e2e

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/toanc/aws-ecr-ldap/internal/slapd"
)

// A docker push sends dozens of requests with the same Basic credentials:
// with fresh credentials, the whole push costs the directory one user bind
// (case A16 seen from the outside; BENCHMARKS.md records the figure).
func TestPushOfTenLayersCostsOneBind(t *testing.T) {
	const (
		uid      = "pusher"
		password = "fresh-pusher-secret"
	)
	dn := "uid=" + uid + "," + slapd.PeopleDN
	add := ldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("uid", []string{uid})
	add.Attribute("cn", []string{uid})
	add.Attribute("sn", []string{uid})
	add.Attribute("userPassword", []string{password})
	if err := e.ldap.Add(t.Context(), add); err != nil {
		t.Fatal(err)
	}
	join := ldap.NewModifyRequest(slapd.GroupRegistryUsers, nil)
	join.Add("member", []string{dn})
	if err := e.ldap.Modify(t.Context(), join); err != nil {
		t.Fatal(err)
	}

	sizes := make([]int64, 10)
	for i := range sizes {
		sizes[i] = 64 << 10
	}
	img := imageOf(t, sizes...)
	ref, err := name.ParseReference(e.httpAddr + "/" + repoName + ":ten-layers")
	if err != nil {
		t.Fatal(err)
	}
	before := userBinds(dn)
	if err := remote.Write(ref, img, e.remoteOpts(uid, password)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	if got := userBinds(dn) - before; got != 1 {
		t.Errorf("LDAP binds as %s during a 10-layer push: got %d; want 1", uid, got)
	}
}

func userBinds(dn string) int {
	n := 0
	for _, b := range e.ldap.BindDNs() {
		if strings.EqualFold(b, dn) {
			n++
		}
	}
	return n
}
