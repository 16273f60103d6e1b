# shellcheck shell=bash
# Shared by hack/images.sh and its parts: paths, the image definitions (docker/<name>.image),
# the inputs that decide an image's digest (version, revision, SOURCE_DATE_EPOCH), and a
# deterministic tar. Sourced, never run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGES=(egress-operator egress-gateway-daemon egress-cni-manager kube-egress-cni)
LOCK=$ROOT/docker/debian.lock
OUT=${IMAGES_OUT:-$ROOT/target/images}
CACHE=${IMAGES_CACHE:-$ROOT/target/images-cache}
SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
IMAGE_PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Directories whose entries are the image's executables (the PATH above).
BIN_DIRS=(usr/local/sbin usr/local/bin usr/sbin usr/bin sbin bin)
umask 022
export LC_ALL=C

# Temporary directories, removed when the script exits (also on failure).
TEMP_DIRS=()
trap 'rm -rf "${TEMP_DIRS[@]}"' EXIT
# temp_dir VAR: a new temporary directory in VAR (not $(...): the list must be this shell's).
temp_dir() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/images.XXXXXX")
  TEMP_DIRS+=("$d")
  printf -v "$1" %s "$d"
}

die() {
  echo "images: $*" >&2
  exit 1
}
log() { echo "images: $*" >&2; }

# Loads docker/<name>.image into DESCRIPTION, CARGO_PACKAGE, LINKAGE, INSTALL_PATH, LICENSES,
# DEBIAN_PACKAGES, DEBIAN_SKIP, CA_BUNDLE, EXECUTABLES, LINKS, RUN_AS and ENTRYPOINT (array).
load_image() {
  local name=$1 file=$ROOT/docker/$1.image k
  [ -f "$file" ] || die "no image definition docker/$name.image (images: ${IMAGES[*]})"
  unset DESCRIPTION CARGO_PACKAGE LINKAGE INSTALL_PATH LICENSES DEBIAN_PACKAGES DEBIAN_SKIP \
    CA_BUNDLE EXECUTABLES LINKS RUN_AS ENTRYPOINT
  # shellcheck source=/dev/null
  source "$file"
  for k in DESCRIPTION CARGO_PACKAGE LINKAGE LICENSES DEBIAN_PACKAGES RUN_AS; do
    [ -n "${!k:-}" ] || die "docker/$name.image: $k is required"
  done
  case $LINKAGE in dynamic | static) ;; *) die "docker/$name.image: LINKAGE must be dynamic or static, got '$LINKAGE'" ;; esac
  case ${CA_BUNDLE:-no} in yes | no) ;; *) die "docker/$name.image: CA_BUNDLE must be yes or no, got '$CA_BUNDLE'" ;; esac
  [[ $RUN_AS =~ ^[0-9]+:[0-9]+$ ]] || die "docker/$name.image: RUN_AS must be UID:GID, got '$RUN_AS'"
  [ "${#ENTRYPOINT[@]}" -gt 0 ] 2>/dev/null || die "docker/$name.image: ENTRYPOINT (an array) is required"
  INSTALL_PATH=${INSTALL_PATH:-/usr/local/bin/$CARGO_PACKAGE}
  CA_BUNDLE=${CA_BUNDLE:-no}
}

workspace_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1; }
repository_url() { sed -n 's/^repository = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1; }

# The inputs every image records: tag, revision (with -dirty for uncommitted tracked changes),
# and the timestamp of every file, history entry and label (SOURCE_DATE_EPOCH, default: the
# commit time of HEAD, so a rebuild of the same commit has the same digest).
init_inputs() {
  IMAGE_TAG=${IMAGE_TAG:-$(workspace_version)}
  [ -n "$IMAGE_TAG" ] || die "cannot read the workspace version from Cargo.toml (set IMAGE_TAG)"
  if [ -z "${IMAGE_REVISION:-}" ]; then
    IMAGE_REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
    if [ "$IMAGE_REVISION" != unknown ] && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
      IMAGE_REVISION+=-dirty
    fi
  fi
  if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
  fi
  [[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be seconds since 1970, got '$SOURCE_DATE_EPOCH'"
  IMAGE_CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  export IMAGE_TAG IMAGE_REVISION SOURCE_DATE_EPOCH IMAGE_CREATED
}

# The reference an image is tagged with in its archive: [IMAGE_REPO/]<name>:<tag>.
image_ref() { echo "${IMAGE_REPO:+${IMAGE_REPO%/}/}$1:$IMAGE_TAG"; }

# tar of DIR's MEMBERS into OUT that depends only on the files' names, contents, modes and
# link targets: sorted, every mtime SOURCE_DATE_EPOCH, owner root, no atime/ctime/xattrs.
det_tar() {
  local dir=$1 out=$2
  shift 2
  tar --sort=name --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --no-acls --no-xattrs --no-selinux -C "$dir" -cf "$out" "$@"
}

# Lock lines of one image: "package version architecture sha256".
locked_packages() {
  [ -f "$LOCK" ] || die "missing $LOCK: run 'hack/images.sh lock' (make images-lock)"
  awk -v img="$1" '$1 == img { print $2, $3, $4, $5 }' "$LOCK"
}

# Cache file name of a locked .deb (apt's naming, ':' in the version as %3a).
deb_file() { echo "$CACHE/debs/${1}_${2//:/%3a}_${3}.deb"; }
