// workerd: one worker per tenant behind this dispatcher, which routes on the
// Host header (tNN.localhost) through a service binding named tNN.
export default {
  fetch(req, env) {
    const host = req.headers.get("host") || "";
    const svc = env[host.split(".")[0]];
    return svc ? svc.fetch(req) : new Response("no such tenant", { status: 404 });
  },
};
