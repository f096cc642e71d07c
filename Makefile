# The two commands of the README, plus the pieces they are made of.
PYTHON ?= python3

.PHONY: demo test install unit

install:  ## Debian packages, Python packages, Hadoop jars and the Kubernetes build (cached, idempotent)
	tests/testbed/install.sh

demo: install  ## start the embedded test bed and run the main job on it
	$(PYTHON) -m spark_secrets demo

test: install  ## every test: lint, unit tests and integration tests on the real test bed
	$(PYTHON) -m ruff check spark_secrets submit_steps tests benchmarks
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -ra --durations=60

unit:  ## unit tests only (no test bed)
	$(PYTHON) -m pytest -ra -m "not testbed"
