# Everything runs from a fresh clone: `make demo` and `make test` install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF_VERSION := v1.50.0
BUF := $(CURDIR)/.cache/bin/buf
GRPCURL_VERSION := v1.9.4
GRPCURL := $(CURDIR)/.cache/bin/grpcurl
TOXIPROXY_VERSION := v2.12.0
TOXIPROXY := $(CURDIR)/.cache/bin/toxiproxy-server
PROTOS := $(shell find protos -name '*.proto' | sort)
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen/python:$(CURDIR)/libs:$(CURDIR)/clients

.PHONY: demo up down status test faults faults-long fuzz lint k8s-validate bench ab protos cli deps system-packages client-tools toxiproxy clean

## demo: start Kafka, PostgreSQL and the services, then run a regulation through them
demo: up
	$(PY) -m deploy.local.demo

## up / down / status: the local platform in the background (data kept in .data/)
up: deps protos cli
	$(PY) -m deploy.local.supervisor up

down: deps
	$(PY) -m deploy.local.supervisor down

status: deps
	$(PY) -m deploy.local.supervisor status

## test: every test, against a real Kafka broker and PostgreSQL server of its own
test: deps protos cli system-packages client-tools toxiproxy
	$(PY) -m pytest

## faults: the fault suites alone (services killed, PostgreSQL restarted, brokers killed,
## network faults); `make test` runs their short variants too. faults-long: minutes of load.
faults: deps protos cli toxiproxy
	$(PY) -m pytest -m faults tests/faults

faults-long: deps protos cli toxiproxy
	FAULTS_DURATION_S=300 FAULTS_ROUNDS=5 $(PY) -m pytest -m faults tests/faults

## fuzz: the property and fuzz tests with many more examples than CI's (HYPOTHESIS_PROFILE=fuzz)
fuzz: deps protos cli
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/fuzz

system-packages:
	bash deploy/local/system-packages.sh

## client-tools: grpcurl into .cache/bin (docs/real-clients.md); kcat comes with system-packages
client-tools: $(GRPCURL)

## k8s-validate: Kubernetes manifests, alerts, Dockerfiles and compose file, offline (k8s/README.md)
k8s-validate: deps protos
	bash k8s/validate.sh

## bench: every benchmark in tests/bench against baselines measured in the same run (Kafka's
## perf tools come with the broker's jars, ghz is built on first use); one table, and
## tests/bench/results/latest.json
bench: deps protos
	$(PY) -m tests.bench

## ab: two revisions measured by one benchmark in interleaved pairs (tests/bench/ab.py), e.g.
##   make ab AB="HEAD~1 HEAD --pairs 6 -- --events 2000 --loads 200 --seconds 30 --replicas 1"
ab: deps protos
	$(PY) -m tests.bench.ab $(AB)

## lint: buf lint on the protobuf contracts, then the event contracts (AsyncAPI, buf breaking)
lint: $(BUF) protos
	cd protos && $(BUF) lint
	bash deploy/tools/validate_contracts.sh

## protos: generate Python code (with .pyi stubs) into gen/python; never edited by hand
protos: gen/python/.generated

gen/python/.generated: $(PROTOS) $(VENV)/.installed
	rm -rf gen/python && mkdir -p gen/python
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=gen/python --pyi_out=gen/python \
		--grpc_python_out=gen/python $(PROTOS)
	touch $@

## cli: installs the `policyctl` command into .venv/bin (clients/policyctl; docs/cli.md)
cli: $(VENV)/bin/policyctl

$(VENV)/bin/policyctl: pyproject.toml gen/python/.generated $(wildcard clients/*/__init__.py libs/*/__init__.py)
	$(PY) -m pip install -q --no-deps -e .
	touch $@

deps: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

$(BUF):
	GOBIN=$(CURDIR)/.cache/bin go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(GRPCURL):
	GOBIN=$(CURDIR)/.cache/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

## toxiproxy: the TCP proxy of the network-fault tests, into .cache/bin
toxiproxy: $(TOXIPROXY)

# The module's command is named `server`; it is kept under a name that says what it is.
$(TOXIPROXY):
	GOBIN=$(CURDIR)/.cache/toxiproxy go install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION)
	mkdir -p $(dir $@) && mv $(CURDIR)/.cache/toxiproxy/server $@

## clean: remove generated code and local data (stop the platform first: make down)
clean:
	rm -rf gen .data
