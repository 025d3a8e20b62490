# microctl. The two commands a newcomer needs:
#   make demo   bring the test environment up and run microctl against it
#   make test   bring the test environment up, vet, and run every test with -race
SHELL := /bin/bash
GO ?= go
BIN := bin
TESTENV := scripts/testenv.sh
# GOFLAGS may carry -buildvcs=false (it does on some CI images); the version
# command needs the VCS stamp, so ask for it explicitly.
BUILDFLAGS := -buildvcs=auto -trimpath
IMAGE_TAG ?= dev

.PHONY: all build install test unit vet demo demo-cluster demo-env images testenv-up testenv-down clean fmt

all: build

build:
	$(GO) build $(BUILDFLAGS) -o $(BIN)/microctl .

install:
	$(GO) install $(BUILDFLAGS) .

vet:
	$(GO) vet ./...

# Unit tests only: no Docker, no Consul.
unit:
	$(GO) test -short ./...

# Tests need a swarm manager; the demo starts without one so that its swarm
# step shows `microctl swarm init` doing the work.
testenv-up:
	$(TESTENV) up --swarm

demo-env:
	$(TESTENV) up

testenv-down:
	$(TESTENV) down

# Static binaries and FROM-scratch images of the examples; nothing is pulled.
images: build
	scripts/build-images.sh $(IMAGE_TAG)

test: testenv-up images
	$(GO) vet ./...
	MICROCTL_REQUIRE_INFRA=1 MICROCTL_IT_DOCKER=1 $(TESTENV) exec $(GO) test -race -count=1 -timeout 60m ./...

demo: demo-env images
	$(TESTENV) exec scripts/demo.sh

# The demo stack on three engines in network namespaces (needs root); the
# lab is left up: scripts/cluster.sh down removes it. demo-env first: it
# builds the Consul binary the images need.
demo-cluster: demo-env images
	scripts/demo-cluster.sh

fmt:
	gofmt -l -w .

clean:
	rm -rf $(BIN)
