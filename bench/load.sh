#!/usr/bin/env bash
# HTTP load test of `isola serve` with 100 tenants: well-behaved tenants alone,
# then the same load with one hostile tenant per class of docs/LIMITS.md hammered
# at the same time.
# Installs wrk (Debian) if missing; builds isola in release mode; prints a
# table with the ratio of the well-behaved tenants' p99 between the two runs.
#
#   bash bench/load.sh            # 15 s per run
#   DURATION=30s bash bench/load.sh
#   ISOLATION=process bash bench/load.sh   # worker processes instead of threads
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
trap 'kill $server 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp -r "$work" /tmp/load-last; rm -rf "$work"' EXIT
data_port=28787
admin_port=28788
token=bench-token-0123456789
"$bin" --data-dir "$work/data" serve --listen 127.0.0.1:$data_port --admin-listen 127.0.0.1:$admin_port \
  --admin-token $token --isolation "${ISOLATION:-thread}" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$admin_port/healthz >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:$admin_port/healthz >/dev/null || { echo "isola serve did not start:"; cat "$work/serve.log"; exit 1; }

admin() {
  local code
  code=$(curl -sS -o "$work/admin.txt" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $token" \
    -H 'content-type: application/json' "http://127.0.0.1:$admin_port$2" ${3:+--data-binary "$3"})
  case "$code" in 2??) ;; *) echo "admin $1 $2: $code $(cat "$work/admin.txt")"; exit 1 ;; esac
}
good='export default { async fetch(req) { const u = new URL_(req.url); return Response.json({ tenant: u, items: Array.from({length: 20}, (_, i) => i * i) }); } }; function URL_(s) { return s.split("/")[2]; }'
for i in $(seq -w 0 94); do
  admin PUT "/v1/tenants/t$i/code" "$(jq -nc --arg s "$good" '{files: {"index.js": $s}}')"
