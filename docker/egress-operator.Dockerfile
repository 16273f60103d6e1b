# syntax=docker/dockerfile:1.7
# Build context: the repository root (`make images`, or `docker build -f docker/NAME.Dockerfile .`).
# See docker/README.md for the image layout and why each base image was chosen.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p egress-operator --bin egress-operator \
 && install -D -m 0755 target/release/egress-operator /out/egress-operator

# glibc + libgcc only, no shell, UID 65532: the operator needs no privileges and no host access.
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/egress-operator /usr/local/bin/egress-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/egress-operator"]
