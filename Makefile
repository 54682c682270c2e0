# The two commands a newcomer runs (README): `make render` and `make test`.
# Each sets up .venv from the pinned requirements on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
OUT    ?= out

.PHONY: render test lint setup tools
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

render: setup
	$(PY) -m components render --stack all --out $(OUT)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

test: lint tools
	$(PY) -m pytest

# The pinned upstream programs the tests run (kube-apiserver, etcd, argo, ...), built
# from their Go modules into ~/.cache/release-pipeline/tools once per version
# (components/toolchain.py). The first run needs Go >= 1.26 and the Go module proxy.
tools: setup
	$(PY) -m components tools

# Validate services.yaml and every Pulumi.<stack>.yaml (no Pulumi, under a second):
# the pre-commit hook and the first CI job.
.PHONY: check
check: setup
	$(PY) -m components check

# Build and push the two tool images (images/<name>/Dockerfile) with the tags pinned in
# components/versions.py, once per version, by the platform team:
#   make images REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com/release-pipeline
# The registry's tags are immutable: bump the version in components/versions.py with
# every change to an image. PLATFORMS=linux/amd64,linux/arm64 for Graviton nodes too
# (needs a buildx builder that can build both).
REGISTRY  ?=
PLATFORMS ?= linux/amd64
image_ref = $(shell $(PY) -c 'from components.versions import $(1) as i; print(i.ref("$(REGISTRY)"))')

.PHONY: images
images: setup
	@test -n "$(REGISTRY)" || { echo "usage: make images REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com/release-pipeline" >&2; exit 2; }
	docker buildx build --push --platform $(PLATFORMS) --tag $(call image_ref,RELEASE_TOOLS) images/release-tools
	docker buildx build --push --platform $(PLATFORMS) --tag $(call image_ref,BUILDKIT_ECR) images/buildkit-ecr
