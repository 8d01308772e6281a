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

# A shell is needed by ecr-emulator-demo (see deploy/demo/ecr-emulator-demo.sh).
FROM debian:bookworm-slim
ARG VERSION
LABEL org.opencontainers.image.title="aws-ecr-ldap demo ECR emulator" \
      org.opencontainers.image.description="Local Amazon ECR stand-in for the aws-ecr-ldap demo (public demo credentials)" \
      org.opencontainers.image.source="https://github.com/toanc/aws-ecr-ldap" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ecr-emulator /usr/local/bin/ecr-emulator
COPY deploy/demo/ecr-emulator-demo.sh /usr/local/bin/ecr-emulator-demo
RUN chmod 0755 /usr/local/bin/ecr-emulator-demo \
    && install -d -m 0755 -o 65532 -g 65532 /demo
USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT []
CMD ["ecr-emulator-demo", "-backend", "http://127.0.0.1:5001", "-create-on-push", "-repos", "demo/hello"]
