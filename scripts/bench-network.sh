#!/usr/bin/env bash
# The network's end-to-end figures beside pgbench, in one run on this machine:
#   pgbench TPC-B (scale 8, 8 clients) on a throwaway PostgreSQL cluster with default durability;
#   cloudtap load on SQLite: full load, then half of it (for p99);
#   cloudtap load on PostgreSQL (the same cluster): full load, then half of it.
# Full load uses [terminals] terminals as fast as they go; half load spreads the rate over
# [half-terminals] terminals (the rate is what counts; fewer terminals keep fewer sales queued).
# [pairs] > 1 runs pgbench and the full SQLite load that many times, alternately (each pair in
# the other order from the one before), and compares each pair and their medians (runs on this
# machine differ by several per cent from one to the next; alternating keeps a slow spell from
# landing on one side only).
# Needs the PostgreSQL server binaries (apt-get install postgresql); run as root or as a user
# that can run them. Usage: scripts/bench-network.sh [terminals] [seconds] [half-terminals] [pairs]
set -euo pipefail
cd "$(dirname "$0")/.."
terminals=${1:-64}
seconds=${2:-10}
half_terminals=${3:-8}
pairs=${4:-1}
. scripts/pg-cluster.sh
pg_cluster cloudtap-bench

# Before each measured run: the cluster checkpointed and the page cache written back, so no run
# pays for the writes of the one before it (pgbench's initialisation included).
settle() { as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt -c CHECKPOINT postgres >/dev/null; sync; }

echo "== machine: $(nproc) cores, $(uname -r); PostgreSQL $("$bin/postgres" --version | awk '{print $3}'), fsync on, synchronous_commit on"
as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres bench
as_pg "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s 8 -q bench >/dev/null 2>&1

rate() { grep -o 'approved sales: [0-9]* in [0-9]* s = [0-9.]*' | awk '{print $NF}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

run_pgbench() {
    echo "== pgbench TPC-B, scale 8, 8 clients, 2 threads, ${seconds} s (the reference)"
    settle
    out=$(as_pg "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -c 8 -j 2 -T "$seconds" bench 2>/dev/null)
    echo "$out" | grep -E "^tps|latency average"
    tps=$(echo "$out" | awk '/^tps/ {print $3}')
}
run_sqlite() {
    echo "== cloudtap load on SQLite, $terminals terminals, ${seconds} s"
    settle
    out=$(cd "$work" && "$cloudtap" load --terminals "$terminals" --duration "$seconds" --data-dir "$work/sqlite-full-$1")
    echo "$out" | grep -E "approved sales|latency|books"
    sales=$(echo "$out" | rate)
    rm -rf "$work/sqlite-full-$1"
}

# Pairs in turn order (pgbench first, then the load first, …): the machine's speed drifts
# over minutes of full load, and whichever ran second in every pair would carry the drift.
tps_all=""; sqlite_all=""; ratios=""
for pair in $(seq "$pairs"); do
    [ "$pairs" -gt 1 ] && echo "== pair $pair of $pairs"
    if [ $((pair % 2)) = 1 ]; then run_pgbench; run_sqlite "$pair"; else run_sqlite "$pair"; run_pgbench; fi
    tps_all="$tps_all $tps"; sqlite_all="$sqlite_all $sales"
    ratios="$ratios $(awk -v s="$sales" -v t="$tps" 'BEGIN {printf "%.1f", 100 * s / t}')"
done
tps=$(echo "$tps_all" | median); sqlite=$(echo "$sqlite_all" | median)
echo "== SQLite / pgbench: $(echo "$ratios" | sed 's/^ //; s/ / %, /g') %$([ "$pairs" -gt 1 ] && echo "; medians $sqlite sales/s and $tps tps = $(awk -v s="$sqlite" -v t="$tps" 'BEGIN {printf "%.1f", 100 * s / t}') %")"

half=$(awk -v s="$sqlite" 'BEGIN {printf "%d", s / 2}')
echo "== cloudtap load on SQLite at half that: $half sales/s over $half_terminals terminals"
settle
(cd "$work" && "$cloudtap" load --terminals "$half_terminals" --duration "$seconds" --rate "$half" --data-dir "$work/sqlite-half") | grep -E "approved sales|latency|books"

as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres cloudtap_full
as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres cloudtap_half
echo "== cloudtap load on PostgreSQL, $terminals terminals, ${seconds} s"
settle
out=$(cd "$work" && "$cloudtap" load --terminals "$terminals" --duration "$seconds" --data-dir "$work/pg-full" \
      --database "postgres://postgres@127.0.0.1:$port/cloudtap_full?sslmode=disable")
echo "$out" | grep -E "approved sales|latency|books"
echo "== PostgreSQL / pgbench: $(echo "$out" | rate | awk -v t="$tps" '{printf "%.1f", 100 * $1 / t}') % (the goal: 50 %)"
half=$(echo "$out" | rate | awk '{printf "%d", $1 / 2}')
echo "== cloudtap load on PostgreSQL at half that: $half sales/s over $half_terminals terminals"
settle
(cd "$work" && "$cloudtap" load --terminals "$half_terminals" --duration "$seconds" --rate "$half" --data-dir "$work/pg-half" \
      --database "postgres://postgres@127.0.0.1:$port/cloudtap_half?sslmode=disable") | grep -E "approved sales|latency|books"
