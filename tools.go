//go:build tools

package main

import (
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/ecr"
	_ "github.com/compose-spec/compose-go/v2/loader"
	_ "github.com/go-ldap/ldap/v3"
	_ "github.com/google/go-containerregistry/pkg/crane"
	_ "github.com/kelseyhightower/envconfig"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "golang.org/x/sync/singleflight"
)
