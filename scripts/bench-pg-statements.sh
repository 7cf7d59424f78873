#!/usr/bin/env bash
# Where PostgreSQL's time goes in a sale: a throwaway cluster with pg_stat_statements; pgbench
# TPC-B on it (scale 8, 8 clients), then one cloudtap load run at full load; for each, the
# PostgreSQL backends' CPU a transaction beside the client's and the rows written a
# transaction; then the server-side execution time of each of the sale's statements (calls,
# mean and total ms, rows).
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
# Rows inserted, updated and deleted in a database so far (the statistics are flushed when the
# clients disconnect, as both runs' do before this is read).
written() { sleep 1; psql -c "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables" "$1"; }
# The reference: pgbench's TPC-B (three UPDATEs, a SELECT and an INSERT a transaction).
as_pg "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s 8 -q postgres >/dev/null 2>&1
psql -c "CHECKPOINT" postgres
rows0=$(written postgres)
before=$(busy)
bench=$( { /usr/bin/time -f "client CPU %U %S" runuser -u postgres -- "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres \
           -c 8 -j 2 -T "$seconds" postgres; } 2>&1 )
after=$(busy)
rows1=$(written postgres)
echo "$bench" | grep -E "^tps" | sed 's/ (without initial connection time)//; s/^/pgbench TPC-B: /'
echo "$bench" | awk -v b="$before" -v a="$after" -v hz="$hz" -v r0="$rows0" -v r1="$rows1" '
    /^number of transactions actually processed/ { split($0, f, ": "); split(f[2], g, "/"); n = g[1] }
    /^client CPU/ { client = $3 + $4 }
    END { machine = (a - b) / hz
          printf "pgbench: PostgreSQL CPU %.3f ms a transaction, pgbench client %.3f ms; %.1f rows written a transaction\n",
                 (machine - client) * 1000 / n, client * 1000 / n, (r1 - r0) / n }'
psql -c "CHECKPOINT" postgres
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
rows=$(written cloudtap)
awk -v r="$rows" -v n="$sales" 'BEGIN { printf "cloudtap: %.1f rows written a sale (the set-up of cards and phones included)\n", r / n }'
echo "== statements by total execution time (the load's set-up included)"
psql -F ' | ' -c "SELECT calls, round(mean_exec_time::numeric, 3) AS mean_ms, round(total_exec_time::numeric) AS total_ms, rows,
                   left(regexp_replace(query, '\s+', ' ', 'g'), 110)
            FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'cloudtap')
            ORDER BY total_exec_time DESC LIMIT 8" cloudtap
