// Deno: `deno run -A deno-serve.js HANDLER.js PORT` serves a Workers-style module with Deno.serve.
const [file, port] = Deno.args;
const mod = (await import(new URL(file, `file://${Deno.cwd()}/`).href)).default;
const ctx = { waitUntil() {}, passThroughOnException() {} };
Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen() {} }, (req) => mod.fetch(req, {}, ctx));
