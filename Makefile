# The two commands of the README, plus helpers. Everything runs in .venv (created on demand).
.PHONY: demo test lint protos bench clean

demo:            ## install everything and run the demo with embedded backends
	bash scripts/demo.sh

test:            ## install the test dependencies and run the whole suite (what CI runs)
	bash scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

protos:          ## regenerate the checked-in protobuf stubs from proto/
	PYTHON=.venv/bin/python bash scripts/gen_protos.sh

bench:
	.venv/bin/inferflow bench

clean:
	rm -rf .venv .venv-mlserver build *.egg-info
