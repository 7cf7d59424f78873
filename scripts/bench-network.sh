#!/usr/bin/env bash
# The network's end-to-end figures beside pgbench, in one run on this machine:
#   the disk's durable-write latency (`cloudtap bench disk`), at the start and at the end: every
#   commit of either engine waits for such a write, so its tail is the floor under the p99s;
#   pgbench TPC-B (scale 8, 8 clients) on a throwaway PostgreSQL cluster with default durability,
#   at full rate and at half of it (its p99 there, from each transaction's start, is the reference
#   for the network's half-load p99: the same cluster, disk and cores);
#   cloudtap load on SQLite: full load, then half of it (for p99);
#   cloudtap load on PostgreSQL (the same cluster): full load, then half of it.
# Full load uses [terminals] terminals as fast as they go; half load spreads the rate over
# [half-terminals] terminals (the rate is what counts; fewer terminals keep fewer sales queued).
# [pairs] > 1 runs pgbench and the full SQLite load that many times, alternately (each pair in
# the other order from the one before), and compares each pair and their medians (runs on this
# machine differ by several per cent from one to the next; alternating keeps a slow spell from
# landing on one side only); it also runs the PostgreSQL full load and each half load that many
# times, each on a fresh database dropped after it, and gives their medians (PostgreSQL's half
# load at half the median full rate).
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

# Before each measured run: pgbench's database vacuumed and analysed, the cluster checkpointed
# and the page cache written back, so no run pays for the housekeeping or the writes of the one
# before it (pgbench's initialisation included): autovacuum would otherwise take its turn at
# pgbench's tables during whichever run came next.
settle() {
    as_pg "$bin/vacuumdb" -h 127.0.0.1 -p "$port" -U postgres -q --analyze bench
    as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt -c CHECKPOINT postgres >/dev/null
    sync
}

echo "== machine: $(nproc) cores, $(uname -r); PostgreSQL $("$bin/postgres" --version | awk '{print $3}'), fsync on, synchronous_commit on"
disk() {
    echo "== the disk $1: 8 KiB written and fdatasync'd in a loop, ${seconds} s (what every commit waits for)"
    "$cloudtap" bench disk --directory "$work" --seconds "$seconds"
}
disk "before the runs"
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

# Half load, [pairs] runs each on a fresh database, and the median p99 (a p99 of a 10-second
# run moves by a millisecond or two from one run to the next on this machine).
p99() { grep '^latency' | grep -o 'p99 [0-9.]*' | awk '{print $2}'; }
run_note() { [ "$pairs" -gt 1 ] && echo ", run $1 of $pairs"; }

# pgbench at half its median rate, [pairs] runs, each transaction's latency from its log: the
# time from its start to its end (the log's time less its schedule lag, as `load` times a sale
# from its actual start), quantiles by nearest rank as `load` takes them.
pgbench_half() {
    local rate=$1 tails="" run
    for run in $(seq "$pairs"); do
        echo "== pgbench TPC-B at half that: $rate tps, 8 clients, 2 threads, ${seconds} s$(run_note "$run") (the reference for the p99)"
        settle
        rm -f "$work"/pgbench-half.*
        as_pg "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -c 8 -j 2 -T "$seconds" -R "$rate" -l --log-prefix="$work/pgbench-half" bench \
            2>/dev/null | grep -E "^tps"
        out=$(cat "$work"/pgbench-half.* | awk '{print ($3 - $7) / 1000}' | sort -g | awk '
            function at(q) { i = int(q * NR); if (i < q * NR) i++; return v[i < 1 ? 1 : i] }
            {v[NR] = $1}
            END {printf "latency (transaction start to end): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n", at(0.5), at(0.9), at(0.99), at(0.999), v[NR]}')
        echo "$out"
        tails="$tails $(echo "$out" | p99)"
    done
    pgbench_p99=$(echo "$tails" | median)
    [ "$pairs" -gt 1 ] && echo "== pgbench half-rate p99: $(echo "$tails" | sed 's/^ //; s/ / ms, /g') ms; median $pgbench_p99 ms"
    return 0
}
pgbench_half "$(awk -v t="$tps" 'BEGIN {printf "%d", t / 2}')"
pg_url() { echo "postgres://postgres@127.0.0.1:$port/$1?sslmode=disable"; }
# A finished run's database goes, as a SQLite run's files do: left behind, its tables are due
# for autovacuum, which would run during the next run and take its cores (on this machine a
# half-load p99 about 1 ms higher after a full load's database was kept, three pairs).
drop() { as_pg "$bin/dropdb" -h 127.0.0.1 -p "$port" -U postgres "$1"; }
half_runs() {  # name, rate, PostgreSQL database prefix (none: SQLite)
    local name=$1 rate=$2 prefix=${3:-} tails="" run
    for run in $(seq "$pairs"); do
        local database=()
        if [ -n "$prefix" ]; then
            as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "${prefix}_$run"
            database=(--database "$(pg_url "${prefix}_$run")")
        fi
        echo "== cloudtap load on $name at half that: $rate sales/s over $half_terminals terminals$(run_note "$run")"
        settle
        out=$(cd "$work" && "$cloudtap" load --terminals "$half_terminals" --duration "$seconds" --rate "$rate" \
              --data-dir "$work/$name-half-$run" "${database[@]}")
        echo "$out" | grep -E "approved sales|latency|books"
        tails="$tails $(echo "$out" | p99)"
        rm -rf "$work/$name-half-$run"
        if [ -n "$prefix" ]; then drop "${prefix}_$run"; fi
    done
    if [ "$pairs" -gt 1 ]; then
        echo "== $name half-load p99: $(echo "$tails" | sed 's/^ //; s/ / ms, /g') ms; median $(echo "$tails" | median) ms (the goal: 10 ms; pgbench at half its rate: $pgbench_p99 ms)"
    fi
}

half_runs SQLite "$(awk -v s="$sqlite" 'BEGIN {printf "%d", s / 2}')"

# PostgreSQL at full load, [pairs] runs each on a fresh database; the half load from their median.
rates=""
for run in $(seq "$pairs"); do
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "cloudtap_full_$run"
    echo "== cloudtap load on PostgreSQL, $terminals terminals, ${seconds} s$(run_note "$run")"
    settle
    out=$(cd "$work" && "$cloudtap" load --terminals "$terminals" --duration "$seconds" --data-dir "$work/pg-full-$run" \
          --database "$(pg_url "cloudtap_full_$run")")
    echo "$out" | grep -E "approved sales|latency|books"
    rates="$rates $(echo "$out" | rate)"
    rm -rf "$work/pg-full-$run"
    drop "cloudtap_full_$run"
done
postgres=$(echo "$rates" | median)
echo "== PostgreSQL / pgbench: $(echo "$rates" | awk -v t="$tps" '{for (i = 1; i <= NF; i++) printf "%s%.1f", (i > 1 ? " %, " : ""), 100 * $i / t}') %$(
      [ "$pairs" -gt 1 ] && echo "; median $postgres sales/s = $(awk -v s="$postgres" -v t="$tps" 'BEGIN {printf "%.1f", 100 * s / t}') %") (the goal: 50 %)"
half_runs PostgreSQL "$(awk -v s="$postgres" 'BEGIN {printf "%d", s / 2}')" cloudtap_half
disk "after the runs"
