# shellcheck shell=bash
# From a root filesystem to an OCI archive with umoci (one layer, config, labels), written so
# that the same inputs give the same bytes; and the contents report of an image. Sourced by
# hack/images.sh after lib.sh.

# The OCI labels (config) and annotations (manifest) of the loaded image.
image_labels() {
  printf '%s\n' \
    "org.opencontainers.image.title=$1" \
    "org.opencontainers.image.description=$DESCRIPTION" \
    "org.opencontainers.image.source=$(repository_url)" \
    "org.opencontainers.image.version=$IMAGE_TAG" \
    "org.opencontainers.image.revision=$IMAGE_REVISION" \
    "org.opencontainers.image.licenses=$LICENSES" \
    "org.opencontainers.image.created=$IMAGE_CREATED"
}

# Writes the OCI archive OUT of image NAME from ROOTFS; its manifest digest goes to OCI_DIGEST.
cmd_oci() {
  local name=$1 rootfs=$2 out=$3 work ref label arg args=()
  load_image "$name"
  command -v umoci >/dev/null || die "umoci is missing: make deps (or apt-get install umoci)"
  temp_dir work
  ref=$(image_ref "$name")
  det_tar "$rootfs" "$work/layer.tar" .
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:build"
  umoci raw add-layer --image "$work/oci:build" --history.created="$IMAGE_CREATED" \
    --history.created_by="hack/images.sh from docker/$name.image" "$work/layer.tar"
  for arg in "${ENTRYPOINT[@]}"; do args+=(--config.entrypoint="$arg"); done
  while IFS= read -r label; do
    args+=(--config.label="$label" --manifest.annotation="$label")
  done < <(image_labels "$name")
  umoci config --image "$work/oci:build" --no-history --created="$IMAGE_CREATED" \
    --author="kube-egress-gateway" --os=linux --architecture="$(oci_arch)" \
    --config.user="$RUN_AS" --config.env="PATH=$IMAGE_PATH_ENV" --config.workingdir=/ "${args[@]}"
  umoci tag --image "$work/oci:build" "$ref"
  umoci rm --image "$work/oci:build"
  umoci gc --layout "$work/oci"
  mkdir -p "$(dirname "$out")"
  det_tar "$work/oci" "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  OCI_DIGEST=$(jq -r '.manifests[0].digest' "$work/oci/index.json")
  rm -rf "$work"
}

oci_arch() {
  case $(uname -m) in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    *) die "unsupported architecture $(uname -m)" ;;
  esac
}

# Human-readable size of N bytes (MB with one decimal, as registries show).
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

# The contents report of image NAME (Markdown): reference, digest, sizes, user, entrypoint,
# Debian packages with versions, executables and every file with its mode and size.
cmd_report() {
  local name=$1 archive=$2 digest=$3 rootfs=$4 layer_size unpacked files pkgs exes d
  load_image "$name"
  layer_size=$(tar -xOf "$archive" "blobs/sha256/${digest#sha256:}" | jq '[.layers[].size] | add')
  unpacked=$(find "$rootfs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  files=$(find "$rootfs" -mindepth 1 ! -type d | wc -l)
  pkgs=$(locked_packages "$name" | awk '{ printf "%s`%s %s`", (NR > 1 ? ", " : ""), $1, $2 }')
  exes=$(for d in "${BIN_DIRS[@]}"; do
    if [ -d "$rootfs/$d" ]; then find "$rootfs/$d" -mindepth 1 -maxdepth 1 ! -type d -printf "/$d/%f\n"; fi
  done | sort | awk '{ printf "%s`%s`", (NR > 1 ? ", " : ""), $1 }')
  cat <<EOF
### $name

| | |
|---|---|
| reference | \`$(image_ref "$name")\` |
| digest | \`$digest\` |
| size | $(mb "$layer_size") compressed, $(mb "$unpacked") unpacked, $files files |
| user | \`$RUN_AS\` |
| entrypoint | \`${ENTRYPOINT[*]}\` |
| licenses | $LICENSES |

Debian packages ($SUITE): ${pkgs:-none}.

Executables in PATH: ${exes:-none}.

<details><summary>Every file of $name (mode, size in bytes, path; all owned by 0:0)</summary>

\`\`\`
EOF
  (cd "$rootfs" && find . -mindepth 1 \( -type d -printf '%M        - /%P/\n' \) -o \
    \( -type l -printf '%M        - /%P -> %l\n' \) -o -printf '%M %8s /%P\n') | sort -k3
  printf '%s\n' '```' '' '</details>'
}
