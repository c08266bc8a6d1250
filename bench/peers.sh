#!/usr/bin/env bash
# isola next to its peers (Deno, workerd, node) on the same handlers, one core
# each: the server pinned to one core, the load generator (wrk -t1) to another.
# Installs the peers from the registries under target/peers/ (nothing
# committed): Deno from PyPI `deno`, workerd and typescript from npm, node from
# the machine, wrk from Debian (autocannon from npm if wrk cannot be had).
# A peer that cannot be installed or started is reported as "not available
# (why)" in the table; the run goes on.
#
# Handlers (bench/peers/): hello world, a 10 KB JSON transform (POST), a 1 ms
# CPU task, a handler importing typescript.js (9 MB) that transpiles a few lines.
# Each round starts every (runtime, handler) server afresh (cold start: spawn to
# first 200), warms it up for 1 s, loads it for DURATION seconds, reads its RSS
# and stops it; runtimes alternate within a round. Then 100 tenants at random
# (isola tenants, workerd workers behind a dispatcher, node vm contexts), new
# isola tenants' first requests, and idle tenants per GiB. Prints a Markdown
# table (median over rounds) and the targets of issue 10 as PASS/FAIL.
#
#   bash bench/peers.sh                      # 5 rounds x 10 s
#   ROUNDS=3 DURATION=5 bash bench/peers.sh
#   ONLY_RUNTIMES="isola deno" ONLY_HANDLERS="hello" bash bench/peers.sh
#   CONN=32 SERVER_CPU=0 LOAD_CPU=1 NEW_TENANTS=100 IDLE_TENANTS=1000 OUT=peers.md
#   SMOKE=1 bash bench/peers.sh              # install, start each server once, one request, no load
set -uo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-5}"
[ -n "${SMOKE:-}" ] && ROUNDS=1
DURATION="${DURATION:-10}"
CONN="${CONN:-32}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
NEW_TENANTS="${NEW_TENANTS:-100}"
IDLE_TENANTS="${IDLE_TENANTS:-1000}"
HANDLERS="${ONLY_HANDLERS:-hello json cpu ts}"
RUNTIMES="${ONLY_RUNTIMES:-isola deno workerd node}"
OUT="${OUT:-target/peers/last.md}"
DENO_VERSION="${DENO_VERSION:-}"            # e.g. 2.9.8; default: newest on PyPI
WORKERD_VERSION="${WORKERD_VERSION:-latest}"
TYPESCRIPT_VERSION="${TYPESCRIPT_VERSION:-5.9.3}"   # 6+ and 7 have no single typescript.js of this kind

peers="$PWD/target/peers"
mkdir -p "$peers"
work=$(mktemp -d)
results="$work/results.jsonl"
: >"$results"
server=""
stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server" 2>/dev/null
    server=""
  fi
}
trap 'stop_server; [ -n "${KEEP:-}" ] && { rm -rf /tmp/peers-last; cp -r "$work" /tmp/peers-last; }; rm -rf "$work"' EXIT
helper() { python3 bench/peers.py "$@"; }
record() { echo "$1" >>"$results"; }
na() { record "$(jq -nc --arg rt "$1" --arg why "$2" '{kind: "na", rt: $rt, why: $why}')"; echo "  $1: not available ($2)"; }
declare -A avail

if [ "$(nproc)" -lt 2 ]; then
  echo "warning: $(nproc) core(s): the server and the load generator share core $SERVER_CPU" >&2
  LOAD_CPU="$SERVER_CPU"
fi

# ------------------------------------------------------------------ installs
echo "installing peers under $peers"
command -v jq >/dev/null || { (apt-get update -qq && apt-get install -y -qq jq) >/dev/null 2>&1 || { echo "jq is needed (apt-get install jq)"; exit 1; }; }
loadgen=""
if command -v wrk >/dev/null || { (apt-get update -qq && apt-get install -y -qq wrk) >"$work/apt.log" 2>&1 && command -v wrk >/dev/null; }; then
  loadgen=wrk
elif (cd "$peers" && mkdir -p npm && cd npm && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund -q autocannon) >"$work/ac.log" 2>&1; then
  loadgen=autocannon
  echo "  wrk: not available ($(tail -1 "$work/apt.log")); using autocannon from npm"
