# shellcheck shell=bash
# The Debian userland of the images: resolving each image's packages once into docker/debian.lock
# (mmdebstrap), fetching exactly the locked .debs (apt-get download, checked by SHA-256), and
# assembling a root filesystem from them. Sourced by hack/images.sh after lib.sh.

# Resolves packages (in work directory TMP, which it empties) with their dependencies in an empty Debian (mmdebstrap --variant=extract:
# nothing is configured, no maintainer script runs), keeps what the requested packages need
# through Depends/Pre-Depends without going through the SKIP ones (which must be in the
# resolved set, or the definition is stale), copies those .debs into the cache and prints
# "package version architecture sha256" for each.
resolve_packages() {
  local tmp=$1 what=$2 packages=$3 skip_list=$4 deb pkg skip
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: make deps (or apt-get install mmdebstrap)"
  rm -rf "$tmp"
  mkdir -p "$tmp/debs" "$CACHE/debs"
  log "$what: resolving $packages (mmdebstrap, $SUITE)"
  mmdebstrap --quiet --variant=extract --skip=download/empty \
    --include="$(echo "$packages" | tr -s ' ' ',')" \
    --extract-hook="sync-out /var/cache/apt/archives $tmp/debs" \
    "$SUITE" "$tmp/root" \
    "deb $DEBIAN_MIRROR $SUITE main" "deb $DEBIAN_MIRROR $SUITE-updates main" \
    "deb $DEBIAN_SECURITY_MIRROR $SUITE-security main" >&2 ||
    die "$what: mmdebstrap failed (is $DEBIAN_MIRROR reachable?)"
  for skip in $skip_list; do
    compgen -G "$tmp/debs/${skip}_*.deb" >/dev/null ||
      die "$what: DEBIAN_SKIP names $skip, which the packages no longer pull in: remove it"
  done
  for deb in "$tmp"/debs/*.deb; do
    printf '%s\037%s\037%s\037%s\037%s\037%s\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)" \
      "$(dpkg-deb -f "$deb" Architecture)" "$(dpkg-deb -f "$deb" Provides)" \
      "$(dpkg-deb -f "$deb" Pre-Depends), $(dpkg-deb -f "$deb" Depends)" "$deb"
  done >"$tmp/index"
  needed_packages "$tmp/index" "$packages" "$skip_list" >"$tmp/needed"
  while IFS=$'\037' read -r pkg ver arch _ _ deb; do
    if grep -qx "$pkg" "$tmp/needed"; then
      cp "$deb" "$(deb_file "$pkg" "$ver" "$arch")"
      printf '%s %s %s %s\n' "$pkg" "$ver" "$arch" "$(sha256sum "$deb" | cut -d' ' -f1)"
    elif [[ " $skip_list " != *" $pkg "* ]]; then
      log "$what: leaving out $pkg (only skipped packages need it)"
    fi
  done <"$tmp/index"
  rm -rf "$tmp"
}

# The packages of INDEX (package, version, arch, provides, depends, file; separated by \037,
# which unlike a tab keeps empty fields apart for `read`)
# reachable from ROOTS through Depends/Pre-Depends, never entering SKIP. Of alternatives
# ("a | b") the first one in the index (by name or Provides) counts.
needed_packages() {
  awk -F'\037' -v roots="$2" -v skip=" $3 " '
    function name(dep) { sub(/^[ \t]+/, "", dep); sub(/[ \t(:].*$/, "", dep); return dep }
    function pick(group,   alts, n, i, d) {
      n = split(group, alts, "|")
      for (i = 1; i <= n; i++) {
        d = name(alts[i])
        if (d in present) return d
        if (d in provider) return provider[d]
      }
      return ""
    }
    {
      present[$1] = 1; deps[$1] = $5
      n = split($4, prov, ","); for (i = 1; i <= n; i++) provider[name(prov[i])] = $1
    }
    END {
      n = split(roots, queue, " ")
      for (head = 1; head <= n; head++) {
        p = queue[head]
        if (p == "" || (p in seen) || index(skip, " " p " ")) continue
        if (!(p in present)) { print "images: " p " is not in the resolved set" > "/dev/stderr"; exit 1 }
        seen[p] = 1; print p
        m = split(deps[p], groups, ",")
        for (i = 1; i <= m; i++) { d = pick(groups[i]); if (d != "") queue[++n] = d }
      }
    }' "$1"
}

# Rewrites docker/debian.lock for the given images (default: all), keeping the others' lines.
cmd_lock() {
  local names=("$@") tmp name
  [ ${#names[@]} -gt 0 ] || names=("${IMAGES[@]}")
  temp_dir tmp
  touch "$tmp/lines"
  [ ! -f "$LOCK" ] || grep -v '^#' "$LOCK" | awk -v skip=" ${names[*]} " 'index(skip, " " $1 " ") == 0' >"$tmp/lines"
  # base-files alone: every image takes only its OS identification files (BASE_FILES_KEEP), so
  # what base-files itself depends on is no image's dependency.
  resolve_packages "$tmp/work" base-files base-files "" >"$tmp/resolved"
  grep '^base-files ' "$tmp/resolved" >"$tmp/base-files"
  for name in "${names[@]}"; do
    load_image "$name"
    resolve_packages "$tmp/work" "$name" "$DEBIAN_PACKAGES" "$DEBIAN_SKIP" >"$tmp/resolved"
    sed "s/^/$name /" "$tmp/base-files" "$tmp/resolved" >>"$tmp/lines"
  done
  {
    echo "# Debian packages of every image: image package version architecture sha256."
    echo "# Written by 'make images-lock' (hack/images.sh lock: mmdebstrap resolves each image's"
    echo "# DEBIAN_PACKAGES from $SUITE, $SUITE-updates and $SUITE-security, minus DEBIAN_SKIP,"
    echo "# plus base-files for /etc/os-release). 'make images' installs exactly these files,"
    echo "# checked by SHA-256; re-lock to take Debian's updates."
    sort -k1,1 -k2,2 "$tmp/lines"
  } >"$tmp/lock"
  mv "$tmp/lock" "$LOCK"
  log "wrote $LOCK"
}

# Makes sure every locked .deb of an image is in the cache with its locked SHA-256, downloading
# the exact version with apt-get when it is not (one apt-get update if the index lacks it).
fetch_image() {
  local name=$1 pkg ver arch sha file got tmp updated=${APT_UPDATED:-no}
  [ -f "$LOCK" ] || die "missing $LOCK: run 'make images-lock'"
  grep -q "^$name " "$LOCK" || die "docker/debian.lock has no packages for $name: run 'make images-lock'"
  mkdir -p "$CACHE/debs"
  while read -r pkg ver arch sha; do
    file=$(deb_file "$pkg" "$ver" "$arch")
    if [ ! -f "$file" ]; then
      tmp=$(mktemp -d "$CACHE/debs/.fetch.XXXXXX")
      if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null 2>&1); then
        if [ "$updated" = no ]; then
          log "updating the apt index to find $pkg=$ver"
          apt-get update -qq >/dev/null || die "apt-get update failed"
          updated=yes
          APT_UPDATED=yes
        fi
        (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null) || {
          rm -rf "$tmp"
          die "$name: $pkg $ver is not on the mirror any more (Debian replaced it): run 'make images-lock' to move to the current versions (this changes the images)"
        }
      fi
      mv "$tmp"/*.deb "$file"
      rm -rf "$tmp"
    fi
    got=$(sha256sum "$file" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || die "$file has SHA-256 $got, docker/debian.lock says $sha: delete it and rebuild, or re-lock"
  done < <(locked_packages "$name")
}

# Only these files of base-files: the OS identification scanners read.
BASE_FILES_KEEP=(./etc/debian_version ./etc/os-release ./usr/lib/os-release)

# Assembles the root filesystem of an image in DIR from its locked .debs and BINARY.
cmd_rootfs() {
  local name=$1 dir=$2 binary=$3
  load_image "$name"
  [ -f "$binary" ] || die "$name: binary $binary does not exist"
  fetch_image "$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  chmod 0755 "$dir"
  unpack_packages "$name" "$dir"
  prune_rootfs "$dir"
  install -D -m 0755 "$binary" "$dir$INSTALL_PATH"
  add_skeleton "$dir"
  check_userland "$name" "$dir"
}

# Unpacks every locked package (base-files: only BASE_FILES_KEEP) and records each one's
# control fields in /var/lib/dpkg/status.d/<package>, where image scanners look for packages
# of images without dpkg.
unpack_packages() {
  local name=$1 dir=$2 pkg ver arch sha file
  mkdir -p "$dir/var/lib/dpkg/status.d"
  while read -r pkg ver arch sha; do
    file=$(deb_file "$pkg" "$ver" "$arch")
    if [ "$pkg" = base-files ]; then
      dpkg-deb --fsys-tarfile "$file" | tar -x -C "$dir" "${BASE_FILES_KEEP[@]}"
    else
      dpkg-deb --extract "$file" "$dir"
    fi
    { dpkg-deb --field "$file" && echo "Status: install ok installed"; } >"$dir/var/lib/dpkg/status.d/$pkg"
  done < <(locked_packages "$name")
}

# Removes what no program of the images reads: documentation except the licences (copyright
# files), manuals, headers, boot and init integration, glibc's iconv modules (gconv), tc's data
# (tc is not kept), and every executable not listed in EXECUTABLES.
prune_rootfs() {
  local dir=$1 d f rel
  find "$dir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
  rm -rf "$dir"/usr/share/{man,info,lintian,bug,bash-completion,zsh,doc-base,locale,initramfs-tools,menu} \
    "$dir"/usr/include "$dir"/usr/lib/*/gconv "$dir"/usr/lib/*/tc \
    "$dir"/etc/init.d "$dir"/lib/systemd "$dir"/usr/lib/systemd "$dir"/etc/ca-certificates
  for d in "${BIN_DIRS[@]}"; do
    [ -d "$dir/$d" ] || continue
    while IFS= read -r -d '' f; do
      rel=/${f#"$dir"/}
      [[ " $EXECUTABLES " == *" $rel "* ]] || rm -f "$f"
    done < <(find "$dir/$d" -mindepth 1 -maxdepth 1 ! -type d -print0)
  done
  find "$dir" -mindepth 1 -type d -empty -delete
}

# The few files every image has besides its packages: users (root, nonroot 65532, nobody),
# name service order, /tmp, /run (with /var/run, where wireguard-go puts its sockets), the
# LINKS, and the CA bundle where CA_BUNDLE=yes.
add_skeleton() {
  local dir=$1 link path target
  mkdir -p "$dir/etc" "$dir/tmp" "$dir/run" "$dir/var"
  chmod 1777 "$dir/tmp"
  ln -sfn /run "$dir/var/run"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' >"$dir/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' 'nogroup:x:65534:' >"$dir/etc/group"
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$dir/etc/nsswitch.conf"
  for link in $LINKS; do
    path=${link%%=*}
    target=${link#*=}
    mkdir -p "$dir$(dirname "$path")"
    ln -sfn "$target" "$dir$path"
  done
  if [ "$CA_BUNDLE" = yes ]; then
    # What update-ca-certificates writes for the default (all Mozilla) selection.
    mkdir -p "$dir/etc/ssl/certs"
    find "$dir/usr/share/ca-certificates/mozilla" -name '*.crt' | sort |
      while read -r f; do sed -e '$a\' "$f"; done >"$dir/etc/ssl/certs/ca-certificates.crt"
    [ -s "$dir/etc/ssl/certs/ca-certificates.crt" ] || die "CA_BUNDLE=yes but no certificates (is ca-certificates in DEBIAN_PACKAGES?)"
    # The single certificates are only the bundle's input.
    rm -rf "$dir/usr/share/ca-certificates"
  fi
}

# Fails when an executable or library the image needs is missing: every EXECUTABLES and LINKS
# entry resolves inside DIR, and every shared library an ELF file there needs is in DIR.
check_userland() {
  local name=$1 dir=$2 exe link lib elf
  for exe in $EXECUTABLES "$INSTALL_PATH"; do
    [ -x "$dir$exe" ] || die "$name: $exe is not in the image (EXECUTABLES in docker/$name.image)"
  done
  for link in $LINKS; do
    [ -e "$(dirname "$dir${link%%=*}")/${link#*=}" ] || die "$name: link ${link%%=*} -> ${link#*=} dangles"
  done
  command -v readelf >/dev/null || return 0
  for elf in $EXECUTABLES "$INSTALL_PATH"; do
    lib=$(readelf -l "$dir$elf" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    [ -z "$lib" ] || [ -e "$dir$lib" ] || die "$name: $elf needs the loader $lib, which is not in the image"
    for lib in $(readelf -d "$dir$elf" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      compgen -G "$dir/lib/*/$lib" >/dev/null || compgen -G "$dir/usr/lib/*/$lib" >/dev/null ||
        die "$name: $elf needs $lib, which no package of the image provides"
    done
  done
}
