# vyperp: the two commands are `make devnet` (with the tooling work) and `make test`; both install what is missing.
# npm install (not npm ci): the lock records only the anvil binary package of the platform it was made on.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
STAMPS := .stamps
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: deps test test-units test-properties test-node fuzz bench bench-keepers clean devnet devnet-reset scenario scenarios

deps: $(STAMPS)/python $(STAMPS)/node $(STAMPS)/chromium

$(STAMPS)/python: pyproject.toml requirements.lock
	@mkdir -p $(STAMPS)
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

# Ape recompiles a contract when its own file changes, not when a module it
# imports does: any change under contracts/ clears the build cache.
CONTRACT_SOURCES := $(shell find contracts -name '*.vy' -o -name '*.vyi')
$(STAMPS)/contracts: $(CONTRACT_SOURCES)
	@mkdir -p $(STAMPS)
	rm -rf .build
	@touch $@

# Headless Chromium (Debian's package) opens a rendered scenario report in tests/e2e/test_scenarios.py.
$(STAMPS)/chromium:
	@mkdir -p $(STAMPS)
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@touch $@

$(STAMPS)/node: package.json package-lock.json
	@mkdir -p $(STAMPS)
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

## Whole suite, as three parallel jobs: the contracts in-process on titanoboa (tests/unit, and the
## property machines of tests/fuzz, each its own job) beside the Ape suite on a real anvil
## (tests/e2e: deployment, SDK, CLI, keepers and bots, devnet, scenarios, the README's commands),
## whose node and subprocess start-ups leave a core idle at times. Each job prints its own report,
## with its slowest tests, when it ends.
test: deps $(STAMPS)/contracts
	@echo "make test: tests/unit, tests/fuzz and tests/e2e as three jobs (reports follow as each ends)"
	@$(MAKE) --no-print-directory -j3 --output-sync=target test-units test-properties test-node

test-units: deps
	pytest tests/unit -p no:ape_test -q --durations=5

test-properties: deps
	pytest tests/fuzz -p no:ape_test -q --durations=5

test-node: deps $(STAMPS)/contracts
	ape test tests/e2e -q --durations=10

## Long fuzzing: every property of tests/fuzz with ten times the examples of `make test`, drawn
## afresh on each run (Hypothesis profile "long"; `make test` uses the derandomized "ci" profile).
## Titanoboa, in-process; prints the steps run and the invariants checked.
fuzz: deps
	VYPERP_FUZZ=long pytest tests/fuzz -p no:ape_test -q -s

## Gas per operation on anvil, written to docs/benchmarks.md.
bench: deps $(STAMPS)/contracts
	ape run gas_benchmark

## Liquidator latency after a crash among 1,000 and 10,000 accounts (minutes), into docs/benchmarks.md.
bench-keepers: deps $(STAMPS)/contracts
	ape run keeper_benchmark

## One scenario (scenarios/NAME.yaml) on a fresh anvil with the real contracts and keepers; the
## report goes to reports/NAME/index.html. SCENARIO_ARGS passes options (e.g. --reduced).
NAME ?= crash-50
SCENARIO_ARGS ?=
scenario: deps $(STAMPS)/contracts
	ape run scenario $(NAME) $(SCENARIO_ARGS)

## Every shipped scenario at full size, one after the other (reports/*/), then their verdicts and
## figures into docs/scenarios.md (about 15 minutes here).
scenarios: deps $(STAMPS)/contracts
	@for name in $$(ape run scenario --list); do ape run scenario $$name $(SCENARIO_ARGS) || exit 1; done
	python -m vyperp.scenarios.docs reports docs/scenarios.md

## Persistent devnet on DEVNET_PORT: anvil with its state in .devnet/, the deployment, keepers,
## simulated traders and the live dashboard. Ctrl-C stops it; the next run resumes the chain.
## DEVNET_ARGS passes options to `ape run devnet up` (e.g. --no-dashboard, --duration 60).
DEVNET_PORT ?= 8545
DEVNET_ARGS ?=
devnet: deps $(STAMPS)/contracts
	ape run devnet up --port $(DEVNET_PORT) $(DEVNET_ARGS)

## Forget the devnet: its chain state, logs and manifest (stop it first).
devnet-reset:
	rm -rf .devnet deployments/ethereum_local.json

clean:
	rm -rf $(VENV) node_modules $(STAMPS) .build .cache
