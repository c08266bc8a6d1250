// Fallback load generator of bench/peers.sh when wrk cannot be installed:
// node autocannon.cjs AUTOCANNON_DIR URL CONNECTIONS SECONDS, with the same
// PEERS_BODY / PEERS_TENANTS variables as wrk.lua and the same PEERSJSON line.
const [dir, url, conns, secs] = process.argv.slice(2);
const autocannon = require(require.resolve("autocannon", { paths: [dir] }));
const fs = require("fs");
const opts = { url, connections: Number(conns), duration: Number(secs), pipelining: 1 };
if (process.env.PEERS_BODY) {
  opts.method = "POST";
  opts.body = fs.readFileSync(process.env.PEERS_BODY);
  opts.headers = { "content-type": "application/json" };
}
const n = Number(process.env.PEERS_TENANTS || 0);
if (n > 0) {
  opts.requests = [{ setupRequest(req) {
    req.headers = Object.assign({}, req.headers, { host: `t${String(Math.floor(Math.random() * n)).padStart(2, "0")}.localhost` });
    return req;
  } }];
}
autocannon(opts, (err, r) => {
  if (err) { console.error(err); process.exit(1); }
  const line = { rps: r.requests.total / (r.duration || Number(secs)), p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max,
    requests: r.requests.total, non2xx: r.non2xx, errors: r.errors + r.timeouts };
  console.log("PEERSJSON " + JSON.stringify(line));
});
