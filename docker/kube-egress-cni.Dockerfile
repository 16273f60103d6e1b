# syntax=docker/dockerfile:1.7
# GENERATED from docker/kube-egress-cni.image by `make dockerfiles` (hack/images.sh dockerfile kube-egress-cni):
# edit that file, not this one; a test checks that they agree. For machines with Docker:
# `make images` builds the same content without Docker. Build context: the repository root
# (`docker build -f docker/kube-egress-cni.Dockerfile --build-arg REVISION=$(git rev-parse HEAD) .`).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    hack/images.sh binary kube-egress-cni /out/kube-egress-cni

# The root filesystem from the exact .debs of docker/debian.lock, by the same script as make images.
FROM ${DEBIAN_IMAGE} AS rootfs
COPY Cargo.toml /src/Cargo.toml
COPY hack/images.sh /src/hack/images.sh
COPY hack/images/ /src/hack/images/
COPY docker/ /src/docker/
COPY --from=build /out/kube-egress-cni /out/kube-egress-cni
RUN apt-get update -qq && /src/hack/images.sh rootfs kube-egress-cni /rootfs /out/kube-egress-cni

FROM scratch
COPY --from=rootfs /rootfs/ /
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kube-egress-cni" \
      org.opencontainers.image.description="kube-egress-gateway chained CNI plugin, copied to the node's CNI bin directory by the chart" \
      org.opencontainers.image.source="https://github.com/kube-egress-gateway-rs/kube-egress-gateway" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0 AND LGPL-2.1-or-later"
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /
USER 0:0
ENTRYPOINT ["/bin/sh"]
