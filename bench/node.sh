#!/usr/bin/env bash
# The node's benchmarks, side by side with their baselines, in one run: task rate with temp dirs on
# disk and on tmpfs (bench/node-rate.ts), then the 1 GiB round trip (bench/roundtrip-1g.sh).
# Writes the figures into bench/results/node.md. Loopback only; every temp folder is removed.
#   bash bench/node.sh            (npm run bench:node)
# Env: REV (commit to build, default HEAD), RATE_DIRS (default "${TMPDIR:-/tmp} /dev/shm"),
#      RATE_ARGS (extra node-rate.ts options), RT_ARGS (extra roundtrip-1g.sh options)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d "${TMPDIR:-/tmp}/rrcloud-bench-node-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

rev=$(git rev-parse --short "${REV:-HEAD}")
echo "building $rev" >&2
bin=$(bench/lib/build-product.sh "$work/product" "$rev")

rate_args=()
for dir in ${RATE_DIRS:-${TMPDIR:-/tmp} /dev/shm}; do
  name=$( [ "$(df --output=fstype "$dir" | tail -1 | tr -d ' ')" = tmpfs ] && echo tmpfs || echo disk )
  echo "task rate, temp dirs in $dir" >&2
  # shellcheck disable=SC2086
  TMPDIR=$dir timeout 900 node --import tsx bench/node-rate.ts --bin "$bin" --json "$work/rate-$name.json" ${RATE_ARGS:-}
  rate_args+=(--rate "$name=$work/rate-$name.json")
done

echo "1 GiB round trip" >&2
# shellcheck disable=SC2086
timeout 1200 bench/roundtrip-1g.sh --bin "$bin" --json "$work/roundtrip.json" ${RT_ARGS:-}

node bench/lib/node-report.mjs --out bench/results/node.md --commit "$rev" \
  --command "npm run bench:node  (bash bench/node.sh${RATE_ARGS:+, RATE_ARGS=\"$RATE_ARGS\"}${RT_ARGS:+, RT_ARGS=\"$RT_ARGS\"})" \
  "${rate_args[@]}" --roundtrip "$work/roundtrip.json"
echo "figures written to bench/results/node.md" >&2
