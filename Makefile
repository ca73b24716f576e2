# escalation-stream: every target is documented; `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV ?= .venv
PYTHON := $(VENV)/bin/python
KAFKA := deploy/kafka/kafka.sh

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(PYTHON): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,train]'
	@touch $(PYTHON)

.PHONY: setup
setup: $(PYTHON) ## Create .venv and install the project with its dev tools
	@$(PYTHON) -c 'import stream, faust, confluent_kafka, rocksdict; print("environment ready")'

.PHONY: kafka-up
kafka-up: ## Start the local single-node Kafka (KRaft) on 127.0.0.1:9092 (fetches jars once)
	$(KAFKA) up

.PHONY: kafka-down
kafka-down: ## Stop the local Kafka
	$(KAFKA) down

.PHONY: topics
topics: setup ## Create or update the topics of topics/ and report drift
	$(VENV)/bin/escalation topics

.PHONY: test
test: setup ## Run unit and integration tests (starts the local broker, stops it after if it started it)
	@started=0; if ! $(KAFKA) status >/dev/null 2>&1; then $(KAFKA) up && started=1; fi; \
	ESCALATION_REQUIRE_BROKER=1 $(PYTHON) -m pytest -q; rc=$$?; \
	if [ $$started = 1 ]; then $(KAFKA) down; fi; exit $$rc

.PHONY: unit
unit: setup ## Run the unit tests only (no broker)
	$(PYTHON) -m pytest -q -m "not integration"

.PHONY: policy-test
policy-test: setup ## Run the policy test suite policy/tests/ against policy/default.yaml
	$(VENV)/bin/escalation policy test policy/tests --policy policy/default.yaml

# The test helpers other tests build on are type-checked with the package (tests/ has no
# __init__.py, so their module names come from their paths).
TYPED_TEST_HELPERS := tests/commands.py tests/faults.py tests/properties.py tests/integration/kafka_helpers.py tests/integration/private_broker.py

.PHONY: lint
lint: setup ## ruff format check, ruff lint, mypy --strict on all of stream/ and the shared test helpers
	$(VENV)/bin/ruff format --check stream tests bench deploy train
	$(VENV)/bin/ruff check stream tests bench deploy train
	$(VENV)/bin/mypy --strict --explicit-package-bases stream $(TYPED_TEST_HELPERS)

.PHONY: demo
demo: setup ## Broker, topics, worker, a few thousand replayed conversations, a summary; stops all at the end
	$(PYTHON) -m stream.demo

.PHONY: bench
bench: setup ## Throughput and latency of the worker vs a bare passthrough on the local broker (not a test)
	@started=0; if ! $(KAFKA) status >/dev/null 2>&1; then $(KAFKA) up && started=1; fi; \
	$(PYTHON) bench/worker_bench.py; rc=$$?; \
	if [ $$started = 1 ]; then $(KAFKA) down; fi; exit $$rc

MUTATION_VENV ?= .venv-mutation
JOBS ?= $(shell nproc)
MUTATED_COMMIT := $(shell git rev-parse HEAD 2>/dev/null)

# mutmut 3.8 needs a newer click than faust-streaming allows: it gets an environment of its own.
$(MUTATION_VENV)/bin/mutmut: pyproject.toml
	python3 -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/pip install -q --upgrade pip
	$(MUTATION_VENV)/bin/pip install -q --group mutation
	@touch $@

# MUTANTS: mutant names or globs to run (default all), e.g. MUTANTS='"stream.core.step.*"'.
MUTANTS ?=
MUTMUT_RUN = ESCALATION_HYPOTHESIS_PROFILE=mutation $(MUTATION_VENV)/bin/mutmut run --max-children $(JOBS) $(MUTANTS)

.PHONY: mutation
mutation: $(MUTATION_VENV)/bin/mutmut ## Mutation testing of the decision rules (takes minutes; not in `make test`): bench/results/mutation.json
	rm -rf mutants
	$(MUTMUT_RUN)
	$(MUTATION_VENV)/bin/python bench/mutation_report.py --min-score 0.9 --commit $(MUTATED_COMMIT) --command '$(strip $(MUTMUT_RUN))'

.PHONY: dashboards
dashboards: setup ## Regenerate the Grafana dashboard, Prometheus alert rules and scrape configs
	$(PYTHON) deploy/grafana/generate.py

.PHONY: train-signal
train-signal: setup ## Retrain the turn signal's weights from ../shared/data (deterministic; writes stream/models/)
	$(PYTHON) train/train_signal.py

.PHONY: choose-signal
choose-signal: setup ## Compare the turn signal's variants by grouped cross-validation on the training portion (slow; bench/results/signal_cv.json)
	$(PYTHON) train/choose_signal.py

.PHONY: signals
signals: setup ## Measure the turn signal against its baselines on the held-back split (bench/results/signals.json)
	$(PYTHON) bench/signals.py

.PHONY: calibrate-demo
calibrate-demo: setup ## The calibration loop on the simulated world: 3 monthly reviews from a financial threshold of 0.99 and of 0.60
	$(PYTHON) -m stream.calibration.loop --out bench/results/calibration_loop.json

.PHONY: clean
clean: ## Remove local state (worker data, broker data); keeps .venv and jars
	rm -rf data out mutants
	$(KAFKA) reset
