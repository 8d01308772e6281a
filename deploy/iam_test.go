package deploy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestIAMPolicies: valid policy documents; both may get a token; pull-only
// cannot write; push can.
func TestIAMPolicies(t *testing.T) {
	type statement struct {
		Sid      string
		Effect   string
		Action   any
		Resource any
	}
	type policy struct {
		Version   string
		Statement []statement
	}
	strs := func(v any) []string {
		switch v := v.(type) {
		case string:
			return []string{v}
		case []any:
			var out []string
			for _, s := range v {
				out = append(out, s.(string))
			}
			return out
		}
		return nil
	}
	pull := []string{"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}
	push := []string{"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"}
	for _, tc := range []struct {
		file         string
		want, absent []string
	}{
		{"iam/ecr-pull-only.json", pull, append(slices.Clone(push), "ecr:BatchDeleteImage", "ecr:CreateRepository")},
		{"iam/ecr-push.json", append(slices.Clone(pull), push...), []string{"ecr:CreateRepository"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(readFile(t, tc.file)))
			dec.DisallowUnknownFields()
			var p policy
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if p.Version != "2012-10-17" {
				t.Errorf("Version got %q; want 2012-10-17", p.Version)
			}
			actions := map[string][]string{}
			for _, s := range p.Statement {
				if s.Effect != "Allow" {
					t.Errorf("Effect got %q; want Allow", s.Effect)
				}
				for _, a := range strs(s.Action) {
					actions[a] = strs(s.Resource)
				}
			}
			if got := actions["ecr:GetAuthorizationToken"]; !slices.Equal(got, []string{"*"}) {
				t.Errorf("ecr:GetAuthorizationToken on %q; want on * (it has no resource)", got)
			}
			for _, a := range tc.want {
				res, ok := actions[a]
				if !ok {
					t.Errorf("%s missing", a)
					continue
				}
				for _, r := range res {
					if !strings.HasPrefix(r, "arn:aws:ecr:") || !strings.Contains(r, ":repository/") {
						t.Errorf("%s on %q; want repository ARNs", a, r)
					}
				}
			}
			for _, a := range tc.absent {
				if _, ok := actions[a]; ok {
					t.Errorf("%s granted; want it absent", a)
				}
			}
		})
	}
}
