# syntax=docker/dockerfile:1
#
# tokenwriter: fetches the ECR token, writes /etc/nginx/ecr/ecr.conf, runs
# `nginx -t` and reloads nginx. Build context: the repository root.
#   docker build -f deploy/tokenwriter.Dockerfile --build-arg VERSION=1.2.3 .
#
# `nginx -t` must check exactly what nginx will load, so this image starts from
# the same nginx image as deploy/nginx.Dockerfile and copies the same
# configuration files; only the tokenwriter binary is added.

ARG VERSION=dev

FROM golang:1.26-bookworm AS build
ARG VERSION
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/tokenwriter ./cmd/tokenwriter

FROM nginx:1.30
ARG VERSION
LABEL org.opencontainers.image.title="aws-ecr-ldap tokenwriter" \
      org.opencontainers.image.description="Writes the Amazon ECR token include for nginx, checks it with nginx -t and reloads nginx" \
      org.opencontainers.image.source="https://github.com/toanc/aws-ecr-ldap" \
      org.opencontainers.image.version="${VERSION}"
# tokenwriter runs as root with every capability dropped (docker-compose.yml).
# As root, `nginx -t` creates its temp directories and chowns them to the
# nginx user; without CAP_CHOWN that fails, so they exist here already, owned
# as nginx would make them (paths: deploy/nginx/local/http.conf).
RUN nginx -V 2>&1 | grep -q -- --with-http_auth_request_module \
    && test -s /etc/ssl/certs/ca-certificates.crt \
    && rm -f /etc/nginx/conf.d/default.conf \
    && install -d -m 0755 /etc/nginx/local /etc/nginx/ecr /etc/nginx/tls /run/nginx /var/cache/nginx \
    && for d in client_temp proxy_temp fastcgi_temp uwsgi_temp scgi_temp; do \
           install -d -m 0700 -o nginx -g root "/var/cache/nginx/$d"; \
       done
COPY nginx/nginx.conf /etc/nginx/nginx.conf
COPY deploy/nginx/local/main.conf deploy/nginx/local/http.conf deploy/nginx/local/listen.conf /etc/nginx/local/
COPY --from=build /out/tokenwriter /usr/local/bin/tokenwriter
# The base image stops nginx with SIGQUIT; a Go program would dump its
# goroutines on SIGQUIT, so stop tokenwriter with SIGTERM (signal.NotifyContext).
STOPSIGNAL SIGTERM
# The command is exactly gateway.TokenwriterCommand(); the one-shot
# tokenwriter-init service runs gateway.TokenwriterOnceCommand() instead.
ENTRYPOINT []
CMD ["tokenwriter"]
