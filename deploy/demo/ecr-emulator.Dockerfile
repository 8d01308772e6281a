# syntax=docker/dockerfile:1
#
# demo-ecr: the project's ECR emulator (cmd/ecr-emulator) in front of the
# demo-registry service, for `docker compose --profile demo`. Build context:
# the repository root.
#   docker build -f deploy/demo/ecr-emulator.Dockerfile --build-arg VERSION=dev .

ARG VERSION=dev

FROM golang:1.26-bookworm AS build
ARG VERSION
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/ecr-emulator ./cmd/ecr-emulator

# Not distroless: the compose health check runs `test -s /demo/ecr-ca.pem`.
FROM debian:bookworm-slim
ARG VERSION
LABEL org.opencontainers.image.title="aws-ecr-ldap demo ECR emulator" \
      org.opencontainers.image.description="Local Amazon ECR stand-in for the aws-ecr-ldap demo (public demo credentials)" \
      org.opencontainers.image.source="https://github.com/toanc/aws-ecr-ldap" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ecr-emulator /usr/local/bin/ecr-emulator
RUN install -d -m 0755 -o 65532 -g 65532 /demo
USER 65532:65532
STOPSIGNAL SIGTERM
# The ports and names of the compose demo (docker-compose.yml, demo-ecr).
EXPOSE 8080 5443 5002
ENTRYPOINT []
CMD ["ecr-emulator", "-backend", "http://demo-registry:5000", "-create-on-push", "-repos", "demo/hello", \
     "-api-addr", "0.0.0.0:8080", "-registry-addr", "0.0.0.0:5443", "-s3-addr", "0.0.0.0:5002", \
     "-registry-host", "demo-ecr:5443", "-s3-host", "localhost:5002", "-ca-out", "/demo/ecr-ca.pem"]
