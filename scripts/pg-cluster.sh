# Sourced by the benchmark scripts: builds the release cloudtap and starts a throwaway PostgreSQL
# cluster on a loopback port in a new work directory, stopped and removed when the script exits.
# Sets cloudtap, work, bin, data, port; defines as_pg (runs a server binary as the postgres user
# when root). Usage: pg_cluster <work-directory prefix> [extra postgres options]
pg_cluster() {
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    swift build -c release --product cloudtap >/dev/null
    cloudtap=$PWD/.build/release/cloudtap
    work=$(mktemp -d "/tmp/$1-XXXXXX")
    data=$work/pg
    port=$((20000 + RANDOM % 12000))  # below the kernel's ephemeral ports (32768 up)
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$data" "$work"; fi
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    as_pg "$bin/pg_ctl" -D "$data" -l "$data/log" -w -o "-p $port -h 127.0.0.1 -k $data -c max_connections=300 ${2:-}" start >/dev/null
    trap 'as_pg "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null; rm -rf "$work"' EXIT
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
