#!/usr/bin/env bash
# The kernel-WireGuard half of `make bench`, inside User-Mode Linux (hack/uml): the peer
# benchmark for wireguard-go and the kernel side by side in one guest, the tunnel throughput
# benchmark (plain routing / tunnel / tunnel + SNAT) with the kernel backend, and the
# simulator's e2e failover and restart figures with the kernel backend. Results in
# docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}

main() {
  local kernel runner
  kernel=$(hack/uml/build-kernel.sh | tail -1)
  $CARGO build -q --workspace --bins
  runner=target/debug/egress-uml
  mapfile -t benches < <($CARGO bench --no-run -p egress-dataplane --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["target"]["name"] + "\t" + m["executable"])
')
  local e2e
  e2e=$($CARGO test --no-run -p egress-sim --test e2e --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "e2e":
        print(m["executable"])
')
  for entry in "${benches[@]}"; do
    IFS=$'\t' read -r name exe <<<"$entry"
    case $name in
      peers) "$runner" run --kernel "$kernel" --mem 3072 --cwd crates/egress-dataplane \
               --env EGRESS_BENCH_BACKENDS=userspace,kernel -- "$exe" --bench ;;
      throughput) "$runner" run --kernel "$kernel" --mem 2048 --cwd crates/egress-dataplane \
               --env EGRESS_WIREGUARD_BACKEND=kernel -- "$exe" --bench ;;
    esac
  done
  "$runner" run --kernel "$kernel" --mem 3072 --cwd crates/testing/egress-sim \
    --env EGRESS_WIREGUARD_BACKEND=kernel -- "$e2e" resilience failover::a_dead --nocapture
}

main "$@"
