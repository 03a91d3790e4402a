# The two commands of the README, plus helpers. Everything runs in .venv (created on demand).
.PHONY: demo demo-feast test test-fast check lint lock protos bench image-smoke clean

demo:            ## install everything and run the demo with embedded backends
	bash scripts/demo.sh

test:            ## install the test dependencies and run the whole suite (what CI runs)
	bash scripts/test.sh

test-fast:       ## unit tests only (no etcd, broker or model server; needs .venv from `make test` or `make demo`)
	.venv/bin/pytest -q -m "not integration"

check:           ## lint + import contracts + types + the lock matches the pyprojects
	.venv/bin/python scripts/lock_inputs.py --check
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports --no-cache --no-logo && .venv/bin/mypy

lint: check

lock:            ## re-resolve requirements/lock.txt after changing a pyproject's dependencies (UPGRADE=1 for newest)
	bash scripts/lock.sh

image-smoke:     ## build the container image (docker, else buildah) and serve one request from it
	bash scripts/image-smoke.sh

protos:          ## regenerate the checked-in protobuf stubs from proto/
	PYTHON=.venv/bin/python bash scripts/gen_protos.sh

bench:
	.venv/bin/inferflow bench

clean:
	rm -rf .venv .venv-mlserver .venv-feast .venv-triton build *.egg-info

demo-feast:      ## the demo with the example's features in Feast (.venv-feast; see examples/feast/)
	bash -c 'source scripts/venv.sh && venv_feast'
	.venv-feast/bin/python examples/feast/demo.py
