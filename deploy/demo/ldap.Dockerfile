# syntax=docker/dockerfile:1
#
# demo-ldap: OpenLDAP (Debian's slapd) with the sample users and groups of
# internal/slapd, for `docker compose --profile demo`. Never for real use: the
# passwords are public. Build context: the repository root.
#   docker build -f deploy/demo/ldap.Dockerfile .

ARG VERSION=dev

FROM debian:bookworm-slim
ARG VERSION
LABEL org.opencontainers.image.title="aws-ecr-ldap demo LDAP" \
      org.opencontainers.image.description="OpenLDAP with the aws-ecr-ldap sample directory (public passwords, demo only)" \
      org.opencontainers.image.source="https://github.com/toanc/aws-ecr-ldap" \
      org.opencontainers.image.version="${VERSION}"
# The package's own configuration is not used; DEBIAN_FRONTEND avoids its
# questions. The directory is loaded at build time with slapadd (no memberof
# overlay here: the demo reads group entries, LDAP_GROUP_MEMBERSHIP=entries).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slapd ldap-utils \
    && rm -rf /var/lib/apt/lists/* /etc/ldap/slapd.d \
    && install -d -m 0700 -o openldap -g openldap /var/lib/demo-ldap /var/lib/demo-ldap/data
COPY deploy/demo/ldap/slapd.conf deploy/demo/ldap/directory.ldif /etc/ldap/demo/
RUN slaptest -Q -u -f /etc/ldap/demo/slapd.conf \
    && slapadd -q -f /etc/ldap/demo/slapd.conf -l /etc/ldap/demo/directory.ldif \
    && chown -R openldap:openldap /var/lib/demo-ldap
USER openldap:openldap
# Every interface of the container: authsvc reaches it as demo-ldap:3389 on
# the compose network; no port is published on the host.
EXPOSE 3389
ENTRYPOINT []
CMD ["slapd", "-d", "0", "-h", "ldap://0.0.0.0:3389/", "-f", "/etc/ldap/demo/slapd.conf"]
