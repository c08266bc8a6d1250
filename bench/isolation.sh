#!/usr/bin/env bash
# Process vs thread isolation, side by side in one run: requests/s and
# p50/p99 with 1 tenant and with 100 tenants hit at random, and the first
# request of a new tenant (cold start), for `isola serve --isolation thread`
# and `--isolation process`, in alternating rounds.
#
#   bash bench/isolation.sh                  # ROUNDS=2 DURATION=10s CONN=16
#
# Installs wrk (Debian) if missing and builds isola in release mode. The
# server is pinned to CPU 0 and wrk to CPU 1 (taskset). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-10s}"
CONN="${CONN:-16}"
command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
cargo build --release -p isola-cli >/dev/null 2>&1
bin=target/release/isola
token=bench-token-0123456789abcdef
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
hello='export default { fetch() { return new Response("hello world") } }'
cat >"$work/many.lua" <<'LUA'
request = function()
  local t = math.random(0, 99)
  return wrk.format("GET", "/", { Host = "t" .. t .. ".localhost" })
end
LUA

# wrk's summary → "req/s p50_ms p99_ms"
parse() {
  awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
       function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
       END { printf "%.0f %.2f %.2f\n", r, ms(p50), ms(p99) }'
}

deploy() {
  curl -sf -X PUT -H "Authorization: Bearer $token" -H 'content-type: application/javascript' \
    --data-binary "$2" "http://127.0.0.1:8898/v1/tenants/$1/code" >/dev/null
}

results="$work/results"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  for mode in thread process; do
    rm -rf "$work/data"
    taskset -c 0 "$bin" --data-dir "$work/data" serve --isolation "$mode" --workers 2 \
      --listen 127.0.0.1:8897 --admin-listen 127.0.0.1:8898 --admin-token "$token" \
      >"$work/serve-$mode.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:8898/healthz >/dev/null && break; sleep 0.1; done
    for t in $(seq 0 99); do deploy "t$t" "$hello"; done
    for t in $(seq 0 99); do curl -sf -H "Host: t$t.localhost" http://127.0.0.1:8897/ >/dev/null; done
    one=$(taskset -c 1 wrk -t1 -c"$CONN" -d"$DURATION" --latency -H "Host: t0.localhost" http://127.0.0.1:8897/ | parse)
    many=$(taskset -c 1 wrk -t1 -c"$CONN" -d"$DURATION" --latency -s "$work/many.lua" http://127.0.0.1:8897/ | parse)
    # Cold start: a new tenant's first request over HTTP (deploy first, then time the request).
    cold=$(for i in $(seq 1 20); do
      deploy "cold$i" "$hello"
      curl -s -o /dev/null -w '%{time_total}\n' -H "Host: cold$i.localhost" http://127.0.0.1:8897/
    done | sort -n | awk '{a[NR]=$1} END {printf "%.2f\n", a[int((NR+1)/2)]*1000}')
    rss=$(ps -o rss= --ppid $server --pid $server | awk '{s+=$1} END {printf "%.0f", s/1024}')
    echo "$mode $one $many $cold $rss" >>"$results"
    kill $server; wait $server 2>/dev/null || true
  done
done

echo "| mode | 1 tenant req/s | p50 ms | p99 ms | 100 tenants req/s | p50 ms | p99 ms | cold start p50 ms | RSS MiB (all processes) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for mode in thread process; do
  awk -v m=$mode '$1==m {n++; for (i=2;i<=NF;i++) s[i]+=$i} END {printf "| %s", m; for (i=2;i<=9;i++) printf " | %.2f", s[i]/n; print " |"}' "$results"
done
awk '$1=="thread" {t1+=$2; t2+=$5; tc+=$8; n++} $1=="process" {p1+=$2; p2+=$5; pc+=$8}
     END {printf "\nprocess/thread throughput: 1 tenant %.2fx, 100 tenants %.2fx; cold start %.2fx (%d rounds)\n", p1/t1, p2/t2, pc/tc, n}' "$results"
