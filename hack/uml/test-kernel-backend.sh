#!/usr/bin/env bash
# The second run of the privileged data-path tests, with kernel WireGuard (`make test-uml`, part
# of `make test`): the same test binaries cargo built for the host run, each booted in a fresh
# User-Mode Linux guest (hack/uml/build-kernel.sh, cached once per machine) with
# EGRESS_WIREGUARD_BACKEND=kernel, the host's / read-only and every write in guest tmpfs.
# Fails loudly when the kernel cannot be built or booted, or any test fails. Prints how long
# each binary took and the stage in total.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}
MEM_MIB=${EGRESS_UML_MEM_MIB:-2048}
TIMEOUT_S=${EGRESS_UML_TIMEOUT_S:-900}
stage_start=$(date +%s)

# package:test target pairs that drive WireGuard devices.
TESTS=(
  egress-dataplane:privileged
  egress-dataplane:privileged_ipv6
  egress-gateway-daemon:privileged
  kube-egress-cni:e2e_tunnel
  kube-egress-cni:e2e_dual_stack
  kube-egress-cni:e2e_errors
)

kernel=$(hack/uml/build-kernel.sh | tail -1)
$CARGO build -q -p egress-uml --bin egress-uml
runner=target/debug/egress-uml

args=()
for t in "${TESTS[@]}"; do args+=(-p "${t%%:*}" --test "${t#*:}"); done
# Executables and package directories of exactly those targets, from cargo itself (no stale
# binaries picked by name). Already built by the host test run, so this only links nothing.
mapfile -t targets < <($CARGO test --no-run --message-format=json "${args[@]}" 2>/dev/null | python3 -c '
import json, os, sys
wanted = set(sys.argv[1:])
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if "test" not in m["target"]["kind"]:
        continue
    pkg = m["package_id"].split("#")[0].rsplit("/", 1)[-1].split("@")[0]
    name = m["target"]["name"]
    if f"{pkg}:{name}" in wanted:
        print("\t".join([pkg + ":" + name, m["executable"], os.path.dirname(m["manifest_path"])]))
' "${TESTS[@]}")
if [ "${#targets[@]}" -ne "${#TESTS[@]}" ]; then
  echo "test-uml: expected ${#TESTS[@]} test binaries from cargo, got ${#targets[@]}: ${targets[*]}" >&2
  exit 1
fi

failed=()
summary=()
for entry in "${targets[@]}"; do
  IFS=$'\t' read -r name exe dir <<<"$entry"
  echo "test-uml: $name (kernel WireGuard, UML mem=${MEM_MIB}M)"
  started=$(date +%s)
  rc=0
  "$runner" run --kernel "$kernel" --mem "$MEM_MIB" --timeout "$TIMEOUT_S" --cwd "$dir" \
    --env EGRESS_WIREGUARD_BACKEND=kernel --env "CARGO_MANIFEST_DIR=$dir" \
    --pass-env CI --pass-env RUST_LOG --pass-env RUST_BACKTRACE \
    -- "$exe" || rc=$?
  took=$(( $(date +%s) - started ))
  summary+=("$name: exit $rc in ${took}s")
  [ "$rc" = 0 ] || failed+=("$name")
done
echo "test-uml: kernel-backend stage took $(( $(date +%s) - stage_start )) s"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "test-uml: FAILED with kernel WireGuard: ${failed[*]}" >&2
  exit 1
fi
