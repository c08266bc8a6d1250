-- wrk script of bench/peers.sh. PEERS_BODY: a file sent as a JSON POST body;
-- PEERS_TENANTS=N: each request to a random tenant tNN.localhost (0..N-1).
-- At the end prints one line "PEERSJSON {...}" with requests/s, p50/p99 (ms),
-- non-2xx/3xx responses and socket errors.
local body_file = os.getenv("PEERS_BODY")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
local tenants = tonumber(os.getenv("PEERS_TENANTS") or "")
if tenants and tenants > 0 then
  math.randomseed(os.time())
  request = function()
    return wrk.format(nil, nil, { Host = string.format("t%02d.localhost", math.random(0, tenants - 1)) })
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'PEERSJSON {"rps": %.1f, "p50": %.3f, "p99": %.3f, "max": %.3f, "requests": %d, "non2xx": %d, "errors": %d}\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
