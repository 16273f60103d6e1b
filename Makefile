# kube-egress-gateway in Rust. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
VENV := .tools/venv
HELM := .tools/bin/helm
CHART := charts/kube-egress-gateway
# The values without defaults (Azure identifiers) for linting; docs/install.md has real ones.
CHART_TEST_VALUES := --set azureConfig.subscriptionId=sub,azureConfig.resourceGroup=rg,azureConfig.location=eastus,azureConfig.vnetName=vnet,azureConfig.subnetName=subnet
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE_REPO ?=

.PHONY: help deps build generate lint check-generated check-chart test test-uml uml-kernel images images-lock dockerfiles demo demo-images bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

deps: ## Install what a fresh machine lacks (apt packages, pinned tools); idempotent
	@hack/install-deps.sh

build: ## Build every crate and binary
	$(CARGO) build --workspace --all-targets

generate: ## Regenerate config/crd/*.yaml from the Rust types and copy them into the chart
	$(CARGO) run -q -p egress-api --bin crdgen -- --dir config/crd --policy $(CHART)/files/sgc-warnings.yaml
	rm -f $(CHART)/crds/*.yaml && cp config/crd/*.yaml $(CHART)/crds/

lint: ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check-generated: deps ## Fail when config/crd is stale; check CRD shape and the examples offline
	$(CARGO) run -q -p egress-api --bin crdgen -- --dir config/crd --policy $(CHART)/files/sgc-warnings.yaml --check
	@diff -r config/crd $(CHART)/crds >/dev/null || { echo "$(CHART)/crds differs from config/crd: run 'make generate'" >&2; exit 1; }
	$(VENV)/bin/kubernetes-validate --strict --quiet config/crd/*.yaml
	$(CARGO) run -q -p egressctl -- validate -f examples/

check-chart: deps ## helm lint --strict the chart (render, validation and RBAC tests: crates/testing/egress-install-tests)
	$(HELM) lint --strict $(CHART) $(CHART_TEST_VALUES)

test: deps lint check-generated check-chart images ## Everything CI runs: deps, lint, generated files, chart, images, all tests
	@# The simulator's end-to-end tests run our real binaries: build them all first.
	$(CARGO) build --workspace --bins
	@# The UML kernel of the kernel-WireGuard stage (built once per machine; egress-uml's own tests boot it).
	hack/uml/build-kernel.sh >/dev/null
	$(CARGO) test --workspace --no-fail-fast
	CARGO=$(CARGO) hack/uml/test-kernel-backend.sh

uml-kernel: deps ## Build the User-Mode Linux kernel with WireGuard (once per machine; cached in ~/.cache/kube-egress-gateway/uml)
	@hack/uml/build-kernel.sh

test-uml: deps ## The privileged data-plane, gateway-daemon and CNI tunnel tests again, with kernel WireGuard inside User-Mode Linux
	CARGO=$(CARGO) hack/uml/test-kernel-backend.sh

images: deps ## Build the 4 images as OCI archives in target/images, without Docker, twice (same digests); IMAGE_REPO=..., IMAGE_TAG=...
	IMAGE_REPO=$(IMAGE_REPO) IMAGE_TAG=$(IMAGE_TAG) hack/images.sh build

images-lock: deps ## Resolve the images' Debian packages again into docker/debian.lock (changes the images)
	hack/images.sh lock

dockerfiles: ## Regenerate docker/*.Dockerfile from docker/*.image (for Docker users)
	@for c in egress-operator egress-gateway-daemon egress-cni-manager kube-egress-cni; do \
	  hack/images.sh dockerfile $$c > docker/$$c.Dockerfile || exit 1; \
	done

demo: deps ## The whole system on a simulated cluster with emulated Azure (root): crates/testing/egress-sim/scenarios/demo.yaml
	@[ "$$(id -u)" = 0 ] || { echo "make demo: needs root (it builds network namespaces)" >&2; exit 1; }
	$(CARGO) build --workspace --bins
	target/debug/egress-sim run crates/testing/egress-sim/scenarios/demo.yaml $(DEMO_FLAGS)

demo-images: images ## make demo with the operator, cni-managers, gateway daemons and plugin from the images (podman)
	$(MAKE) demo DEMO_FLAGS="--images target/images"

bench: deps ## Run the benchmarks (as root; method and results in docs/benchmarks.md)
	@[ "$$(id -u)" = 0 ] || { echo "make bench: needs root (network namespaces, wireguard-go)" >&2; exit 1; }
	$(CARGO) bench -p egress-dataplane --bench peers
	@# Kernel WireGuard inside User-Mode Linux (docs/testing.md): peers for both backends side by side, tunnel throughput, e2e failover/restart.
	CARGO=$(CARGO) hack/uml/bench-kernel-backend.sh

clean: ## Remove build output and installed tools
	$(CARGO) clean
	rm -rf .tools
