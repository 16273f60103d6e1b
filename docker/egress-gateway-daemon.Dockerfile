# syntax=docker/dockerfile:1.7
# Build context: the repository root (`make images`, or `docker build -f docker/NAME.Dockerfile .`).
# See docker/README.md for the image layout and why each base image was chosen.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p egress-gateway-daemon --bin egress-gateway-daemon \
 && install -D -m 0755 target/release/egress-gateway-daemon /out/egress-gateway-daemon

# Debian slim rather than distroless: the daemon drives nftables through the nft binary, the
# chart's init container creates the gateway namespace with ip(8) and sh, and the userspace
# WireGuard backend runs wireguard-go. Root: it needs NET_ADMIN and SYS_ADMIN (chart).
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables iproute2 wireguard-go \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/egress-gateway-daemon /usr/local/bin/egress-gateway-daemon
ENTRYPOINT ["/usr/local/bin/egress-gateway-daemon"]
