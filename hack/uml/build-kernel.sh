#!/usr/bin/env bash
# Builds the User-Mode Linux kernel the kernel-WireGuard tests boot (`make uml-kernel`), from
# Debian's linux-source package (installed by `make deps`) with hack/uml/config applied on top
# of the UML defconfig and hack/uml/patches/*.patch. The result is cached outside the repo,
# keyed by a hash of the source package and version, the config fragment, the patches and the
# recipe number below, so a machine builds it once (3-5 minutes on 2 cores):
#
#   ${EGRESS_UML_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-egress-gateway/uml}/<hash>/linux
#
# Prints that path as the last line of stdout; build logs go to stderr. Concurrent runs for
# the same hash wait for each other (flock); a failed build leaves nothing in the cache.
# With --cached it only prints the path of an existing build, or exits 2 without building.
set -euo pipefail

# Everything in one function: bash parses it whole before running it, so editing this file
# while a build runs cannot break that build.
main() {
  here=$(cd "$(dirname "$0")" && pwd)
  cached_only=false
  case ${1:-} in
    --cached) cached_only=true ;;
    "") ;;
    *) echo "usage: $0 [--cached]" >&2; exit 64 ;;
  esac

  # The newest supported source package that is installed (install-deps.sh installs the first).
  SOURCES=(linux-source-6.12 linux-source-6.1)
  pkg=""
  for p in "${SOURCES[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      pkg=$p
      break
    fi
  done
  if [ -z "$pkg" ]; then
    echo "uml-kernel: none of ${SOURCES[*]} is installed; run 'make deps' (as root)" >&2
    exit 1
  fi
  for tool in gcc make flex bison bc patch xz; do
    command -v "$tool" >/dev/null || { echo "uml-kernel: $tool is missing; run 'make deps'" >&2; exit 1; }
  done
  version=$(dpkg-query -W -f='${Version}' "$pkg")
  tarball=$(dpkg -L "$pkg" | grep -E '/usr/src/linux-source-.*\.tar\.xz$' | head -1)
  [ -f "$tarball" ] || { echo "uml-kernel: $pkg has no source tarball" >&2; exit 1; }

  # Bump when a change to this script changes the kernel it produces.
  RECIPE=1
  key=$({
    echo "recipe $RECIPE $pkg $version"
    cat "$here/config" "$here"/patches/*.patch
  } | sha256sum | cut -c1-16)
  cache=${EGRESS_UML_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-egress-gateway/uml}
  out=$cache/$key
  mkdir -p "$cache"

  exec 9>"$cache/$key.lock"
  flock 9
  if [ -x "$out/linux" ]; then
    echo "uml-kernel: cached ($pkg $version, key $key)" >&2
    echo "$out/linux"
    exit 0
  fi
  if $cached_only; then
    echo "uml-kernel: not built yet for $pkg $version (key $key); run 'make uml-kernel'" >&2
    exit 2
  fi

  work=$(mktemp -d "$cache/build-$key.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  started=$(date +%s)
  echo "uml-kernel: building from $pkg $version (key $key) in $work" >&2
  # Device trees are a third of the tarball and no Kconfig reads them.
  tar -xJf "$tarball" -C "$work" --exclude='*/boot/dts'
  src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)
  for p in "$here"/patches/*.patch; do
    patch -d "$src" -p1 --forward --quiet <"$p" >&2
  done

  # A plain path: the tree's own Makefile would otherwise pick up the host's environment.
  mk() { make -C "$src" ARCH=um -j"$(nproc)" "$@"; }
  mk defconfig >&2
  "$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$here/config" >&2
  mk olddefconfig >&2
  # Every line of the fragment must have survived (Kconfig silently drops unknown symbols).
  missing=0
  while IFS= read -r line; do
    case $line in
      CONFIG_*=*) grep -qx -- "$line" "$src/.config" || { echo "uml-kernel: $line did not survive olddefconfig" >&2; missing=1; } ;;
      "# CONFIG_"*" is not set") grep -qx -- "$line" "$src/.config" || { echo "uml-kernel: '$line' did not survive olddefconfig" >&2; missing=1; } ;;
    esac
  done <"$here/config"
  [ "$missing" = 0 ] || exit 1

  mk linux >&2
  strip -o "$work/linux" "$src/linux"
  mkdir -p "$work/out"
  mv "$work/linux" "$work/out/linux"
  cp "$src/.config" "$work/out/config"
  echo "$pkg $version" >"$work/out/source"
  rm -rf "$out"
  mv "$work/out" "$out"
  echo "uml-kernel: built in $(( $(date +%s) - started )) s" >&2
  echo "$out/linux"
}

main "$@"
