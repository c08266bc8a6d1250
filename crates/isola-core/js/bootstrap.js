// isola's base bootstrap. It runs once, inside the snapshot creator; every
// tenant isolate starts from the heap it leaves behind, so nothing here runs
// again per tenant. It receives the native ops object and returns the
// internals object that the Rust side drives (stored as snapshot context data,
// never reachable from tenant code).
(function bootstrap(ops) {
  "use strict";

  const MAX_DEPTH = 4;
  const MAX_ITEMS = 100;
  const MAX_LINE = 64 * 1024;
  const ObjectPrototypeToString = Object.prototype.toString;
  const hasOwn = Object.prototype.hasOwnProperty;

  ops.bootstrapMarker();

  // ---------- console ----------
  function safeString(v) {
    try {
      return String(v);
    } catch {
      return "[unprintable]";
    }
  }

  function formatValue(v, depth, seen) {
    switch (typeof v) {
      case "string":
        return depth === 0 ? v : JSON.stringify(v);
      case "number":
      case "boolean":
      case "undefined":
        return String(v);
      case "bigint":
        return `${v}n`;
      case "symbol":
        return safeString(v);
      case "function":
        return `[Function: ${v.name || "(anonymous)"}]`;
    }
    if (v === null) return "null";
    if (seen.includes(v)) return "[Circular]";
    if (v instanceof Error) {
      try {
        return v.stack || `${v.name}: ${v.message}`;
      } catch {
        return "[Error]";
      }
    }
    if (depth >= MAX_DEPTH) return Array.isArray(v) ? "[Array]" : "[Object]";
    seen.push(v);
    try {
      if (Array.isArray(v)) {
        const parts = [];
        const n = Math.min(v.length, MAX_ITEMS);
        for (let i = 0; i < n; i++) parts.push(formatValue(v[i], depth + 1, seen));
        if (v.length > n) parts.push(`... ${v.length - n} more items`);
        return `[ ${parts.join(", ")} ]`;
      }
      if (ArrayBuffer.isView(v)) {
        const name = v.constructor ? v.constructor.name : "TypedArray";
        return `${name}(${v.length}) [ ${Array.prototype.slice.call(v, 0, MAX_ITEMS).join(", ")} ]`;
      }
      if (v instanceof Map) return `Map(${v.size}) {}`;
      if (v instanceof Set) return `Set(${v.size}) {}`;
      const keys = Object.keys(v);
      const parts = [];
      for (const k of keys.slice(0, MAX_ITEMS)) {
        let item;
        try {
          item = formatValue(v[k], depth + 1, seen);
        } catch {
          item = "[Getter threw]";
        }
        parts.push(`${k}: ${item}`);
      }
      if (keys.length > MAX_ITEMS) parts.push(`... ${keys.length - MAX_ITEMS} more keys`);
      return parts.length ? `{ ${parts.join(", ")} }` : "{}";
    } catch {
      return safeString(ObjectPrototypeToString.call(v));
    } finally {
      seen.pop();
    }
  }

  function format(args) {
    let out = "";
    for (let i = 0; i < args.length; i++) {
      if (i) out += " ";
      out += formatValue(args[i], 0, []);
      if (out.length > MAX_LINE) return out.slice(0, MAX_LINE) + "...[truncated]";
    }
    return out;
  }

  const counts = new Map();
  const timersByLabel = new Map();
  const console = {
    log: (...a) => ops.print(0, format(a)),
    info: (...a) => ops.print(0, format(a)),
    debug: (...a) => ops.print(0, format(a)),
    warn: (...a) => ops.print(1, format(a)),
    error: (...a) => ops.print(1, format(a)),
    trace: (...a) => ops.print(1, format(["Trace:", ...a]) + "\n" + (new Error().stack || "").split("\n").slice(2).join("\n")),
    assert: (cond, ...a) => {
      if (!cond) ops.print(1, format(["Assertion failed:", ...a]));
    },
    count: (label = "default") => {
      const n = (counts.get(label) || 0) + 1;
      counts.set(label, n);
      ops.print(0, `${label}: ${n}`);
    },
    time: (label = "default") => timersByLabel.set(label, Date.now()),
    timeEnd: (label = "default") => {
      const t = timersByLabel.get(label);
      if (t !== undefined) {
        timersByLabel.delete(label);
        ops.print(0, `${label}: ${Date.now() - t}ms`);
      }
    },
  };

  // ---------- timers ----------
  const timers = new Map();
  let nextTimerId = 1;
  function startTimer(cb, ms, args, repeat) {
    if (typeof cb !== "function") throw new TypeError("timer callback must be a function");
    const id = nextTimerId++;
    const delay = Math.max(0, Number(ms) || 0);
    timers.set(id, { cb, args, repeat, delay });
    ops.timerStart(id, delay);
    return id;
  }
  function clearTimer(id) {
    if (timers.delete(id)) ops.timerClear(id);
  }
  function fireTimer(id) {
    const t = timers.get(id);
    if (!t) return;
    if (t.repeat) ops.timerStart(id, t.delay);
    else timers.delete(id);
    t.cb(...t.args);
  }

  // ---------- encoding ----------
  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
        encode(input = "") {
      const s = String(input);
      // Allocated here, through the tenant's counted ArrayBuffer allocator.
      const out = new Uint8Array(ops.utf8Length(s));
      ops.encodeUtf8Into(s, out);
      return out;
    }
  }
  class TextDecoder {
    #fatal;
    constructor(label = "utf-8", options = {}) {
      const l = String(label).toLowerCase();
      if (l !== "utf-8" && l !== "utf8") throw new RangeError(`TextDecoder: unsupported encoding "${label}"`);
      this.#fatal = !!(options && options.fatal);
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this.#fatal;
    }
    decode(input) {
      if (input === undefined) return "";
      let bytes;
      if (input instanceof Uint8Array) bytes = input;
      else if (ArrayBuffer.isView(input)) bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      else if (input instanceof ArrayBuffer) bytes = new Uint8Array(input);
      else throw new TypeError("TextDecoder.decode: input must be a BufferSource");
      return ops.decodeUtf8(bytes, this.#fatal);
    }
  }
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  // ---------- fetch types ----------
  function normalizeName(name) {
    const n = String(name).toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(n)) throw new TypeError(`Invalid header name: "${name}"`);
    return n;
  }
  class Headers {
    #map = new Map();
    constructor(init) {
      if (init == null) return;
      if (init instanceof Headers) {
        for (const [k, v] of init) this.append(k, v);
      } else if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          if (pair.length !== 2) throw new TypeError("Headers: each pair must have two items");
          this.append(pair[0], pair[1]);
        }
      } else {
        for (const k of Object.keys(init)) this.append(k, init[k]);
      }
    }
    append(name, value) {
      const n = normalizeName(name);
      const v = String(value).trim();
      const prev = this.#map.get(n);
      this.#map.set(n, prev === undefined ? v : `${prev}, ${v}`);
    }
    set(name, value) {
      this.#map.set(normalizeName(name), String(value).trim());
    }
    get(name) {
      const v = this.#map.get(normalizeName(name));
      return v === undefined ? null : v;
    }
    has(name) {
      return this.#map.has(normalizeName(name));
    }
    delete(name) {
      this.#map.delete(normalizeName(name));
    }
    forEach(cb, thisArg) {
      for (const [k, v] of this) cb.call(thisArg, v, k, this);
    }
    *entries() {
      yield* [...this.#map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    }
    *keys() {
      for (const [k] of this.entries()) yield k;
    }
    *values() {
      for (const [, v] of this.entries()) yield v;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
  }

  function bodyToBytes(body) {
    if (body == null) return null;
    if (typeof body === "string") return encoder.encode(body);
    if (body instanceof Uint8Array) return body;
    if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    if (body instanceof ArrayBuffer) return new Uint8Array(body);
    return encoder.encode(String(body));
  }

  // ---------- streams ----------
  class ReadableStream {
    #source;
    #controller;
    #queue = [];
    #waiters = [];
    #closed = false;
    #errored = null;
    #pulling = false;
    #locked = false;
    constructor(source = {}) {
      this.#source = source || {};
      const stream = this;
      this.#controller = {
        enqueue(chunk) {
          stream.#enqueue(chunk);
        },
        close() {
          stream.#close();
        },
        error(e) {
          stream.#fail(e);
        },
        get desiredSize() {
          return 1 - stream.#queue.length;
        },
      };
      if (typeof this.#source.start === "function") {
        try {
          const r = this.#source.start(this.#controller);
          if (r && typeof r.then === "function") r.then(null, (e) => this.#fail(e));
        } catch (e) {
          this.#fail(e);
        }
      }
    }
    #enqueue(chunk) {
      if (this.#closed || this.#errored) throw new TypeError("ReadableStream: enqueue after close");
      const w = this.#waiters.shift();
      if (w) w.resolve({ value: chunk, done: false });
      else this.#queue.push(chunk);
    }
    #close() {
      this.#closed = true;
      if (!this.#queue.length) for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
    }
    #fail(e) {
      this.#errored = e === undefined ? new TypeError("ReadableStream errored") : e;
      this.#queue = [];
      for (const w of this.#waiters.splice(0)) w.reject(this.#errored);
    }
    #pull() {
      if (this.#pulling || this.#closed || this.#errored || typeof this.#source.pull !== "function") return;
      this.#pulling = true;
      Promise.resolve()
        .then(() => this.#source.pull(this.#controller))
        .then(
          () => {
            this.#pulling = false;
            if (this.#waiters.length && !this.#queue.length) this.#pull();
          },
          (e) => {
            this.#pulling = false;
            this.#fail(e);
          },
        );
    }
    #read() {
      if (this.#errored) return Promise.reject(this.#errored);
      if (this.#queue.length) return Promise.resolve({ value: this.#queue.shift(), done: false });
      if (this.#closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) => {
        this.#waiters.push({ resolve, reject });
        this.#pull();
      });
    }
    get locked() {
      return this.#locked;
    }
    getReader() {
      if (this.#locked) throw new TypeError("ReadableStream is locked to a reader");
      this.#locked = true;
      const stream = this;
      return {
        read: () => stream.#read(),
        releaseLock: () => {
          stream.#locked = false;
        },
        cancel: (reason) => stream.#cancel(reason),
      };
    }
    cancel(reason) {
      if (this.#locked) return Promise.reject(new TypeError("ReadableStream is locked to a reader"));
      return this.#cancel(reason);
    }
    async #cancel(reason) {
      this.#queue = [];
      this.#close();
      if (typeof this.#source.cancel === "function") await this.#source.cancel(reason);
    }
    async *[Symbol.asyncIterator]() {
      const reader = this.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          yield value;
        }
      } finally {
        reader.releaseLock();
      }
    }
    static from(iterable) {
      const it = iterable[Symbol.asyncIterator] ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
      return new ReadableStream({
        async pull(c) {
          const { value, done } = await it.next();
          if (done) c.close();
          else c.enqueue(value);
        },
      });
    }
  }

  function chunkBytes(chunk) {
    if (chunk instanceof Uint8Array) return chunk;
    if (typeof chunk === "string") return encoder.encode(chunk);
    if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
    throw new TypeError("stream chunks must be strings or byte arrays");
  }

  async function readAll(stream) {
    const parts = [];
    let n = 0;
    for await (const chunk of stream) {
      const b = chunkBytes(chunk);
      parts.push(b);
      n += b.length;
    }
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  class Body {
    #bytes = null;
    #stream = null;
    #used = false;
    constructor(body) {
      if (body instanceof ReadableStream) this.#stream = body;
      else this.#bytes = bodyToBytes(body);
    }
    get bodyUsed() {
      return this.#used;
    }
    get body() {
      if (this.#stream) return this.#stream;
      if (this.#bytes === null) return null;
      const bytes = this.#bytes;
      this.#bytes = null;
      this.#stream = new ReadableStream({
        start(c) {
          c.enqueue(bytes);
          c.close();
        },
      });
      return this.#stream;
    }
    async #take() {
      if (this.#used) throw new TypeError("Body has already been consumed");
      this.#used = true;
      if (this.#stream) return readAll(this.#stream);
      return this.#bytes || new Uint8Array(0);
    }
    async arrayBuffer() {
      const b = await this.#take();
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    }
    async bytes() {
      return (await this.#take()).slice();
    }
    async text() {
      return decoder.decode(await this.#take());
    }
    async json() {
      return JSON.parse(await this.text());
    }
    // Internal: the raw bytes (or stream) without marking the body used.
    static peek(b) {
      return b.#bytes;
    }
    static stream(b) {
      return b.#stream;
    }
  }

  class Request extends Body {
    #method;
    #url;
    #headers;
    constructor(input, init = {}) {
      const base = input instanceof Request ? input : null;
            super(init.body !== undefined ? init.body : base ? Body.stream(base) || Body.peek(base) : null);
      this.#url = base ? base.url : String(input);
      this.#method = String(init.method || (base ? base.method : "GET")).toUpperCase();
      this.#headers = new Headers(init.headers || (base ? base.headers : undefined));
    }
    get method() {
      return this.#method;
    }
    get url() {
      return this.#url;
    }
    get headers() {
      return this.#headers;
    }
    clone() {
      return new Request(this);
    }
  }

  class Response extends Body {
    #status;
    #statusText;
    #headers;
    constructor(body = null, init = {}) {
      super(body);
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`Response status must be an integer in 200..=599, got ${init.status}`);
      }
      this.#status = status;
      this.#statusText = String(init.statusText || "");
      this.#headers = new Headers(init.headers);
      if (typeof body === "string" && !this.#headers.has("content-type")) {
        this.#headers.set("content-type", "text/plain;charset=UTF-8");
      }
    }
    get status() {
      return this.#status;
    }
    get statusText() {
      return this.#statusText;
    }
    get ok() {
      return this.#status >= 200 && this.#status < 300;
    }
    get headers() {
      return this.#headers;
    }
    static json(data, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(JSON.stringify(data), { ...init, headers });
    }
    static redirect(url, status = 302) {
      return new Response(null, { status, headers: { location: String(url) } });
    }
  }

  // ---------- globals ----------
  const define = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  define("console", console);
  define("setTimeout", (cb, ms, ...args) => startTimer(cb, ms, args, false));
  define("setInterval", (cb, ms, ...args) => startTimer(cb, ms, args, true));
  define("clearTimeout", clearTimer);
  define("clearInterval", clearTimer);
  define("queueMicrotask", (cb) => {
    if (typeof cb !== "function") throw new TypeError("queueMicrotask: callback must be a function");
    Promise.resolve().then(() => cb());
  });
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);
  define("Headers", Headers);
  define("Request", Request);
    define("Response", Response);
  define("ReadableStream", ReadableStream);
  define("self", globalThis);

  // Resizable and growable buffers reserve memory through V8's page
  // allocator, outside the tenant's counted ArrayBuffer budget: refused.
  for (const name of ["ArrayBuffer", "SharedArrayBuffer"]) {
    const Original = globalThis[name];
    if (typeof Original !== "function") continue;
    const Guarded = new Proxy(Original, {
      construct(target, args, newTarget) {
        const opts = args[1];
        if (opts !== null && typeof opts === "object" && opts.maxByteLength !== undefined) {
          throw new RangeError(`${name}: resizable buffers (maxByteLength) are not available in isola`);
        }
        return Reflect.construct(target, args, newTarget === Guarded ? target : newTarget);
      },
    });
    Object.defineProperty(Original.prototype, "constructor", { value: Guarded, writable: true, configurable: true, enumerable: false });
    define(name, Guarded);
  }

  // ---------- internals, driven from Rust ----------
  function errorRecord(e) {
    const rec = { name: "Error", message: "", stack: "", thrown: "error" };
    try {
      if (e instanceof Error) {
        rec.name = safeString(e.name);
        rec.message = safeString(e.message);
        rec.stack = typeof e.stack === "string" ? e.stack : "";
      } else {
        rec.thrown = e === null ? "null" : typeof e;
        rec.name = "Uncaught";
        rec.message = formatValue(e, 0, []);
      }
    } catch {
      rec.message = "[exception could not be described]";
    }
    return rec;
  }

  // Turns a handler's result into a record Rust can read without calling
  // back into tenant code.
    function finish(v) {
    if (v instanceof Response) {
      const headers = [];
      for (const [k, val] of v.headers) headers.push([k, val]);
      const stream = Body.stream(v);
      if (stream) {
        // Streamed: Rust pulls the chunks through `readChunk`.
        return { kind: "response", status: v.status, headers, stream: stream.getReader() };
      }
      return { kind: "response", status: v.status, headers, body: Body.peek(v) || new Uint8Array(0) };
    }
    if (v === undefined) return { kind: "json", json: "null" };
    if (v instanceof Uint8Array) return { kind: "bytes", body: v };
    const json = JSON.stringify(v);
    return { kind: "json", json: json === undefined ? "null" : json };
  }

    function makeRequest(method, url, headers, body, streamed) {
    if (streamed) {
      // The body arrives while the handler runs: each pull asks Rust for the next chunk.
      const stream = new ReadableStream({
        async pull(c) {
          const chunk = await ops.readBody();
          if (chunk === null) c.close();
          else c.enqueue(chunk);
        },
      });
      return new Request(url, { method, headers, body: stream });
    }
    return new Request(url, { method, headers, body: body && body.length ? body : null });
  }

  // One step of a streamed response: the next chunk as bytes, or null at the end.
  async function readChunk(reader) {
    const { value, done } = await reader.read();
    return done ? null : chunkBytes(value);
  }

  async function invoke(ns, entry, request, args, env) {
    const def = ns && ns.default;
    let result;
    if (request) {
      const handler = def && typeof def.fetch === "function" ? def : null;
      if (!handler) throw new TypeError(`${entry} has no fetch handler: export default { async fetch(request, env, ctx) { ... } }`);
      const waits = [];
      const ctx = {
        waitUntil(p) {
          waits.push(
            Promise.resolve(p).catch((e) => console.error("Uncaught (in ctx.waitUntil promise)", e)),
          );
        },
        passThroughOnException() {},
      };
      try {
        result = await handler.fetch(request, env, ctx);
      } finally {
        if (waits.length) background.push(Promise.all(waits));
      }
      if (!(result instanceof Response)) {
        throw new TypeError(`fetch handler in ${entry} must return a Response, got ${result === null ? "null" : typeof result}`);
      }
    } else if (typeof def === "function") {
      result = await def(...args);
    } else if (def && typeof def.fetch === "function" && args.length === 0) {
      result = await def.fetch(new Request("http://localhost/"), env, { waitUntil() {}, passThroughOnException() {} });
    } else if (ns && typeof ns.handler === "function") {
      result = await ns.handler(...args);
    } else if (ns && hasOwn.call(ns, "default")) {
      result = def;
    } else {
      result = undefined;
    }
    return finish(result);
  }

  // Work handed to ctx.waitUntil, kept alive after the response is sent.
  const background = [];
  function takeBackground() {
    if (!background.length) return null;
    return Promise.all(background.splice(0));
  }

    return { invoke, finish, fireTimer, errorRecord, makeRequest, takeBackground, readChunk };
});
