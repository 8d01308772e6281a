// Package ecremu is a local stand-in for Amazon ECR, for tests and the demo.
//
// An Emulator runs three listeners, on free loopback ports unless Config
// names others: the ECR API (AWS JSON 1.1 with real SigV4 verification, aimed
// at with AWS_ENDPOINT_URL_ECR), a registry front on HTTPS that checks ECR
// tokens the way ECR does and proxies to a docker-registry (see
// StartRegistry), and an "S3" endpoint that serves the pre-signed blob URLs
// the front redirects downloads to (or, with ServeBlobsDirectly, serves
// them itself). Uploads get ECR's quirks (uploads.go): a PATCH is answered
// 201, and in a chunked upload every part but the last must be at least
// 5 MiB. It records what a gateway must never do — forward a user's own
// credentials to ECR or any credentials to S3 — so tests
// can assert it did not happen.
package ecremu