else
  echo "no load generator: wrk (Debian) and autocannon (npm) both failed to install"; cat "$work/apt.log" "$work/ac.log"; exit 1
fi

# node: from the machine.
if command -v node >/dev/null; then
  avail[node]=1
  echo "  node $(node --version) (machine)"
else
  na node "no node on the machine"
fi

# Deno: PyPI `deno` in a venv.
if [ ! -x "$peers/venv/bin/deno" ]; then
  (python3 -m venv "$peers/venv" && "$peers/venv/bin/pip" install -q "deno${DENO_VERSION:+==$DENO_VERSION}") >"$work/deno.log" 2>&1
fi
if deno_v=$("$peers/venv/bin/deno" --version 2>/dev/null | head -1); then
  avail[deno]=1
  echo "  $deno_v (PyPI deno)"
else
  na deno "pip install deno failed: $(tail -1 "$work/deno.log" 2>/dev/null | cut -c1-120)"
fi

# workerd and typescript: npm, in target/peers/npm.
npm_ok=1
if command -v npm >/dev/null; then
  (cd "$peers" && mkdir -p npm && cd npm && { [ -f package.json ] || npm init -y >/dev/null; } &&
    { [ -x node_modules/@cloudflare/workerd-linux-64/bin/workerd ] || npm install --no-audit --no-fund -q "workerd@$WORKERD_VERSION"; } &&
    { [ -f node_modules/typescript/lib/typescript.js ] || npm install --no-audit --no-fund -q "typescript@$TYPESCRIPT_VERSION"; }) >"$work/npm.log" 2>&1 || npm_ok=0
else
  npm_ok=0
  echo "no npm on the machine" >"$work/npm.log"
fi
workerd_bin=$(ls "$peers"/npm/node_modules/@cloudflare/workerd-*/bin/workerd 2>/dev/null | head -1)
if [ -n "$workerd_bin" ] && workerd_v=$("$workerd_bin" --version 2>/dev/null); then
  avail[workerd]=1
  echo "  $workerd_v (npm workerd)"
else
  na workerd "npm install workerd failed or its binary does not run: $(tail -1 "$work/npm.log" | cut -c1-120)"
fi

