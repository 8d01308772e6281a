# aws-ecr-ldap. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
CMDS := authsvc tokenwriter gateway ecr-emulator demo
# What the tests and the demo need from Debian. Nothing here starts a service.
DEB_PACKAGES := slapd ldap-utils nginx docker-registry skopeo ca-certificates openssl curl

.PHONY: help build test test-e2e run demo deps nginx-current bench bench-load clean fmt vet images

help:
	@echo "make demo   try it: local OpenLDAP + registry + ECR emulator + the gateway"
	@echo "make run    run the gateway natively (nginx, authsvc, tokenwriter) from the environment"
	@echo "make test   unit and end-to-end tests (installs missing Debian packages as root)"
	@echo "make build  build $(CMDS) into $(BIN)/"
	@echo "make bench  Go benchmarks; make bench-load: auth_request load test with wrk"
	@echo "make images build the authsvc, nginx and tokenwriter images (needs Docker)"

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

# deps installs the Debian packages that are missing (as root), or names them.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing; run 'sudo make deps'"; exit 1; fi; \
	fi

# nginx-current: the tests run a current nginx (>= 1.27.4, as in the images;
# Debian 12 has 1.22) unpacked from Debian unstable's package under .cache/
# (.ci/nginx-current; nothing is installed system-wide). Without it they run
# the system's nginx, and the reload tests cannot demand zero lost requests.
NGINX_CURRENT := $(CURDIR)/.cache/nginx
TEST_PATH := $(NGINX_CURRENT)/bin:$(PATH)
nginx-current:
	@.ci/nginx-current $(NGINX_CURRENT) >/dev/null || { \
	  if [ "$$CI" = true ]; then echo "nginx-current failed: CI needs nginx >= 1.27.4"; exit 1; fi; \
	  echo "warning: no current nginx; tests use $$(command -v nginx)"; }

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

test: deps nginx-current vet
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	PATH="$(TEST_PATH)" $(GO) test -count=1 -timeout 20m ./...

# Only the end-to-end suite (real slapd, nginx, docker-registry, emulator).
test-e2e: deps nginx-current
	PATH="$(TEST_PATH)" $(GO) test -count=1 -timeout 20m -v ./internal/e2e/

bench: deps nginx-current
	PATH="$(TEST_PATH)" $(GO) test -run '^$$' -bench . -benchmem ./...

# bench-load: auth_request throughput through nginx with wrk (BENCHMARKS.md).
bench-load: deps nginx-current
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk"; exit 1; }
	PATH="$(TEST_PATH)" LOADTEST=1 $(GO) test -count=1 -v -run TestAuthRequestLoad ./internal/loadtest/

# run: the gateway natively, in the foreground, configured by the environment
# (see README). Stop it with Ctrl-C.
run: build
	$(BIN)/gateway

# demo: everything on loopback, no AWS account or directory needed.
demo: deps build
	$(BIN)/demo

# images: the three container images of deploy/ (deploy/README.md), tagged
# $(IMAGE_REPOSITORY)/<name>:$(VERSION); nothing is pushed. docker-compose.yml
# uses the same two variables, but its VERSION defaults to dev, not to
# `git describe`: `make images VERSION=dev`, or set both in .env. For a
# registry: make images IMAGE_REPOSITORY=<registry>/aws-ecr-ldap VERSION=1.2.0,
# then docker push, and set the same names in deploy/kubernetes/kustomization.yaml.
IMAGE_REPOSITORY ?= aws-ecr-ldap
IMAGES := authsvc nginx tokenwriter
images:
	@for x in $(IMAGES); do \
	  echo "docker build -f deploy/$$x.Dockerfile -t $(IMAGE_REPOSITORY)/$$x:$(VERSION) ."; \
	  docker build -f deploy/$$x.Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE_REPOSITORY)/$$x:$(VERSION) . || exit 1; \
	done

clean:
	rm -rf $(BIN) .run
