#!/usr/bin/env bash
# Builds the container images without Docker: release binaries (cargo), a Debian userland from
# the exact .debs in docker/debian.lock, umoci for the OCI image, one OCI archive per image in
# target/images/. Each image is defined once, in docker/<name>.image; the Dockerfiles are
# rendered from those files. docker/README.md explains the layout and every command:
#
#   hack/images.sh build [NAME...]      build, report, rebuild and compare digests (make images)
#   hack/images.sh lock [NAME...]       resolve the Debian packages again (make images-lock)
#   hack/images.sh dockerfile NAME      print the Dockerfile of NAME (make dockerfiles)
#   hack/images.sh docs                 copy the contents reports into docs/install.md
#   hack/images.sh binary NAME OUT      build NAME's binary and copy it to OUT (Dockerfiles)
#   hack/images.sh rootfs NAME DIR BIN  assemble NAME's root filesystem in DIR (Dockerfiles)
#
# Environment: IMAGE_REPO, IMAGE_TAG, SOURCE_DATE_EPOCH, IMAGE_REVISION, IMAGES_OUT,
# IMAGES_CACHE, DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR, CARGO, CARGO_TARGET_DIR.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/images/lib.sh
source "$HERE/images/lib.sh"
# shellcheck source=hack/images/debian.sh
source "$HERE/images/debian.sh"
# shellcheck source=hack/images/oci.sh
source "$HERE/images/oci.sh"

host_triple() { rustc -vV | sed -n 's/^host: //p'; }
target_dir() { echo "${CARGO_TARGET_DIR:-$ROOT/target}"; }

# Where cargo puts the loaded image's binary.
binary_path() {
  if [ "$LINKAGE" = static ]; then
    echo "$(target_dir)/$(host_triple)/release/$CARGO_PACKAGE"
  else
    echo "$(target_dir)/release/$CARGO_PACKAGE"
  fi
}

