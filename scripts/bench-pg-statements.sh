#!/usr/bin/env bash
# Where PostgreSQL's time goes in a sale: a throwaway cluster with pg_stat_statements, one
# cloudtap load run on it at full load, then the server-side execution time of each statement
# (calls, mean and total ms, rows) and the backends' CPU beside the load process's.
# Needs the PostgreSQL server binaries and contrib (pg_stat_statements ships with Debian's
# postgresql package). Usage: scripts/bench-pg-statements.sh [terminals] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
terminals=${1:-64}
seconds=${2:-8}
. scripts/pg-cluster.sh
pg_cluster cloudtap-pgstat "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
psql() { as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt "$@"; }
psql -c "CREATE DATABASE cloudtap" postgres
psql -c "CREATE EXTENSION pg_stat_statements" cloudtap
# The machine's busy CPU (clock ticks, all cores) from /proc/stat; less the load process's own,
# what is left is the PostgreSQL backends' (and the little else running).
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
hz=$(getconf CLK_TCK)
before=$(busy)
out=$( { /usr/bin/time -f "load process CPU %U s user, %S s system" "$cloudtap" load --terminals "$terminals" --duration "$seconds" \
         --warmup 0 --data-dir "$work/load" --database "postgres://postgres@127.0.0.1:$port/cloudtap?sslmode=disable"; } 2>&1 )
after=$(busy)
echo "$out" | grep -E "approved sales|load process CPU"
sales=$(echo "$out" | grep -o "approved sales: [0-9]*" | awk '{print $3}')
load=$(echo "$out" | grep "load process CPU" | awk '{print $4 + $7}')
awk -v b="$before" -v a="$after" -v hz="$hz" -v load="$load" -v n="$sales" 'BEGIN {
    machine = (a - b) / hz; rest = machine - load
    printf "machine busy %.1f s; load process (network and load generator) %.1f s = %.2f ms a sale; the rest (PostgreSQL) %.1f s = %.2f ms a sale (the set-up of cards and phones included)\n",
           machine, load, load * 1000 / n, rest, rest * 1000 / n }'
echo "== statements by total execution time (the load's set-up included)"
psql -F ' | ' -c "SELECT calls, round(mean_exec_time::numeric, 3) AS mean_ms, round(total_exec_time::numeric) AS total_ms, rows,
                   left(regexp_replace(query, '\s+', ' ', 'g'), 110)
            FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'cloudtap')
            ORDER BY total_exec_time DESC LIMIT 8" cloudtap
