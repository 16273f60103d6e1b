# kube-egress-gateway in Rust. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
VENV := .tools/venv

.PHONY: help deps build generate lint check-generated test demo bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

deps: ## Install what a fresh machine lacks (apt packages, pinned tools); idempotent
	@hack/install-deps.sh

build: ## Build every crate and binary
	$(CARGO) build --workspace --all-targets

generate: ## Regenerate config/crd/*.yaml from the Rust types
	$(CARGO) run -q -p egress-api --bin crdgen -- --dir config/crd

lint: ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check-generated: deps ## Fail when config/crd is stale; check CRD shape and the examples offline
	$(CARGO) run -q -p egress-api --bin crdgen -- --dir config/crd --check
	$(VENV)/bin/kubernetes-validate --strict --quiet config/crd/*.yaml
	$(CARGO) run -q -p egressctl -- validate -f examples/

test: deps lint check-generated ## Everything CI runs: deps, lint, generated files, all tests
	@# The simulator's end-to-end tests run our real binaries: build them all first.
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

demo: deps ## The whole system on a simulated cluster with emulated Azure (root): crates/egress-sim/scenarios/demo.yaml
	@[ "$$(id -u)" = 0 ] || { echo "make demo: needs root (it builds network namespaces)" >&2; exit 1; }
	$(CARGO) build --workspace --bins
	target/debug/egress-sim run crates/egress-sim/scenarios/demo.yaml

bench: deps ## Run the benchmarks (as root; method and results in docs/benchmarks.md)
	@[ "$$(id -u)" = 0 ] || { echo "make bench: needs root (network namespaces, wireguard-go)" >&2; exit 1; }
	$(CARGO) bench -p egress-dataplane --bench peers

clean: ## Remove build output and installed tools
	$(CARGO) clean
	rm -rf .tools
