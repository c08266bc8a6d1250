// node: `node node-server.js HANDLER PORT` with HANDLER one of hello, json, cpu,
// ts, tenants. The same work as the Workers-style modules, written against the
// `http` module (node 20 has no built-in way to serve a fetch handler; an
// adapter through undici's Request/Response would measure the adapter).
// `tenants`: 100 `vm` contexts, each with its own hello handler, picked by Host.
import http from "node:http";
import vm from "node:vm";
import { burn, transform, TS_SOURCE } from "./common.js";

const [handler, port] = process.argv.slice(2);
let ts;
if (handler === "ts") ts = (await import("./typescript.js")).default;

const contexts = {};
if (handler === "tenants") {
  for (let i = 0; i < 100; i++) {
    const ctx = vm.createContext({});
    vm.runInContext('globalThis.handle = (url) => "hello world";', ctx);
    contexts[`t${String(i).padStart(2, "0")}`] = ctx;
  }
}

const handlers = {
  hello(req, res) {
    res.end("hello world");
  },
  json(req, res) {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const out = JSON.stringify(transform(JSON.parse(Buffer.concat(chunks).toString())));
      res.setHeader("content-type", "application/json");
      res.end(out);
    });
  },
  cpu(req, res) {
    res.end(String(burn()));
  },
  ts(req, res) {
    const out = ts.transpileModule(TS_SOURCE, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } });
    res.setHeader("content-type", "text/javascript");
    res.end(out.outputText);
  },
  tenants(req, res) {
    const ctx = contexts[(req.headers.host || "").split(".")[0]];
    if (!ctx) { res.statusCode = 404; res.end("no such tenant"); return; }
    res.end(ctx.handle(req.url));
  },
};
http.createServer(handlers[handler]).listen(Number(port), "127.0.0.1");
