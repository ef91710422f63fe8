# Unified Bridge: `make run` starts a frontend on the embedded store, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fallback test-failover check-proto proto lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/bridge-server $(ARGS)

proto: install
	PYTHON=$(BIN)/python scripts/gen_proto.sh

# Regenerates into a temporary tree and fails when the committed code differs.
check-proto: install
	@tmp=$$(mktemp -d) && PYTHON=$(BIN)/python scripts/gen_proto.sh $$tmp >/dev/null \
	  && for f in unified_bridge_pb2.py unified_bridge_pb2.pyi unified_bridge_pb2_grpc.py unified_bridge_pb2_grpc.pyi; do \
	       cmp -s $$tmp/unified_bridge/proto/$$f sdk/unified_bridge/proto/$$f \
	         || { echo "generated $$f is stale: run 'make proto' and commit"; rm -rf $$tmp; exit 1; }; \
	     done; rm -rf $$tmp; echo "generated protobuf code is up to date"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: check-proto lint typecheck pytest

# The suite as on a machine without redis-server: fakeredis's TCP server, real-Redis tests skipped.
test-fallback: install
	env -u BRIDGE_TEST_REDIS_URL $(BIN)/python -m pytest -p tests.harness.without_redis_binaries -rs

# Kills Redis masters under writes (Sentinel and Cluster failover; minutes): not part of `make test`.
test-failover: install
	$(BIN)/pytest -m failover tests/failover --timeout 600 -ra

bench: install
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
