package deploy

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestIAMPolicies: valid policy documents, each granting exactly its own
// actions: pull-only reads, push reads and writes, delete (attached next to
// push, only where deleting through the gateway is wanted) deletes,
// create-on-push (authsvc's role, only with AUTH_CREATE_REPOSITORIES) looks
// up and creates repositories. Nothing the gateway never uses (DescribeImages).
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
	token := []string{"ecr:GetAuthorizationToken"}
	// ListImages: the registry API's tags/list.
	pull := []string{"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:ListImages"}
	push := []string{"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"}
	type iamCase struct {
		file string
		want []string // exactly these actions
	}
	cases := []iamCase{
		{"iam/ecr-pull-only.json", slices.Concat(token, pull)},
		{"iam/ecr-push.json", slices.Concat(token, pull, push)},
		{"iam/ecr-delete.json", []string{"ecr:BatchDeleteImage"}},
		{"iam/ecr-create-repository.json", []string{"ecr:DescribeRepositories", "ecr:CreateRepository"}},
	}
	files, err := filepath.Glob("iam/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !slices.ContainsFunc(cases, func(c iamCase) bool { return c.file == f }) {
			t.Errorf("%s is not checked here; add it to the table", f)
		}
	}
	for _, tc := range cases {
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
			got := slices.Sorted(maps.Keys(actions))
			if want := slices.Sorted(slices.Values(tc.want)); !slices.Equal(got, want) {
				t.Errorf("actions got %q; want exactly %q", got, want)
			}
			for a, res := range actions {
				if a == "ecr:GetAuthorizationToken" {
					if !slices.Equal(res, []string{"*"}) {
						t.Errorf("%s on %q; want on * (it has no resource)", a, res)
					}
					continue
				}
				for _, r := range res {
					if !strings.HasPrefix(r, "arn:aws:ecr:") || !strings.Contains(r, ":repository/") {
						t.Errorf("%s on %q; want repository ARNs", a, r)
					}
				}
			}
		})
	}
}
