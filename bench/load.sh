#!/usr/bin/env bash
# HTTP load test of `isola serve` with 100 tenants: well-behaved tenants alone,
# then the same load with 5 hostile tenants hammered at the same time.
# Installs wrk (Debian) if missing; builds isola in release mode; prints a
# table with the ratio of the well-behaved tenants' p99 between the two runs.
#
#   bash bench/load.sh            # 15 s per run
#   DURATION=30s bash bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. ./scripts/env.sh
DURATION="${DURATION:-15s}"
GOOD_CONN="${GOOD_CONN:-16}"
BAD_CONN="${BAD_CONN:-5}"
if ! command -v wrk >/dev/null || ! command -v jq >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk jq curl) >/dev/null
fi
cargo build --release -q -p isola-cli
bin=./target/release/isola
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
data_port=28787
admin_port=28788
token=bench-token
"$bin" --data-dir "$work/data" serve --listen 127.0.0.1:$data_port --admin-listen 127.0.0.1:$admin_port \
  --admin-token $token >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:$admin_port/healthz >/dev/null && break; sleep 0.1; done

admin() { curl -sf -X "$1" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  "http://127.0.0.1:$admin_port$2" ${3:+--data-binary "$3"} >/dev/null; }
good='export default { async fetch(req) { const u = new URL_(req.url); return Response.json({ tenant: u, items: Array.from({length: 20}, (_, i) => i * i) }); } }; function URL_(s) { return s.split("/")[2]; }'
for i in $(seq -w 0 94); do
  admin PUT "/v1/tenants/t$i/code" "$(jq -nc --arg s "$good" '{files: {"index.js": $s}}')"
done
hostile=(
  'export default { fetch() { for (;;) {} } };'
  'export default { fetch() { const a = []; for (;;) a.push({ x: new Array(64).fill(1) }); } };'
  'export default { fetch() { const b = []; for (;;) b.push(new ArrayBuffer(1 << 20)); } };'
  'export default { async fetch() { await new Promise((r) => setTimeout(r, 1e9)); } };'
  'export default { async fetch() { for (;;) await 0; } };'
)
for i in 0 1 2 3 4; do
  admin PUT "/v1/tenants/h$i" '{"limits": {"wall": 2000}}'
  admin PUT "/v1/tenants/h$i/code" "$(jq -nc --arg s "${hostile[$i]}" '{files: {"index.js": $s}}')"
done
for i in $(seq -w 0 94); do curl -sf -H "Host: t$i.localhost" http://127.0.0.1:$data_port/ >/dev/null; done

cat >"$work/good.lua" <<'LUA'
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/", { Host = string.format("t%02d.localhost", math.random(0, 94)) })
end
LUA
cat >"$work/bad.lua" <<'LUA'
request = function()
  return wrk.format("GET", "/", { Host = string.format("h%d.localhost", math.random(0, 4)) })
end
LUA
run_good() { wrk -t1 -c"$GOOD_CONN" -d"$DURATION" --latency -s "$work/good.lua" "http://127.0.0.1:$data_port/"; }
p99() { awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } print v }' "$1"; }
rps() { awk '/^Requests\/sec/ { print $2 }' "$1"; }
non2xx() { awk 'BEGIN { n = 0 } /Non-2xx/ { n = $5 } END { print n }' "$1"; }

echo "run 1: ${GOOD_CONN} connections to 95 well-behaved tenants for $DURATION"
run_good >"$work/alone.txt"
echo "run 2: the same, while ${BAD_CONN} connections hammer 5 hostile tenants"
wrk -t1 -c"$BAD_CONN" -d"$DURATION" -s "$work/bad.lua" "http://127.0.0.1:$data_port/" >"$work/bad.txt" &
bad=$!
run_good >"$work/mixed.txt"
wait $bad

a=$(p99 "$work/alone.txt"); m=$(p99 "$work/mixed.txt")
echo
echo "| run | requests/s (good) | p99 ms (good) | non-2xx (good) |"
echo "|---|---:|---:|---:|"
echo "| 95 good tenants alone | $(rps "$work/alone.txt") | $a | $(non2xx "$work/alone.txt") |"
echo "| + 5 hostile tenants | $(rps "$work/mixed.txt") | $m | $(non2xx "$work/mixed.txt") |"
echo
echo "hostile requests: $(awk '/requests in/ { print $1 }' "$work/bad.txt") sent, $(non2xx "$work/bad.txt") answered non-2xx (503 limit/suspended)"
awk -v a="$a" -v m="$m" 'BEGIN { printf "p99 of well-behaved tenants with hostile ones / alone: %.2fx (target <= 2x)\n", m / a }'
for f in alone mixed; do
  if grep -q "Non-2xx\|Socket errors" "$work/$f.txt"; then echo "WARNING ($f):"; grep "Non-2xx\|Socket errors" "$work/$f.txt"; fi
done
curl -s http://127.0.0.1:$admin_port/metrics | grep -E '^isola_terminations_total' | sort | head -20
