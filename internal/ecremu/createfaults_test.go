package ecremu_test

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"

	"github.com/toanc/aws-ecr-ldap/internal/ecremu"
)

func TestDenyCreateRepository(t *testing.T) {
	e := startEmulator(t, ecremu.Config{})
	client := ecrClient(t, e, testAccessKey, testSecret, testRegion)
	e.DenyCreateRepository("team/denied")

	_, err := client.CreateRepository(t.Context(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/denied")})
	ae, ok := errors.AsType[smithy.APIError](err)
	if !ok || ae.ErrorCode() != "AccessDeniedException" || ae.ErrorMessage() != e.DeniedCreateMessage("team/denied") {
		t.Fatalf("create of a denied name: got %v; want AccessDeniedException %q", err, e.DeniedCreateMessage("team/denied"))
	}
	if got := e.Repositories(); len(got) != 0 {
		t.Errorf("repositories after a denied create: got %v; want none", got)
	}
	if _, err := client.CreateRepository(t.Context(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/other")}); err != nil {
		t.Errorf("create of another name: got %v; want success", err)
	}
	e.AllowCreateRepository("team/denied")
	if _, err := client.CreateRepository(t.Context(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/denied")}); err != nil {
		t.Errorf("create after AllowCreateRepository: got %v; want success", err)
	}
	if got := e.APICalls("CreateRepository"); got != 3 {
		t.Errorf("APICalls(CreateRepository): got %d; want 3", got)
	}
	if got := e.APICalls("DescribeRepositories"); got != 0 {
		t.Errorf("APICalls(DescribeRepositories): got %d; want 0", got)
	}
}