done
# One tenant per hostile class of docs/LIMITS.md.
hostile=(
  # CPU, heap, ArrayBuffer memory, wall time, microtask loop
  'export default { fetch() { for (;;) {} } };'
  'export default { fetch() { const a = []; for (;;) a.push({ x: new Array(64).fill(1) }); } };'
  'export default { fetch() { const b = []; for (;;) b.push(new ArrayBuffer(1 << 20)); } };'
  'export default { async fetch() { await new Promise((r) => setTimeout(r, 1e9)); } };'
  'export default { async fetch() { for (;;) await 0; } };'
  # a resizable buffer grown past the ArrayBuffer budget, and a growable SharedArrayBuffer
  'export default { fetch() { const b = new ArrayBuffer(8, { maxByteLength: 2 ** 31 }); b.resize(2 ** 31 - 1); return new Response(b); } };'
  'export default { fetch() { const o = function () {}; o.maxByteLength = 2 ** 30; const b = new SharedArrayBuffer(8, o); return new Response(String(b.growable)); } };'
  # patched prototypes the runtime must not call, and a body that is an HTTP response
  'Array.prototype.push = function () { this.length = 0xFFFFFFFF; }; Object.defineProperty(Object.prototype, "then", { get() { throw 1; } }); Promise.prototype.then = function () { for (;;) {} }; export default { fetch() { return new Response("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged", { headers: { "content-length": "0", "transfer-encoding": "identity" } }); } };'
  # header amplification: 100k response headers of 1 KiB
  'export default { fetch() { const h = new Headers(); const v = "v".repeat(1024); for (let i = 0; i < 100000; i++) h.append("x-" + i, v); return new Response("x", { headers: h }); } };'
  # CPU burnt in waitUntil after the response is sent
  'export default { fetch(req, env, ctx) { ctx.waitUntil((async () => { for (;;) {} })()); return new Response("ok"); } };'
  # top-level await of a timer just under the wall limit at every cold start, and a
  # handler that gets the isolate killed (so the next request cold-starts again)
  'await new Promise((r) => setTimeout(r, 1900)); export default { fetch() { for (;;) {} } };'
  # slow builtins that check for termination rarely
  'export default { fetch() { return new Response(String(new Array(1e8).fill(0).length)); } };'
  'export default { fetch() { return new Response(String([..."x".repeat(1 << 28)].length)); } };'
  # locale-aware calls (fatal before ICU data was loaded)
  'export default { fetch() { return new Response(new Date(0).toLocaleString("en-US") + (1234.5).toLocaleString("de-DE")); } };'
)
# ONLY="7 8" keeps some classes (to see what each costs the neighbours); SKIP="11 12" drops some.
if [ -n "${ONLY:-}" ]; then keep=(); for k in $ONLY; do keep+=("${hostile[$k]}"); done; hostile=("${keep[@]}"); fi
for k in ${SKIP:-}; do unset "hostile[$k]"; done
hostile=("${hostile[@]}")
nbad=${#hostile[@]}
for i in "${!hostile[@]}"; do
  admin PUT "/v1/tenants/h$i" '{"limits": {"wall": 2000}}'
  admin PUT "/v1/tenants/h$i/code" "$(jq -nc --arg s "${hostile[$i]}" '{files: {"index.js": $s}}')"
done
# Twice: a tenant's first request runs on the probation worker, the second
# starts its isolate on its shared worker.
for _ in 1 2; do
  for i in $(seq -w 0 94); do curl -sf -H "Host: t$i.localhost" http://127.0.0.1:$data_port/ >/dev/null; done
done

cat >"$work/good.lua" <<'LUA'
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/", { Host = string.format("t%02d.localhost", math.random(0, 94)) })
end
done = function(summary, latency, requests)
  local slow = 0
  for _, p in pairs({ 99.9, 99.99 }) do
    io.write(string.format("p%s %.2f ms; ", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("max %.2f ms; timeouts %d\n", latency.max / 1000, summary.errors.timeout))
end
LUA
cat >"$work/bad.lua" <<LUA
request = function()
  return wrk.format("GET", "/", { Host = string.format("h%d.localhost", math.random(0, $((nbad - 1)))) })
end
LUA
run_good() { wrk -t1 -c"$GOOD_CONN" -d"$DURATION" --latency -s "$work/good.lua" "http://127.0.0.1:$data_port/"; }
p99() { awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } print v }' "$1"; }
rps() { awk '/^Requests\/sec/ { print $2 }' "$1"; }
non2xx() { awk 'BEGIN { n = 0 } /Non-2xx/ { n = $5 } END { print n }' "$1"; }

echo "run 1: ${GOOD_CONN} connections to 95 well-behaved tenants for $DURATION"
run_good >"$work/alone.txt"
echo "run 2: the same, while ${BAD_CONN} connections hammer $nbad hostile tenants"
wrk -t1 -c"$BAD_CONN" -d"$DURATION" -s "$work/bad.lua" "http://127.0.0.1:$data_port/" >"$work/bad.txt" &
bad=$!
[ -n "${PROBE:-}" ] && { python3 $PROBE "${DURATION%s}" $data_port >"$work/probe.txt" & }
run_good >"$work/mixed.txt"
wait $bad

a=$(p99 "$work/alone.txt"); m=$(p99 "$work/mixed.txt")
echo
echo "| run | requests/s (good) | p99 ms (good) | non-2xx (good) |"
echo "|---|---:|---:|---:|"
echo "| 95 good tenants alone | $(rps "$work/alone.txt") | $a | $(non2xx "$work/alone.txt") |"
echo "| + $nbad hostile tenants | $(rps "$work/mixed.txt") | $m | $(non2xx "$work/mixed.txt") |"
echo
echo "hostile requests: $(awk '/requests in/ { print $1 }' "$work/bad.txt") sent, $(non2xx "$work/bad.txt") answered non-2xx (503 limit/suspended)"
awk -v a="$a" -v m="$m" 'BEGIN { printf "p99 of well-behaved tenants with hostile ones / alone: %.2fx (target <= 1.5x)\n", m / a }'
for f in alone mixed; do
  if grep -q "Non-2xx\|Socket errors" "$work/$f.txt"; then echo "WARNING ($f):"; grep "Non-2xx\|Socket errors" "$work/$f.txt"; fi
done
curl -s -H "Authorization: Bearer $token" http://127.0.0.1:$admin_port/metrics | grep -E '^isola_terminations_total' | sort || true
kill -0 "$server" || { echo "isola serve died; its log:"; tail -50 "$work/serve.log"; exit 1; }
echo "server alive; RSS $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' /proc/$server/status), after the runs"
echo
echo "what each hostile tenant answers now (wait for any cool-down, then one request):"
sleep 11
for i in "${!hostile[@]}"; do
  out=$(curl -s -m 30 -o "$work/h.txt" -w '%{http_code}' -H "Host: h$i.localhost" http://127.0.0.1:$data_port/ || true)
  printf '  h%-2s %s %s\n' "$i" "$out" "$(head -c 150 "$work/h.txt" | tr '\n' ' ')"
done
