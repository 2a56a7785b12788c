#!/usr/bin/env bash
# 1 GiB round trip: curl sends a file as an echo task, polls until it is complete and fetches the
# output; against curl PUTting the same file to a bare Node HTTP server (bench/baselines/stream-server.mjs)
# and GETting it back. Checks size + sha256 of every fetched copy and the peak RSS (VmHWM) of both
# servers. Loopback only; everything it makes lives in one temp folder, removed on exit.
#
#   bench/roundtrip-1g.sh [--bin PATH/bin/run.js] [--size BYTES] [--rounds N] [--json FILE]
# Without --bin the product is built from src/ into the temp folder (bench/lib/build-product.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin='' size=$((1 << 30)) rounds=3 json=''
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/rrcloud-bench-1g-XXXXXX")
server_pid=''
cleanup () {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

[ -n "$bin" ] || bin=$("$root/bench/lib/build-product.sh" "$work/product")
now () { date +%s.%N; }
elapsed () { echo "$2 - $1" | bc -l; }
hwm_mib () { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
rss_mib () { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# peak RSS of a process's children (the node's spawn helper), summed; 0 if it has none
children_hwm_mib () {
  local sum=0 c
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    sum=$(echo "$sum + $(awk '/^VmHWM/ { print $2 / 1024 }' "/proc/$c/status" 2>/dev/null || echo 0)" | bc -l)
  done
  printf '%.1f' "$sum"
}
cpu_s () { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

# waits (20 s at most) for "$2" in the log "$1" and prints the port it names
port_from () {
  for _ in $(seq 200); do
    p=$(grep -oE "$2" "$1" | grep -oE '[0-9]+$' | head -1 || true)
    [ -n "$p" ] && { echo "$p"; return; }
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not start:" >&2; tail -20 "$1" >&2; exit 1
}

verify () {
  local got
  got=$(stat -c %s "$1")
  [ "$got" = "$size" ] || { echo "$1: $got bytes, expected $size" >&2; exit 1; }
  [ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$sha" ] || { echo "$1: sha256 differs from the sent file" >&2; exit 1; }
}

stop_server () {
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=''
}

echo "making a $size-byte file of random bytes" >&2
head -c "$size" /dev/urandom > "$work/big"
sha=$(sha256sum < "$work/big" | cut -d' ' -f1)
results="$work/results.tsv"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: > "$results"

run_baseline () {
  mkdir -p "$work/base"
  node "$root/bench/baselines/stream-server.mjs" "$work/base" > "$work/base.log" 2>&1 &
  server_pid=$!
  local port t0 t1 t2
  port=$(port_from "$work/base.log" 'listening [0-9]+')
  local idle
  idle=$(rss_mib "$server_pid")
  t0=$(now)
  curl -sS --fail --max-time 600 -T "$work/big" "http://127.0.0.1:$port/f" > /dev/null
  t1=$(now)
  curl -sS --fail --max-time 600 -o "$work/fetched" "http://127.0.0.1:$port/f"
  t2=$(now)
  local hwm cpu
  hwm=$(hwm_mib "$server_pid") cpu=$(cpu_s "$server_pid")
  stop_server
  verify "$work/fetched"
  printf 'baseline\t%s\t%s\t0\t%s\t%s\t%s\t%s\t0\n' "$1" "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" "$hwm" "$cpu" "$idle" >> "$results"
  rm -rf "$work/base" "$work/fetched"
}

run_node () {
  node "$bin" node --port 0 --host 127.0.0.1 --data-dir "$work/node-data" --slots 2 --name bench --no-mdns > "$work/node.log" 2>&1 &
  server_pid=$!
  local port t0 t1 t2 t3 reply id out status
  port=$(port_from "$work/node.log" 'listening on http://127\.0\.0\.1:[0-9]+')
  local url="http://127.0.0.1:$port" idle
  idle=$(rss_mib "$server_pid")
  t0=$(now)
  reply=$(curl -sS --fail --max-time 600 -F service=echo -F "fileIn0=@$work/big" "$url/?format=json")
  t1=$(now)
  id=$(jq -r .id <<< "$reply") out=$(jq -r .out <<< "$reply")
  status=''
  for _ in $(seq 6000); do
    status=$(curl -sS --fail --max-time 600 "$url/?service=info&id=$id&format=json" | jq -r .status)
    case $status in complete) break ;; failed|cancelled) echo "echo task $id $status" >&2; exit 1 ;; esac
    sleep 0.05
  done
  [ "$status" = complete ] || { echo "echo task $id still $status after 5 minutes" >&2; exit 1; }
  t2=$(now)
  curl -sS --fail --max-time 600 -o "$work/fetched" "$url/tasks/out/${out##*/}"
  t3=$(now)
  local hwm cpu
  hwm=$(hwm_mib "$server_pid") cpu=$(cpu_s "$server_pid")
  local helper_hwm
  helper_hwm=$(children_hwm_mib "$server_pid")
  stop_server
  verify "$work/fetched"
  printf 'node\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" "$(elapsed "$t2" "$t3")" "$hwm" "$cpu" "$idle" "$helper_hwm" >> "$results"
  rm -rf "$work/node-data" "$work/fetched"
}

# each run starts with no dirty pages left by the one before, so neither pays for the other's writeback
for r in $(seq "$rounds"); do
  sync
  run_baseline "$r"
  sync
  run_node "$r"
  echo "round $r: $(tail -2 "$results" | cut -f1,3-7 | tr '\t\n' ' ;')" >&2
done

# columns: who round upload_s process_s download_s hwm_mib cpu_s idle_rss_mib helper_hwm_mib -> JSON with medians, ratio
jq -R -s --argjson size "$size" --arg tmp "${TMPDIR:-/tmp}" --arg lb "$load_before" --arg la "$(cut -d' ' -f1-3 /proc/loadavg)" '
  def med: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  [split("\n")[] | select(length > 0) | split("\t")
    | { who: .[0], round: (.[1] | tonumber), upload: (.[2] | tonumber), process: (.[3] | tonumber),
        download: (.[4] | tonumber), hwmMiB: (.[5] | tonumber), cpuSeconds: (.[6] | tonumber),
        idleRssMiB: (.[7] | tonumber), helperHwmMiB: (.[8] | tonumber) }
    | .total = (.upload + .process + .download)
    | .mibPerSecond = ($size * 2 / .total / 1048576)
    | .uploadMiBps = ($size / .upload / 1048576) | .downloadMiBps = ($size / .download / 1048576)] as $runs
  | ($runs | map(select(.who == "baseline"))) as $b | ($runs | map(select(.who == "node"))) as $n
  | { bytes: $size, rounds: ($n | length), tmpdir: $tmp, loadavgBefore: $lb, loadavgAfter: $la,
      baselineMiBps: ($b | map(.mibPerSecond) | med), nodeMiBps: ($n | map(.mibPerSecond) | med),
      ratio: ([range($n | length)] | map($n[.].mibPerSecond / $b[.].mibPerSecond) | med),
      bestRatio: (($n | map(.mibPerSecond) | max) / ($b | map(.mibPerSecond) | max)),
      nodePeakRssMiB: ($n | map(.hwmMiB) | max), baselinePeakRssMiB: ($b | map(.hwmMiB) | max),
      helperPeakRssMiB: ($n | map(.helperHwmMiB) | max),
      runs: $runs }' "$results" > "$work/summary.json"
[ -z "$json" ] || cp "$work/summary.json" "$json"
jq -c '{baselineMiBps, nodeMiBps, ratio, bestRatio, nodePeakRssMiB, baselinePeakRssMiB, helperPeakRssMiB}' "$work/summary.json"
