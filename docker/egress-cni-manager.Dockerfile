# syntax=docker/dockerfile:1.7
# Build context: the repository root (`make images`, or `docker build -f docker/NAME.Dockerfile .`).
# See docker/README.md for the image layout and why each base image was chosen.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p egress-cni-manager --bin egress-cni-manager \
 && install -D -m 0755 target/release/egress-cni-manager /out/egress-cni-manager

# No shell. Runs as UID 0 with every capability dropped (the chart's securityContext): the host's
# /etc/cni/net.d and the root-only plugin socket directory are root-owned.
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/egress-cni-manager /usr/local/bin/egress-cni-manager
ENTRYPOINT ["/usr/local/bin/egress-cni-manager"]
