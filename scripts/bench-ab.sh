#!/usr/bin/env bash
# Two builds of cloudtap side by side: each runs `cloudtap serve` (SQLite) and `cloudtap load`
# against it, both pairs at the same time on this machine, [rounds] times; each round prints
# sales a second and the CPU time a sale of each network (over the measured window) and each
# load generator (whole run). Run together, the two builds share whatever the machine's speed
# does meanwhile, which on this machine drifts by more than most changes are worth: runs one
# after the other could not tell 3 % apart. Build the two binaries first, e.g. by copying
# .build/release/cloudtap aside before and after a change.
# Usage: scripts/bench-ab.sh <cloudtap A> <cloudtap B> [rounds] [terminals each] [seconds]
set -uo pipefail
A=$1; B=$2; rounds=${3:-3}; terminals=${4:-32}; seconds=${5:-10}
work=$(mktemp -d /tmp/cloudtap-ab-XXXXXX)
declare -A binary=([A]="$A" [B]="$B") server port before
trap 'for L in A B; do [ -n "${server[$L]:-}" ] && kill "${server[$L]}" 2>/dev/null; done; rm -rf "$work"' EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for round in $(seq "$rounds"); do
    for L in A B; do
        http=$((20000 + RANDOM % 10000)); port[$L]=$http
        rm -rf "$work/$L" && mkdir -p "$work/$L"
        "${binary[$L]}" serve --data-dir "$work/$L" --http-port "$http" --switch-port $((http + 1)) --issuer-port $((http + 2)) >"$work/$L.log" 2>&1 &
        server[$L]=$!
    done
    for L in A B; do for _ in $(seq 50); do grep -q "switch on" "$work/$L.log" && break; sleep 0.2; done; done
    loads=()
    for L in A B; do
        ( /usr/bin/time -f "CPU %U %S" "${binary[$L]}" load --terminals "$terminals" --duration "$seconds" --warmup 2 \
            --api "http://127.0.0.1:${port[$L]}" --switch "127.0.0.1:$((port[$L] + 1))" --data-dir "$work/$L" >"$work/$L.out" 2>&1 ) &
        loads+=($!)
    done
    sleep 2  # the warm-up
    for L in A B; do before[$L]=$(ticks "${server[$L]}"); done
    wait "${loads[@]}"
    for L in A B; do
        after=$(ticks "${server[$L]}"); kill "${server[$L]}"; wait "${server[$L]}" 2>/dev/null; server[$L]=
        sales=$(grep -o "approved sales: [0-9]*" "$work/$L.out" | awk '{print $3}')
        rate=$(grep -o "= [0-9.]*/s" "$work/$L.out" | head -1 | tr -d "= /s")
        grep "^CPU" "$work/$L.out" | awk -v n="$sales" -v s=$((after - ${before[$L]})) -v hz="$hz" -v rate="$rate" -v l="$L" -v r="$round" \
            '{ printf "round %d %s: %s sales/s; CPU a sale: serve %.0f µs, load %.0f µs\n", r, l, rate, s / hz * 1e6 / n, ($2 + $3) * 1e6 / n }'
    done
done
