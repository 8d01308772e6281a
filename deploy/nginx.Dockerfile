# syntax=docker/dockerfile:1
#
# nginx: the data path (TLS, auth_request to authsvc, proxy to ECR).
# Build context: the repository root.
#   docker build -f deploy/nginx.Dockerfile --build-arg VERSION=1.2.3 .
#
# /etc/nginx is the configuration directory of ARCHITECTURE.md:
#   nginx.conf          nginx/nginx.conf, the file ops edit
#   local/http.conf     deploy/nginx/local/http.conf (authsvc upstream, CA bundle)
#   local/listen.conf   deploy/nginx/local/listen.conf (ports 80 and 443, TLS)
#   ecr/ecr.conf        written by tokenwriter on the `ecr-token` volume
#   tls/tls.crt, .key   mounted by docker-compose.yml
# deploy/tokenwriter.Dockerfile starts from the same image with the same files,
# because tokenwriter runs `nginx -t` on this configuration before every reload.

ARG VERSION=dev

FROM nginx:1.30
ARG VERSION
LABEL org.opencontainers.image.title="aws-ecr-ldap nginx" \
      org.opencontainers.image.description="nginx in front of Amazon ECR with LDAP authentication (auth_request)" \
      org.opencontainers.image.source="https://github.com/toanc/aws-ecr-ldap" \
      org.opencontainers.image.version="${VERSION}"
# Fail the build, not the first request, if the base image ever lacks what the
# configuration and the compose healthcheck rely on.
RUN nginx -V 2>&1 | grep -q -- --with-http_auth_request_module \
    && test -s /etc/ssl/certs/ca-certificates.crt \
    && command -v curl >/dev/null \
    && rm -f /etc/nginx/conf.d/default.conf \
    && install -d -m 0755 /etc/nginx/local /etc/nginx/ecr /etc/nginx/tls /run/nginx
COPY nginx/nginx.conf /etc/nginx/nginx.conf
COPY deploy/nginx/local/main.conf deploy/nginx/local/http.conf deploy/nginx/local/listen.conf /etc/nginx/local/
EXPOSE 80 443
# The official entrypoint script rewrites files under /etc/nginx/conf.d; this
# configuration does not use them. The command is exactly
# gateway.NginxCommand("/etc/nginx", "/run/nginx/nginx.pid"); the base image's
# STOPSIGNAL SIGQUIT (graceful shutdown) is kept.
ENTRYPOINT []
CMD ["nginx", "-e", "stderr", "-p", "/etc/nginx/", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"]
