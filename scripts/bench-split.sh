#!/usr/bin/env bash
# Where a sale's CPU goes: `cloudtap serve` (switch, token service, issuers, API on SQLite) and
# `cloudtap load` (the phones, POS kernels and their links) in two processes on this machine,
# [runs] times; each run prints sales a second and the CPU time (user + system) a sale of each
# process. The two still share the machine's cores, as in bench-network.sh.
# Usage: scripts/bench-split.sh [terminals] [seconds] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
terminals=${1:-64}
seconds=${2:-10}
runs=${3:-3}
swift build -c release --product cloudtap >/dev/null
cloudtap=$PWD/.build/release/cloudtap
work=$(mktemp -d /tmp/cloudtap-split-XXXXXX)
http=$((20000 + RANDOM % 10000)); switch=$((http + 1)); issuer=$((http + 2))
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for run in $(seq "$runs"); do
    rm -rf "$work/data" && mkdir -p "$work/data"
    "$cloudtap" serve --data-dir "$work/data" --http-port "$http" --switch-port "$switch" --issuer-port "$issuer" >"$work/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 50); do grep -q "switch on" "$work/serve.log" && break; sleep 0.2; done
    before=$(ticks "$server")
    out=$( { /usr/bin/time -f "CPU %U %S" "$cloudtap" load --terminals "$terminals" --duration "$seconds" --warmup 0 \
             --api "http://127.0.0.1:$http" --switch "127.0.0.1:$switch" --data-dir "$work/data"; } 2>&1 )
    after=$(ticks "$server")
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    sales=$(echo "$out" | grep -o "approved sales: [0-9]*" | awk '{print $3}')
    rate=$(echo "$out" | grep -o "= [0-9.]*/s" | head -1 | tr -d "= /s")
    echo "$out" | grep "^CPU" | awk -v n="$sales" -v s=$((after - before)) -v hz="$hz" -v rate="$rate" -v run="$run" \
        '{ printf "run %d: %s sales/s; CPU a sale: serve %.0f µs, load %.0f µs\n", run, rate, s / hz * 1e6 / n, ($2 + $3) * 1e6 / n }'
done