# The handlers, with typescript.js made an ES module (its CommonJS wrapper
# leaves `ts` set when there is no `module`).
handlers="$peers/handlers"
rm -rf "$handlers" && mkdir -p "$handlers"
cp bench/peers/*.js bench/peers/*.cjs bench/peers/package.json "$handlers/"
tsjs="$peers/npm/node_modules/typescript/lib/typescript.js"
if [ -f "$tsjs" ] && grep -q '^var ts = {}; ((module) => {' "$tsjs"; then
  { cat "$tsjs"; printf '\nexport default ts;\n'; } >"$handlers/typescript.js"
  echo "  typescript $(jq -r .version "$peers/npm/node_modules/typescript/package.json") ($(du -h "$handlers/typescript.js" | cut -f1) typescript.js)"
else
  HANDLERS="${HANDLERS//ts/}"
  record "$(jq -nc --arg why "npm typescript@$TYPESCRIPT_VERSION: no typescript.js of the expected form" '{kind: "na_h", h: "ts", why: $why}')"
  echo "  ts handler: not available (typescript.js missing)"
fi
payload="$work/payload.json"
node --input-type=module -e "import { payload } from '$handlers/common.js'; process.stdout.write(JSON.stringify(payload()))" >"$payload"

# isola: release build.
. ./scripts/env.sh
if [[ " $RUNTIMES " != *" isola "* ]]; then
  :
elif cargo build --release -q -p isola-cli >"$work/build.log" 2>&1; then
  avail[isola]=1
  isola_rev=$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- crates 2>/dev/null || echo "+changes")
  echo "  isola $isola_rev (release build)"
else
  na isola "cargo build failed: $(grep -m1 error "$work/build.log" | cut -c1-120)"
fi
isola_bin="$PWD/target/release/isola"
token=bench-token-0123456789

# ------------------------------------------------------------------ servers
port=29100
on_server() { taskset -c "$SERVER_CPU" "$@"; }

# start RT HANDLER [TENANTS]: starts a server, sets $server, $data_port, $host;
# records the cold start. Returns 1 (with a "fail" record) if it did not answer.
start() {
  local rt=$1 h=$2 n=${3:-0} out
  port=$((port + 2))
  data_port=$port
  host=""
  [ "$n" -gt 0 ] && host=t00.localhost
  local log="$work/$rt-$h.log"
  case $rt in
    isola)
      host=${host:-bench.localhost}
      out=$(helper isola-start --data-port "$port" --admin-port $((port + 1)) --token $token --handler "$h" \
        --handlers-dir "$handlers" --tenants "$n" --payload "$payload" --log "$log" -- \
        taskset -c "$SERVER_CPU" "$isola_bin" --data-dir "${isola_dir:-$work/isola-data-$h-$n}" serve --workers 1 \
        --listen 127.0.0.1:$port --admin-listen 127.0.0.1:$((port + 1)) --admin-token $token --max-warm 4000 2>>"$log") ;;
    deno)
      out=$(DENO_DIR="$peers/deno-dir" DENO_NO_UPDATE_CHECK=1 helper spawn --port "$port" --handler "$h" --payload "$payload" \
        --cwd "$handlers" --log "$log" -- taskset -c "$SERVER_CPU" "$peers/venv/bin/deno" run -A deno-serve.js "$h.js" "$port" 2>>"$log") ;;
    workerd)
      local cfg="$handlers/workerd-$h-$port.capnp"
      if [ "$n" -gt 0 ]; then helper workerd-config --out "$cfg" --port "$port" --tenants "$n"
      else helper workerd-config --out "$cfg" --port "$port" --handler "$h"; fi
      out=$(helper spawn --port "$port" --handler "$h" --payload "$payload" ${host:+--host $host} --cwd "$handlers" --log "$log" -- \
        taskset -c "$SERVER_CPU" "$workerd_bin" serve "$cfg" 2>>"$log") ;;
    node)
      local what=$h
      [ "$n" -gt 0 ] && what=tenants
      out=$(helper spawn --port "$port" --handler "$h" --payload "$payload" ${host:+--host $host} --cwd "$handlers" --log "$log" -- \
        taskset -c "$SERVER_CPU" node node-server.js "$what" "$port" 2>>"$log") ;;
  esac
  if [ -z "$out" ]; then
    local why
    why=$(grep -v '^\s*$' "$log" | tail -1 | cut -c1-160 | tr '"|' "' ")
    record "$(jq -nc --arg rt "$rt" --arg h "$([ "$n" -gt 0 ] && echo "100 tenants" || echo "$h")" --arg why "did not start: $why" '{kind: "fail", rt: $rt, h: $h, why: $why}')"
    echo "    $rt $h: did not start: $why"
    return 1
  fi
  server=${out%% *}
  cold_ms=${out##* }
  return 0
}

# load SECONDS [TENANTS] [BODY]: the load generator on its core; prints the PEERSJSON object.
load() {
  local secs=$1 n=${2:-0} body=${3:-} hdr=()
  [ -n "$host" ] && [ "$n" -eq 0 ] && hdr=(-H "Host: $host")
  if [ "$loadgen" = wrk ]; then
    PEERS_TENANTS=$n PEERS_BODY=$body taskset -c "$LOAD_CPU" wrk -t1 -c"$CONN" -d"${secs}s" --timeout 10s "${hdr[@]}" \
      -s bench/peers/wrk.lua "http://127.0.0.1:$data_port/" | sed -n 's/^PEERSJSON //p'
  else
    # autocannon has no per-run Host flag here: single-tenant isola runs use the /t/ path.
    local url="http://127.0.0.1:$data_port/"
    [ -n "$host" ] && [ "$n" -eq 0 ] && url="http://127.0.0.1:$data_port/t/${host%%.*}/"
    PEERS_TENANTS=$n PEERS_BODY=$body taskset -c "$LOAD_CPU" node bench/peers/autocannon.cjs "$peers/npm" "$url" "$CONN" "$secs" |
      sed -n 's/^PEERSJSON //p'
  fi
}

# one RT HANDLER ROUND [TENANTS]: start, warm up, measure, RSS, stop.
one() {
  local rt=$1 h=$2 r=$3 n=${4:-0} body="" label=$2 j s0 s1
  [ "$n" -gt 0 ] && label="100 tenants"
  [ "$h" = json ] && body=$payload
  start "$rt" "$h" "$n" || return 0
  if [ -n "${SMOKE:-}" ]; then
    printf '    %-8s %-12s answered 200; cold start %s ms, RSS %s MiB\n' "$rt" "$label" "$cold_ms" "$(helper rss "$server")"
    stop_server
    return 0
  fi
  [ "$n" -eq 0 ] && record "$(jq -nc --arg rt "$rt" --arg h "$label" --argjson r "$r" --argjson ms "$cold_ms" '{kind: "cold", rt: $rt, h: $h, round: $r, ms: $ms}')"
  load 1 "$n" "$body" >/dev/null
  s0=$(helper procstat "$server")
  j=$(load "$DURATION" "$n" "$body")
  s1=$(helper procstat "$server")
  if [ -z "$j" ] || ! kill -0 "$server" 2>/dev/null; then
    record "$(jq -nc --arg rt "$rt" --arg h "$label" '{kind: "fail", rt: $rt, h: $h, why: "load run failed or the server died"}')"
    echo "    $rt $label: load run failed (log: $(tail -1 "$work/$rt-$h.log" | cut -c1-120))"
  else
    record "$(echo "$j" | jq -c --arg rt "$rt" --arg h "$label" --argjson r "$r" --argjson s0 "$s0" --argjson s1 "$s1" \
      '. + {kind: "run", rt: $rt, h: $h, round: $r, cpu0: $s0, cpu1: $s1}')"
    record "$(jq -nc --arg rt "$rt" --arg h "$label" --argjson mib "$(helper rss "$server")" '{kind: "rss", rt: $rt, h: $h, mib: $mib}')"
    printf '    %-8s %-12s %s cold %s ms\n' "$rt" "$label" "$(echo "$j" | jq -r '"\(.rps|floor) req/s, p50 \(.p50) ms, p99 \(.p99) ms, errors \(.non2xx + .errors)"')" "$cold_ms"
  fi
  stop_server
}

echo
echo "$ROUNDS round(s) of ${DURATION}s, $CONN connections, servers on core $SERVER_CPU, $loadgen on core $LOAD_CPU"
for r in $(seq "$ROUNDS"); do
  echo "  round $r"
  # Alternate the order of the runtimes from round to round.
  order=$(echo $RUNTIMES | tr ' ' '\n')
  [ $((r % 2)) -eq 0 ] && order=$(echo "$order" | tac)
  for h in $HANDLERS; do
    for rt in $order; do [ -n "${avail[$rt]:-}" ] && one "$rt" "$h" "$r"; done
  done
  for rt in $order; do
    case $rt in isola | workerd | node) [ -n "${avail[$rt]:-}" ] && one "$rt" hello "$r" 100 ;; esac
  done
done

[ -n "${SMOKE:-}" ] && exit 0
if [ -n "${avail[isola]:-}" ]; then
  echo "  isola: first request of new tenants (code cache warm: the same source as a tenant served before)"
  isola_dir="$work/isola-new"
  if start isola hello; then
    for h in $HANDLERS; do
      n=10
      [ "$h" = hello ] && n=$NEW_TENANTS
      helper new-tenants --data-port "$data_port" --admin-port $((data_port + 1)) --token $token --handler "$h" \
        --handlers-dir "$handlers" --payload "$payload" --prefix "new-$h" --count "$n" >>"$results" ||
        echo "    new tenants ($h) failed"
    done
    stop_server
  fi
  echo "  isola: RSS over $IDLE_TENANTS warm idle tenants"
  isola_dir="$work/isola-idle"
  if start isola hello; then
    helper density --data-port "$data_port" --admin-port $((data_port + 1)) --token $token --pid "$server" \
      --handlers-dir "$handlers" --count "$IDLE_TENANTS" >>"$results" || echo "    density failed"
    stop_server
  fi
fi

echo
{
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), servers on core $SERVER_CPU," \
    "$loadgen -t1 -c$CONN on core $LOAD_CPU, $ROUNDS rounds x ${DURATION}s; $(date -u +%Y-%m-%d)"
  echo "isola ${isola_rev:-not built} (--workers 1)${deno_v:+, $deno_v}${workerd_v:+, $workerd_v}, node $(node --version 2>/dev/null)"
  echo
  helper report "$results"
} | tee "$OUT"
echo
echo "(table written to $OUT)"
