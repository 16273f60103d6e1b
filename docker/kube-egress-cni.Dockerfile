# syntax=docker/dockerfile:1.7
# Build context: the repository root (`make images`, or `docker build -f docker/NAME.Dockerfile .`).
# See docker/README.md for the image layout and why each base image was chosen.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=busybox:1.36-musl

# The plugin runs on the host (executed by the container runtime from /opt/cni/bin), whatever its
# libc: build it fully static for musl.
FROM ${RUST_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
 && rustup target add "$target" \
 && cargo build --release --locked -p kube-egress-cni --bin kube-egress-cni --target "$target" \
 && install -D -m 0755 "target/$target/release/kube-egress-cni" /out/kube-egress-cni

# Only a carrier: the chart's init container copies /kube-egress-cni into the host's CNI bin
# directory with busybox sh/cp/mv (temporary name, then rename).
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/kube-egress-cni /kube-egress-cni
USER 0:0
ENTRYPOINT ["/bin/sh"]
