# syntax=docker/dockerfile:1.7
# GENERATED from docker/egress-operator.image by `make dockerfiles` (hack/images.sh dockerfile egress-operator):
# edit that file, not this one; a test checks that they agree. For machines with Docker:
# `make images` builds the same content without Docker. Build context: the repository root
# (`docker build -f docker/egress-operator.Dockerfile --build-arg REVISION=$(git rev-parse HEAD) .`).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    hack/images.sh binary egress-operator /out/egress-operator

# The root filesystem from the exact .debs of docker/debian.lock, by the same script as make images.
FROM ${DEBIAN_IMAGE} AS rootfs
COPY Cargo.toml /src/Cargo.toml
COPY hack/images.sh /src/hack/images.sh
COPY hack/images/ /src/hack/images/
COPY docker/ /src/docker/
COPY --from=build /out/egress-operator /out/egress-operator
RUN apt-get update -qq && /src/hack/images.sh rootfs egress-operator /rootfs /out/egress-operator

FROM scratch
COPY --from=rootfs /rootfs/ /
ARG REVISION=unknown
LABEL org.opencontainers.image.title="egress-operator" \
      org.opencontainers.image.description="kube-egress-gateway operator: StaticGatewayConfigurations to Azure load balancer, prefixes and gateway NICs" \
      org.opencontainers.image.source="https://github.com/kube-egress-gateway-rs/kube-egress-gateway" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/egress-operator"]