# One `cargo build --release` for the dynamically linked binaries (the workspace's release
# profile, shared with every other release build) and one with +crt-static for the others.
# Always all of them, whichever images are asked for: cargo unifies dependency features over
# the packages of one build, so building a subset could give other binaries. Without
# SOURCE_DATE_EPOCH (the images' timestamp): the cc crate's build scripts track it, so
# passing it on would rebuild everything that links C code (ring, ...) for no change.
cargo_build() {
  local name v dynamic=() static=() clean=(-u SOURCE_DATE_EPOCH)
  # Nor the variables cargo sets for the process that runs us (a test, a build script): build
  # scripts track some (ring: CARGO_MANIFEST_DIR, CARGO_PKG_NAME), so they would rebuild too.
  for v in $(compgen -e); do
    case $v in
      CARGO_MANIFEST_* | CARGO_PKG_* | CARGO_CRATE_* | CARGO_BIN_* | CARGO_PRIMARY_PACKAGE | CARGO_TARGET_TMPDIR | OUT_DIR)
        clean+=(-u "$v")
        ;;
    esac
  done
  for name in "${IMAGES[@]}"; do
    load_image "$name"
    if [ "$LINKAGE" = static ]; then
      static+=(-p "$CARGO_PACKAGE" --bin "$CARGO_PACKAGE")
    else
      dynamic+=(-p "$CARGO_PACKAGE" --bin "$CARGO_PACKAGE")
    fi
  done
  cd "$ROOT"
  if [ ${#dynamic[@]} -gt 0 ]; then
    log "cargo build --release ${dynamic[*]}"
    env "${clean[@]}" "${CARGO:-cargo}" build --release --locked "${dynamic[@]}"
  fi
  if [ ${#static[@]} -gt 0 ]; then
    # With --target, RUSTFLAGS reach only the target's crates, not build scripts.
    log "cargo build --release --target $(host_triple) ${static[*]} (+crt-static)"
    env "${clean[@]}" RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
      "${CARGO:-cargo}" build --release --locked --target "$(host_triple)" "${static[@]}"
  fi
}

cmd_binary() {
  local name=$1 out=$2 bin
  cargo_build
  load_image "$name"
  bin=$(binary_path)
  if [ "$LINKAGE" = static ] && command -v readelf >/dev/null && readelf -d "$bin" | grep -q NEEDED; then
    die "$bin is not statically linked"
  fi
  install -D -m 0755 "$bin" "$out"
}

# Builds image NAME into OUT_DIR/NAME.tar from the binary cargo already built (digest in
# OCI_DIGEST). With a report path, also writes the contents report there.
build_image() {
  local name=$1 out_dir=$2 report=${3:-} rootfs
  load_image "$name"
  temp_dir rootfs
  cmd_rootfs "$name" "$rootfs/rootfs" "$(binary_path)"
  cmd_oci "$name" "$rootfs/rootfs" "$out_dir/$name.tar"
  [ -z "$report" ] || cmd_report "$name" "$out_dir/$name.tar" "$OCI_DIGEST" "$rootfs/rootfs" >"$report"
  rm -rf "$rootfs"
}

cmd_build() {
  local names=("$@") name first verify started=$SECONDS
  [ ${#names[@]} -gt 0 ] || names=("${IMAGES[@]}")
  for name in "${names[@]}"; do load_image "$name"; done
  for tool in umoci jq dpkg-deb; do
    command -v "$tool" >/dev/null || die "$tool is missing: run 'make deps'"
  done
  init_inputs
  log "inputs: tag $IMAGE_TAG, revision $IMAGE_REVISION, SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH, packages docker/debian.lock"
  cargo_build
  mkdir -p "$OUT"
  for name in "${names[@]}"; do
    build_image "$name" "$OUT" "$OUT/$name.contents.md"
    echo "$OCI_DIGEST" >"$OUT/$name.digest"
    log "$name: $(image_ref "$name") $OCI_DIGEST"
  done
  # The proof of reproducibility: the same inputs again, from scratch, must give the same bytes.
  temp_dir verify
  for name in "${names[@]}"; do
    first=$(cat "$OUT/$name.digest")
    build_image "$name" "$verify"
    [ "$OCI_DIGEST" = "$first" ] && cmp -s "$verify/$name.tar" "$OUT/$name.tar" ||
      die "$name is not reproducible: the second build gave $OCI_DIGEST, the first $first"
    rm -f "$verify/$name.tar"
  done
  for name in "${IMAGES[@]}"; do
    if [ -f "$OUT/$name.contents.md" ]; then cat "$OUT/$name.contents.md" && echo; fi
  done >"$OUT/contents.md"
  summary "${names[@]}"
  log "built ${#names[@]} images twice with identical digests in $((SECONDS - started)) s (reports: $OUT/*.contents.md)"
}

summary() {
  local name size
  printf '\n%-24s %-34s %-10s %s\n' IMAGE REFERENCE SIZE DIGEST
  for name in "$@"; do
    size=$(grep -o '^| size | [0-9.]* MB compressed' "$OUT/$name.contents.md" | awk '{ print $4 " MB" }')
    printf '%-24s %-34s %-10s %s\n' "$name" "$(image_ref "$name")" "$size" "$(cat "$OUT/$name.digest")"
  done
  printf '\nArchives: %s/<image>.tar (oci-archive). Contents: %s/<image>.contents.md\n\n' "$OUT" "$OUT"
}

# Replaces the generated section of docs/install.md with the reports of the last build
# (without digests, which change with every commit).
cmd_docs() {
  local doc=$ROOT/docs/install.md tmp
  [ -f "$OUT/contents.md" ] || die "no $OUT/contents.md: run 'make images' first"
  grep -q '^<!-- images:begin -->$' "$doc" && grep -q '^<!-- images:end -->$' "$doc" ||
    die "docs/install.md lacks the <!-- images:begin --> / <!-- images:end --> markers"
  temp_dir tmp
  {
    echo "| image | compressed | unpacked | files | Debian packages | executables on PATH |"
    echo "|---|---|---|---|---|---|"
    for name in "${IMAGES[@]}"; do
      awk -v name="$name" '
        /^\| size \|/ { split($0, f, /, /); sub(/^\| size \| /, "", f[1]); sub(/ compressed/, "", f[1])
                         sub(/ unpacked/, "", f[2]); sub(/ files \|/, "", f[3]); size = f[1] " | " f[2] " | " f[3] }
        /^Debian packages/ { n = gsub(/`[^`]*`/, "&"); pkgs = n }
        /^Executables in PATH/ { exes = $0; sub(/^Executables in PATH: /, "", exes); sub(/\.$/, "", exes) }
        END { printf "| `%s` | %s | %d | %s |\n", name, size, pkgs, exes }' "$OUT/$name.contents.md"
    done
    echo
    grep -v '^| digest |' "$OUT/contents.md" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
  } >"$tmp/section"
  awk -v section="$tmp/section" '
    /^<!-- images:begin -->$/ { print; while ((getline line < section) > 0) print line; skip = 1; next }
    /^<!-- images:end -->$/ { skip = 0 }
    !skip { print }' "$doc" >"$tmp/doc"
  mv "$tmp/doc" "$doc"
  log "updated the image contents in docs/install.md"
}

cmd_dockerfile() {
  local name=$1 version entry
  load_image "$name"
  version=$(workspace_version)
  entry=$(jq -cn '$ARGS.positional' --args "${ENTRYPOINT[@]}")
  cat <<EOF
# syntax=docker/dockerfile:1.7
# GENERATED from docker/$name.image by \`make dockerfiles\` (hack/images.sh dockerfile $name):
# edit that file, not this one; a test checks that they agree. For machines with Docker:
# \`make images\` builds the same content without Docker. Build context: the repository root
# (\`docker build -f docker/$name.Dockerfile --build-arg REVISION=\$(git rev-parse HEAD) .\`).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM \${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \\
    --mount=type=cache,target=/src/target \\
    hack/images.sh binary $name /out/$CARGO_PACKAGE

# The root filesystem from the exact .debs of docker/debian.lock, by the same script as make images.
FROM \${DEBIAN_IMAGE} AS rootfs
COPY Cargo.toml /src/Cargo.toml
COPY hack/images.sh /src/hack/images.sh
COPY hack/images/ /src/hack/images/
COPY docker/ /src/docker/
COPY --from=build /out/$CARGO_PACKAGE /out/$CARGO_PACKAGE
RUN apt-get update -qq && /src/hack/images.sh rootfs $name /rootfs /out/$CARGO_PACKAGE

FROM scratch
COPY --from=rootfs /rootfs/ /
ARG REVISION=unknown
LABEL org.opencontainers.image.title="$name" \\
      org.opencontainers.image.description="$DESCRIPTION" \\
      org.opencontainers.image.source="$(repository_url)" \\
      org.opencontainers.image.version="$version" \\
      org.opencontainers.image.revision="\${REVISION}" \\
      org.opencontainers.image.licenses="$LICENSES"
ENV PATH=$IMAGE_PATH_ENV
WORKDIR /
USER $RUN_AS
ENTRYPOINT $entry
EOF
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  [ $# -gt 0 ] || usage
  local cmd=$1
  shift
  case $cmd in
    build) cmd_build "$@" ;;
    lock) cmd_lock "$@" ;;
    dockerfile) [ $# -eq 1 ] || usage && cmd_dockerfile "$1" ;;
    docs) cmd_docs ;;
    binary) [ $# -eq 2 ] || usage && cmd_binary "$1" "$2" ;;
    rootfs) [ $# -eq 3 ] || usage && cmd_rootfs "$1" "$2" "$3" ;;
    *)
      echo "images: unknown command '$cmd'" >&2
      usage
      ;;
  esac
}

main "$@"
