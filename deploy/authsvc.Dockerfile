# syntax=docker/dockerfile:1
#
# authsvc: the nginx auth_request endpoint (Basic credentials checked against
# LDAP). Build context: the repository root.
#   docker build -f deploy/authsvc.Dockerfile --build-arg VERSION=1.2.3 .
# docker-compose.yml builds it as the `authsvc` service.

ARG VERSION=dev

FROM golang:1.26-bookworm AS build
ARG VERSION
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/authsvc ./cmd/authsvc

# Static binary, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION
LABEL org.opencontainers.image.title="aws-ecr-ldap authsvc" \
      org.opencontainers.image.description="nginx auth_request endpoint: Docker Basic credentials checked against LDAP" \
      org.opencontainers.image.source="https://github.com/toanc/aws-ecr-ldap" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/authsvc /usr/local/bin/authsvc
# Reachable by nginx over the compose network; nothing else is published.
ENV AUTH_LISTEN_ADDR=0.0.0.0:9000
EXPOSE 9000
USER 65532:65532
# No ENTRYPOINT: the command is exactly gateway.AuthsvcCommand().
ENTRYPOINT []
CMD ["authsvc"]
