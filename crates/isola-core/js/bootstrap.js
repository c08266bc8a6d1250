// isola's base bootstrap. It runs once, inside the snapshot creator; every
// tenant isolate starts from the heap it leaves behind, so nothing here runs
// again per tenant. It receives the native ops object and the primordials
// (see primordials.js: built-ins captured before any tenant code exists) and
// returns the internals object that the Rust side drives (stored as snapshot
// context data, never reachable from tenant code).
//
// Tenant code shares this realm: nothing here looks up a global, a prototype
// method or an iterator at call time. Results cross to Rust through native
// ops (`responseHeader`) or null-prototype records that Rust validates again.
(function bootstrap(ops, P, web) {
  "use strict";
  const {
    ArrayIsArray,
    ArrayPrototypeIndexOf,
    ArrayPrototypeJoin,
    ArrayPrototypeSort,
    DateNow,
    JSONParse,
    JSONStringify,
    Map,
    MapPrototypeDelete,
    MapPrototypeForEach,
    MapPrototypeGet,
    MapPrototypeGetSize,
    MapPrototypeHas,
    MapPrototypeSet,
    MathMax,
    MathMin,
    ObjectDefineProperty,
    ObjectKeys,
    ObjectPrototypeHasOwnProperty,
    ObjectPrototypeToString,
    ReflectApply,
    ReflectConstruct,
    RegExpPrototypeExec,
    SetPrototypeGetSize,
    String,
    StringPrototypeSlice,
    StringPrototypeToLowerCase,
    StringPrototypeToUpperCase,
    StringPrototypeTrim,
    TypedArrayPrototypeGetByteLength,
    TypedArrayPrototypeGetLength,
    TypedArrayPrototypeGetSymbolToStringTag,
    TypedArrayPrototypeSet,
    Uint8Array,
    Promise,
    PromiseReject,
    PromiseResolve,
    TypeError,
    RangeError,
    Error,
    Set,
    NumberIsInteger,
    append,
    newArray,
    toBytes,
  } = P;
  const ArrayBufferIsView = P.ArrayBufferIsView;
  const StringPrototypeCharCodeAt = P.FunctionPrototypeBind(Function.prototype.call, String.prototype.charCodeAt);

  const MAX_DEPTH = 4;
  const MAX_ITEMS = 100;
  const MAX_LINE = 64 * 1024;

  ops.bootstrapMarker();

  // ---------- console ----------
  function safeString(v) {
    try {
      return String(v);
    } catch {
      return "[unprintable]";
    }
  }

  function isError(v) {
    try {
      return v instanceof Error;
    } catch {
      return false;
    }
  }

  function formatValue(v, depth, seen) {
    switch (typeof v) {
      case "string":
        return depth === 0 ? v : JSONStringify(StringPrototypeSlice(v, 0, MAX_LINE));
      case "number":
      case "boolean":
      case "undefined":
        return String(v);
      case "bigint":
        return `${v}n`;
      case "symbol":
        return safeString(v);
      case "function": {
        let name = "";
        try {
          name = typeof v.name === "string" ? v.name : "";
        } catch {}
        return `[Function: ${name || "(anonymous)"}]`;
      }
    }
    if (v === null) return "null";
    if (ArrayPrototypeIndexOf(seen, v) !== -1) return "[Circular]";
    if (isError(v)) {
      try {
        const stack = v.stack;
        return typeof stack === "string" && stack ? stack : `${v.name}: ${v.message}`;
      } catch {
        return "[Error]";
      }
    }
    if (depth >= MAX_DEPTH) return ArrayIsArray(v) ? "[Array]" : "[Object]";
    append(seen, v);
    try {
      if (ArrayIsArray(v)) {
        const parts = newArray();
        const len = v.length;
        const n = MathMin(len, MAX_ITEMS);
        for (let i = 0; i < n; i++) append(parts, formatValue(v[i], depth + 1, seen));
        if (len > n) append(parts, `... ${len - n} more items`);
        return `[ ${ArrayPrototypeJoin(parts, ", ")} ]`;
      }
      const tag = TypedArrayPrototypeGetSymbolToStringTag(v);
      if (tag !== undefined) {
        const len = TypedArrayPrototypeGetLength(v);
        const parts = newArray();
        for (let i = 0; i < MathMin(len, MAX_ITEMS); i++) append(parts, String(v[i]));
        return `${tag}(${len}) [ ${ArrayPrototypeJoin(parts, ", ")} ]`;
      }
      const brand = ObjectPrototypeToString(v);
      if (brand === "[object Map]") {
        try {
          return `Map(${MapPrototypeGetSize(v)}) {}`;
        } catch {}
      }
      if (brand === "[object Set]") {
        try {
          return `Set(${SetPrototypeGetSize(v)}) {}`;
        } catch {}
      }
      const keys = ObjectKeys(v);
      const parts = newArray();
      const n = MathMin(keys.length, MAX_ITEMS);
      for (let i = 0; i < n; i++) {
        const k = keys[i];
        let item;
        try {
          item = formatValue(v[k], depth + 1, seen);
        } catch {
          item = "[Getter threw]";
        }
        append(parts, `${k}: ${item}`);
      }
      if (keys.length > n) append(parts, `... ${keys.length - n} more keys`);
      return parts.length ? `{ ${ArrayPrototypeJoin(parts, ", ")} }` : "{}";
    } catch {
      return safeString(ObjectPrototypeToString(v));
    } finally {
      seen.length = seen.length - 1;
    }
  }

  function format(args) {
    let out = "";
    for (let i = 0; i < args.length; i++) {
      if (i) out += " ";
      out += formatValue(args[i], 0, newArray());
      if (out.length > MAX_LINE) return StringPrototypeSlice(out, 0, MAX_LINE) + "...[truncated]";
    }
    return out;
  }

  const printLog = (...a) => ops.print(0, format(a));
  const printError = (...a) => ops.print(1, format(a));
  const counts = new Map();
  const timersByLabel = new Map();
  const MAX_LABELS = 1000;
  const console = {
    log: printLog,
    info: printLog,
    debug: printLog,
    warn: printError,
    error: printError,
    trace: (...a) => {
      const holder = {};
      P.ErrorCaptureStackTrace(holder);
      ops.print(1, `Trace: ${format(a)}\n${typeof holder.stack === "string" ? holder.stack : ""}`);
    },
    assert: (cond, ...a) => {
      if (!cond) ops.print(1, `Assertion failed: ${format(a)}`);
    },
    count: (label = "default") => {
      const l = StringPrototypeSlice(String(label), 0, 256);
      const n = (MapPrototypeGet(counts, l) || 0) + 1;
      if (n > 1 || MapPrototypeGetSize(counts) < MAX_LABELS) MapPrototypeSet(counts, l, n);
      ops.print(0, `${l}: ${n}`);
    },
    time: (label = "default") => {
      const l = StringPrototypeSlice(String(label), 0, 256);
      if (MapPrototypeGetSize(timersByLabel) < MAX_LABELS) MapPrototypeSet(timersByLabel, l, DateNow());
    },
    timeEnd: (label = "default") => {
      const l = StringPrototypeSlice(String(label), 0, 256);
      const t = MapPrototypeGet(timersByLabel, l);
      if (t !== undefined) {
        MapPrototypeDelete(timersByLabel, l);
        ops.print(0, `${l}: ${DateNow() - t}ms`);
      }
    },
  };

  // ---------- encoding ----------
  function encodeUtf8(s) {
    // Allocated here, through the tenant's counted ArrayBuffer allocator.
    const out = new Uint8Array(ops.utf8Length(s));
    ops.encodeUtf8Into(s, out);
    return out;
  }
  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return encodeUtf8(String(input));
    }
    // Writes as many whole code points of `source` as fit into `destination`
    // (a Uint8Array, shared memory included); {read: UTF-16 units, written: bytes}.
    encodeInto(source, destination) {
      if (arguments.length < 2) throw new TypeError(`Failed to execute 'encodeInto' on 'TextEncoder': 2 arguments required, but only ${arguments.length} present.`);
      if (!ArrayBufferIsView(destination) || TypedArrayPrototypeGetSymbolToStringTag(destination) !== "Uint8Array") {
        throw new TypeError("Failed to execute 'encodeInto' on 'TextEncoder': parameter 2 is not of type 'Uint8Array'.");
      }
      const s = String(source);
      const room = TypedArrayPrototypeGetByteLength(destination);
      let read = 0;
      let written = 0;
      while (read < s.length) {
        const c = StringPrototypeCharCodeAt(s, read);
        let units = 1;
        let bytes = c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
        if (c >= 0xd800 && c <= 0xdbff && read + 1 < s.length) {
          const d = StringPrototypeCharCodeAt(s, read + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            units = 2;
            bytes = 4;
          }
        }
        if (written + bytes > room) break;
        read += units;
        written += bytes;
      }
      if (written > 0) TypedArrayPrototypeSet(destination, encodeUtf8(StringPrototypeSlice(s, 0, read)));
      return { read, written };
    }
  }
  // The index where an unfinished UTF-8 sequence at the end of `b` starts
  // (its length if there is none): kept for the next streaming decode.
  function utf8TailStart(b) {
    const n = TypedArrayPrototypeGetByteLength(b);
    for (let i = n - 1; i >= 0 && i >= n - 3; i--) {
      const c = b[i];
      if ((c & 0xc0) === 0x80) continue;
      if (c < 0xc0) return n;
      const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      return n - i < need ? i : n;
    }
    return n;
  }
  // Streaming decoders of legacy encodings keep native state, freed when
  // the stream ends or, for an abandoned one, when its TextDecoder is
  // collected (the registry is made on first use, after the snapshot).
  let decoderRegistry = null;
  const FinalizationRegistryCtor = P.intrinsic("FinalizationRegistry");
  const registryRegister = P.intrinsic("FinalizationRegistry.prototype.register");
  class TextDecoder {
    #fatal;
    #ignoreBOM;
    #encoding;
    #pending = null;
    #started = false;
    #native = null; // legacy encodings: { id } of the native stream state
    constructor(label = "utf-8", options = {}) {
      // encoding_rs resolves every WHATWG label (ASCII whitespace trimmed,
      // any case); the replacement encoding is refused, as the spec says.
      const name = ops.encodingForLabel(String(label));
      if (name === null) throw new RangeError(`TextDecoder: unsupported encoding "${label}"`);
      this.#encoding = name;
      this.#fatal = !!(options && options.fatal);
      this.#ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding() {
      return this.#encoding;
    }
    get fatal() {
      return this.#fatal;
    }
    get ignoreBOM() {
      return this.#ignoreBOM;
    }
    // With {stream: true}, an unfinished sequence at the end waits for the
    // next call, and a BOM is dropped only at the start of the stream.
    decode(input = undefined, options = undefined) {
      const stream = !!(options && options.stream);
      let bytes = input === undefined ? new Uint8Array(0) : toBytes(input);
      if (bytes === undefined) throw new TypeError("TextDecoder.decode: input must be a BufferSource");
      if (this.#encoding !== "utf-8") return this.#decodeLegacy(bytes, stream);
      const pending = this.#pending;
      if (pending !== null) {
        const both = new Uint8Array(TypedArrayPrototypeGetByteLength(pending) + TypedArrayPrototypeGetByteLength(bytes));
        TypedArrayPrototypeSet(both, pending);
        TypedArrayPrototypeSet(both, bytes, TypedArrayPrototypeGetByteLength(pending));
        bytes = both;
      }
      this.#pending = null;
      if (stream) {
        const cut = utf8TailStart(bytes);
        if (cut < TypedArrayPrototypeGetByteLength(bytes)) {
          this.#pending = copyBytes(new Uint8Array(P.TypedArrayPrototypeGetBuffer(bytes), P.TypedArrayPrototypeGetByteOffset(bytes) + cut, TypedArrayPrototypeGetByteLength(bytes) - cut));
          bytes = new Uint8Array(P.TypedArrayPrototypeGetBuffer(bytes), P.TypedArrayPrototypeGetByteOffset(bytes), cut);
        }
      }
      const keepBom = this.#ignoreBOM || this.#started;
      let out;
      try {
        out = ops.decodeUtf8(bytes, this.#fatal, keepBom);
      } catch (e) {
        this.#pending = null;
        this.#started = false;
        throw e;
      }
      this.#started = stream && (this.#started || TypedArrayPrototypeGetByteLength(bytes) > 0);
      return out;
    }
    #decodeLegacy(bytes, stream) {
      const id = this.#native === null ? 0 : this.#native.id;
      let r;
      try {
        r = ops.legacyDecode(this.#encoding, bytes, this.#fatal, this.#ignoreBOM, id, stream);
      } catch (e) {
        if (this.#native !== null) this.#native.id = 0;
        throw e;
      }
      if (r[1] !== 0 && this.#native === null) {
        if (decoderRegistry === null) decoderRegistry = new FinalizationRegistryCtor((box) => ops.legacyDecoderFree(box.id));
        this.#native = { __proto__: null, id: 0 };
        registryRegister(decoderRegistry, this, this.#native);
      }
      if (this.#native !== null) this.#native.id = r[1];
      return r[0];
    }
  }

  // ---------- fetch types ----------
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
  const TOKEN_ANY_CASE = /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;
    function normalizeName(name) {
    const n = StringPrototypeToLowerCase(String(name));
    if (RegExpPrototypeExec(TOKEN, n) === null) throw new TypeError(`Invalid header name: "${name}"`);
    return n;
  }
  // HTTP whitespace (tab, LF, CR, space) is trimmed, nothing else; a value
  // must be a ByteString (no character above U+00FF) without CR, LF or NUL.
  const NumberPrototypeToString = P.intrinsic("Number.prototype.toString");
  const BAD_VALUE = /[\0\r\n]/;
  const NOT_BYTE = /[^\0-\xff]/;
  const isHttpWs = (c) => c === 9 || c === 10 || c === 13 || c === 32;
  function normalizeValue(value) {
    const s = String(value);
    let a = 0;
    let b = s.length;
    while (a < b && isHttpWs(StringPrototypeCharCodeAt(s, a))) a++;
    while (b > a && isHttpWs(StringPrototypeCharCodeAt(s, b - 1))) b--;
    const v = a === 0 && b === s.length ? s : StringPrototypeSlice(s, a, b);
    if (RegExpPrototypeExec(BAD_VALUE, v) !== null) throw new TypeError("Invalid header value: it contains CR, LF or NUL");
    const wide = RegExpPrototypeExec(NOT_BYTE, v);
    if (wide !== null) {
      const c = StringPrototypeCharCodeAt(v, wide.index);
      throw new TypeError(`Invalid header value: character U+${NumberPrototypeToString(c, 16)} is not a byte (values are ByteStrings)`);
    }
    return v;
  }
  function byName(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  class Headers {
    // name -> array of values (Set-Cookie values stay separate).
    #map = new Map();
    constructor(init = undefined) {
      if (init === undefined) return;
      if (init === null) throw new TypeError("Failed to construct 'Headers': null is not a sequence of pairs or a record");
      if (Headers.is(init)) {
        MapPrototypeForEach(init.#map, (values, name) => {
          for (let i = 0; i < values.length; i++) this.#add(name, values[i]);
        });
      } else if (typeof init === "object" || typeof init === "function") {
        if (typeof init[P.SymbolIterator] === "function") {
          // A sequence of pairs: the tenant's own iterable, iterated per spec.
          for (const pair of init) {
            if (pair == null || typeof pair !== "object" || pair.length !== 2) {
              throw new TypeError("Headers: each pair must have exactly two items");
            }
            this.append(pair[0], pair[1]);
          }
        } else {
          const keys = ObjectKeys(init);
          for (let i = 0; i < keys.length; i++) this.append(keys[i], init[keys[i]]);
        }
      } else {
        throw new TypeError("Headers: init must be an object, an iterable of pairs or Headers");
      }
    }
    static is(v) {
      return v !== null && typeof v === "object" && #map in v;
    }
    // Internal: headers from a flat [name, value, name, value, ...] list built by Rust.
    static fromFlat(list) {
      const h = new Headers();
      for (let i = 0; i + 1 < list.length; i += 2) h.#add(list[i], list[i + 1]);
      return h;
    }
    // Internal: calls f(name, value) per header line, names sorted.
    static forEachLine(h, f) {
      const names = newArray();
      MapPrototypeForEach(h.#map, (_v, name) => append(names, name));
      ArrayPrototypeSort(names, byName);
      for (let i = 0; i < names.length; i++) {
        const values = MapPrototypeGet(h.#map, names[i]);
        for (let j = 0; j < values.length; j++) f(names[i], values[j]);
      }
    }
    #add(name, value) {
      const values = MapPrototypeGet(this.#map, name);
      if (values === undefined) MapPrototypeSet(this.#map, name, [value]);
      else append(values, value);
    }
    append(name, value) {
      this.#add(normalizeName(name), normalizeValue(value));
    }
    set(name, value) {
      MapPrototypeSet(this.#map, normalizeName(name), [normalizeValue(value)]);
    }
    get(name) {
      const values = MapPrototypeGet(this.#map, normalizeName(name));
      return values === undefined ? null : ArrayPrototypeJoin(values, ", ");
    }
    getSetCookie() {
      const values = MapPrototypeGet(this.#map, "set-cookie");
      const out = [];
      if (values !== undefined) for (let i = 0; i < values.length; i++) append(out, values[i]);
      return out;
    }
    has(name) {
      return MapPrototypeHas(this.#map, normalizeName(name));
    }
    delete(name) {
      MapPrototypeDelete(this.#map, normalizeName(name));
    }
    forEach(cb, thisArg) {
      const list = this.#list();
      for (let i = 0; i < list.length; i++) ReflectApply(cb, thisArg, [list[i][1], list[i][0], this]);
    }
    // Sorted; values of one name combined, except Set-Cookie (one entry each).
    #list() {
      const out = [];
      const names = newArray();
      MapPrototypeForEach(this.#map, (_v, name) => append(names, name));
      ArrayPrototypeSort(names, byName);
      for (let i = 0; i < names.length; i++) {
        const values = MapPrototypeGet(this.#map, names[i]);
        if (names[i] === "set-cookie") {
          for (let j = 0; j < values.length; j++) append(out, [names[i], values[j]]);
        } else {
          append(out, [names[i], ArrayPrototypeJoin(values, ", ")]);
        }
      }
      return out;
    }
    *entries() {
      const list = this.#list();
      for (let i = 0; i < list.length; i++) yield list[i];
    }
    *keys() {
      const list = this.#list();
      for (let i = 0; i < list.length; i++) yield list[i][0];
    }
    *values() {
      const list = this.#list();
      for (let i = 0; i < list.length; i++) yield list[i][1];
    }
    [P.SymbolIterator]() {
      return this.entries();
    }
  }

  // Blob is a lazy area: until it is loaded, nothing can be a Blob.
  const blobBytes = (v) => (web.__blob === undefined ? undefined : web.__blob.bytesOf(v));
  // FormData too.
  const isFormData = (v) => web.__formdata !== undefined && web.__formdata.isFormData(v);
  // Headers methods as captured now: a tenant may patch Headers.prototype.
  const uncurry = (f) => P.FunctionPrototypeBind(Function.prototype.call, f);
  const HeadersPrototypeGet = uncurry(Headers.prototype.get);
  const HeadersPrototypeHas = uncurry(Headers.prototype.has);
  const HeadersPrototypeSet = uncurry(Headers.prototype.set);
  function bodyToBytes(body) {
    if (body == null) return null;
    if (typeof body === "string") return encodeUtf8(body);
    const inBlob = blobBytes(body);
    if (inBlob !== undefined) return copyBytes(inBlob);
    const bytes = toBytes(body);
    if (bytes !== undefined) return bytes;
    return encodeUtf8(String(body));
  }

  function copyBytes(b) {
    const out = new Uint8Array(TypedArrayPrototypeGetByteLength(b));
    TypedArrayPrototypeSet(out, b);
    return out;
  }

  // ---------- streams ----------
  // The Streams Standard is a lazy area (js/web/streams*.js): loaded when a
  // stream is really needed (a body read as a stream, a streamed request or
  // response, or the tenant using a stream class), never for a body given
  // and read as bytes or text. web.__rs is set once the area has loaded.
  const streams = {
    __proto__: null,
    isReadable: (v) => web.__rs !== undefined && web.__rs.rsOf(v) !== undefined,
    // Locked or read from already (a body cannot use it).
    unusable: (s) => web.__rs.unusable(s),
    // Locks the stream; returns its read(): a promise of { value, done }.
    lockForRuntime: (s) => web.__rs.lockForRuntime(s),
    // A stream over pull(sink) (sink: enqueue, close), a promise per pull.
    fromPull(pull) {
      web.__load("streams");
      return web.__rs.fromPull(pull);
    },
    // Two streams with the stream's chunks (it becomes locked), as tee().
    tee(s) {
      web.__load("streams_more");
      const st = web.__rs.rsOf(s);
      const branches = st.controller.byte ? web.__rsMore.byteTee(st) : web.__rsMore.defaultTee(st);
      return [branches[0].obj, branches[1].obj];
    },
    // A byte stream of one chunk, then closed.
    fromBytes(bytes) {
      web.__load("streams_bytes");
      return web.__rsBytes.fromBytes(bytes);
    },
  };
  web.__streams = P.ObjectFreeze(streams);
  // TextDecoderStream (a lazy area) decodes through these, captured now.
  const TextDecoderProto = TextDecoder.prototype;
  const getOwn = Object.getOwnPropertyDescriptor;
  web.__textDecoder = P.ObjectFreeze({
    __proto__: null,
    TextDecoder,
    decode: P.uncurryThis(TextDecoderProto.decode),
    fatalOf: P.uncurryThis(getOwn(TextDecoderProto, "fatal").get),
    encodingOf: P.uncurryThis(getOwn(TextDecoderProto, "encoding").get),
    ignoreBOMOf: P.uncurryThis(getOwn(TextDecoderProto, "ignoreBOM").get),
  });

  function chunkBytes(chunk) {
    if (typeof chunk === "string") return encodeUtf8(chunk);
    const bytes = toBytes(chunk);
    if (bytes === undefined) throw new TypeError("stream chunks must be strings or byte arrays");
    return bytes;
  }

  async function readAll(stream) {
    const read = streams.lockForRuntime(stream);
    const parts = newArray();
    for (;;) {
      const r = await read();
      if (r.done) break;
      append(parts, chunkBytes(r.value));
    }
    return P.concatBytes(parts);
  }

  class Body {
    #bytes = null;
    #stream = null;
    #used = false;
    #type = null; // the Content-Type the body implies (fetch "extract a body")
    constructor(body) {
      if (streams.isReadable(body)) {
        if (streams.unusable(body)) throw new TypeError("The body's ReadableStream is locked or was read from already.");
        this.#stream = body;
      } else if (isFormData(body)) {
        const r = web.__formdata.serialize(body);
        this.#bytes = r.bytes;
        this.#type = r.type;
      } else {
        const params = web.__paramsBody(body);
        if (params !== undefined) {
          this.#bytes = encodeUtf8(params);
          this.#type = "application/x-www-form-urlencoded;charset=UTF-8";
        } else {
          this.#bytes = bodyToBytes(body);
          if (typeof body === "string") this.#type = "text/plain;charset=UTF-8";
          else if (blobBytes(body) !== undefined) {
            const type = web.__blob.typeOf(body);
            if (type !== "") this.#type = type;
          }
        }
      }
    }
    // Internal: sets the Content-Type the body implies unless `headers` has one.
    static setContentType(b, headers) {
      if (b.#type !== null && !HeadersPrototypeHas(headers, "content-type")) HeadersPrototypeSet(headers, "content-type", b.#type);
    }
    get bodyUsed() {
      return this.#used;
    }
    get body() {
      if (this.#stream) return this.#stream;
      if (this.#bytes === null) return null;
      const bytes = this.#bytes;
      this.#bytes = null;
      this.#stream = streams.fromBytes(bytes);
      return this.#stream;
    }
    async #take() {
      if (this.#used) throw new TypeError("Body has already been consumed");
      if (this.#stream === null && this.#bytes === null) return new Uint8Array(0);
      this.#used = true;
      if (this.#stream) return readAll(this.#stream);
      return this.#bytes || new Uint8Array(0);
    }
    async arrayBuffer() {
      return P.TypedArrayPrototypeGetBuffer(copyBytes(await this.#take()));
    }
    async bytes() {
      return copyBytes(await this.#take());
    }
    async text() {
      return ops.decodeUtf8(await this.#take(), false);
    }
    async json() {
      return JSONParse(ops.decodeUtf8(await this.#take(), false));
    }
    async blob() {
      const h = Response.is(this) ? Response.headersOf(this) : Request.headersOf(this);
      const type = HeadersPrototypeGet(h, "content-type");
      web.__load("blob");
      return web.__blob.make(await this.#take(), type === null ? "" : type);
    }
    async formData() {
      const h = Response.is(this) ? Response.headersOf(this) : Request.headersOf(this);
      const type = HeadersPrototypeGet(h, "content-type");
      const bytes = await this.#take();
      web.__load("formdata");
      return web.__formdata.parse(bytes, type);
    }
    // Internal: the raw bytes (or stream) without marking the body used.
    static peek(b) {
      return b.#bytes;
    }
    static stream(b) {
      return b.#stream;
    }
    // Internal (clone): a second body with the same content; a stream is
    // teed (this body keeps one branch).
    static cloneSource(b) {
      if (b.#used) throw new TypeError("Body has already been consumed");
      if (b.#stream !== null) {
        const tee = web.__streams === undefined ? undefined : web.__streams.tee;
        if (tee === undefined) throw new TypeError("clone: a streamed body cannot be cloned");
        const branches = tee(b.#stream);
        b.#stream = branches[0];
        return branches[1];
      }
      return b.#bytes === null ? null : copyBytes(b.#bytes);
    }
    // Internal (fetch): the body's bytes (or null), marking it used.
    static async take(b) {
      if (b.#stream === null && b.#bytes === null) return null;
      return b.#take();
    }
  }

  const REDIRECT_MODES = ["follow", "manual", "error"];
  // Set while the runtime builds the request it received (an HTTP GET may
  // carry a body, which the handler may read).
  let incoming = false;
  const NORMALIZED_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
  // A method must be a token; the six standard ones are upper-cased, others
  // keep their case (as the Fetch standard says); CONNECT, TRACE and TRACK
  // are forbidden.
  function normalizeMethod(m) {
    const s = String(m);
    if (RegExpPrototypeExec(TOKEN_ANY_CASE, s) === null) throw new TypeError(`Failed to construct 'Request': '${s}' is not a valid HTTP method`);
    const upper = StringPrototypeToUpperCase(s);
    if (upper === "CONNECT" || upper === "TRACE" || upper === "TRACK") throw new TypeError(`Failed to construct 'Request': '${s}' HTTP method is unsupported`);
    return P.ArrayPrototypeIndexOf(NORMALIZED_METHODS, upper) >= 0 ? upper : s;
  }
  class Request extends Body {
    #method;
    #url;
    #headers;
    #redirect;
    #signal;
    constructor(input, init = {}) {
      const base = Request.is(input) ? input : null;
      init = init == null ? {} : init;
      const initBody = init.body;
      super(initBody !== undefined ? initBody : base ? Body.stream(base) || Body.peek(base) : null);
      this.#url = base ? base.#url : String(input);
      this.#method = init.method === undefined ? (base ? base.#method : "GET") : normalizeMethod(init.method);
      if ((this.#method === "GET" || this.#method === "HEAD") && initBody !== undefined && initBody !== null && !incoming) {
        throw new TypeError(`Failed to construct 'Request': a ${this.#method} request cannot have a body`);
      }
      const headers = init.headers;
      this.#headers = new Headers(headers || (base ? base.#headers : undefined));
      const redirect = init.redirect === undefined ? (base ? base.#redirect : "follow") : String(init.redirect);
      if (P.ArrayPrototypeIndexOf(REDIRECT_MODES, redirect) < 0) {
        throw new TypeError(`Failed to construct 'Request': '${redirect}' is not a valid value for redirect (follow, manual or error)`);
      }
      this.#redirect = redirect;
      const signal = init.signal === undefined ? (base ? base.#signal : null) : init.signal;
      if (signal !== null && !web.__abort.isSignal(signal)) {
        throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
      }
      this.#signal = signal;
      Body.setContentType(this, this.#headers);
    }
    static is(v) {
      return v !== null && typeof v === "object" && #method in v;
    }
    static headersOf(r) {
      return r.#headers;
    }
    // Internal (fetch): the signal given at construction, or null.
    static signalOf(r) {
      return r.#signal;
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
    get redirect() {
      return this.#redirect;
    }
    get signal() {
      if (this.#signal === null) this.#signal = web.__abort.create();
      return this.#signal;
    }
    clone() {
      return new Request(this);
    }
  }

  class Response extends Body {
    #status;
    #statusText;
    #headers;
    #url = "";
    #redirected = false;
    #type = "default";
    constructor(body = null, init = {}) {
      super(body);
      init = init == null ? {} : init;
      const given = init.status;
      const status = given === undefined ? 200 : +given;
      if (!NumberIsInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`Response status must be an integer in 200..=599, got ${safeString(given)}`);
      }
      if (body !== null && body !== undefined && (status === 204 || status === 205 || status === 304)) {
        throw new TypeError(`Failed to construct 'Response': a response with status ${status} cannot have a body`);
      }
      this.#status = status;
      this.#statusText = String(init.statusText || "");
      this.#headers = new Headers(init.headers);
      Body.setContentType(this, this.#headers);
    }
    static is(v) {
      return v !== null && typeof v === "object" && #status in v;
    }
    static statusOf(r) {
      return r.#status;
    }
    // Internal (fetch): a response that came from the network.
    static fetched(r, url, redirected) {
      r.#url = url;
      r.#redirected = redirected;
      r.#type = "basic";
      return r;
    }
    // A network error: type "error", status 0, no body.
    static error() {
      const r = new Response(null, { status: 200 });
      r.#status = 0;
      r.#type = "error";
      return r;
    }
    get url() {
      return this.#url;
    }
    get redirected() {
      return this.#redirected;
    }
    get type() {
      return this.#type;
    }
    static headersOf(r) {
      return r.#headers;
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
      init = init == null ? {} : init;
      const text = JSONStringify(data);
      if (text === undefined) throw new TypeError("Response.json: the data is not JSON-serializable");
      const headers = new Headers(init.headers);
      if (!HeadersPrototypeHas(headers, "content-type")) HeadersPrototypeSet(headers, "content-type", "application/json");
      return new Response(text, { status: init.status, statusText: init.statusText, headers });
    }
    clone() {
      if (!Response.is(this)) throw new TypeError("Illegal invocation");
      const r = new Response(Body.cloneSource(this), { status: this.#status, statusText: this.#statusText, headers: this.#headers });
      r.#url = this.#url;
      r.#redirected = this.#redirected;
      return r;
    }
    static redirect(url, status = 302) {
      const href = web.__urlHref(String(url)); // TypeError for an invalid URL
      const s = +status;
      if (s !== 301 && s !== 302 && s !== 303 && s !== 307 && s !== 308) {
        throw new RangeError(`Response.redirect: ${safeString(status)} is not a redirect status (301, 302, 303, 307, 308)`);
      }
      return new Response(null, { status: s, headers: { location: href } });
    }
  }

  // ---------- globals ----------
  const define = (name, value) =>
    ObjectDefineProperty(P.globalThis, name, { __proto__: null, value, writable: true, configurable: true, enumerable: false });
  define("console", console);
  // The global scope as an EventTarget (addEventListener, onerror,
  // onunhandledrejection, onrejectionhandled). The listeners live on an
  // internal target, so an event's currentTarget is that target, not
  // globalThis (a divergence: the global object is V8's, not a class instance).
  const EventTargetProto = web.EventTarget.prototype;
  const globalAdd = EventTargetProto.addEventListener;
  const globalRemove = EventTargetProto.removeEventListener;
  const globalDispatch = EventTargetProto.dispatchEvent;
  const globalTarget = new web.EventTarget();
  const fireEvent = web.__events.fire;
  const { ErrorEvent, PromiseRejectionEvent } = web;
  define("addEventListener", function addEventListener(type, callback, options = undefined) {
    return ReflectApply(globalAdd, globalTarget, [type, callback, options]);
  });
  define("removeEventListener", function removeEventListener(type, callback, options = undefined) {
    return ReflectApply(globalRemove, globalTarget, [type, callback, options]);
  });
  define("dispatchEvent", function dispatchEvent(event) {
    return ReflectApply(globalDispatch, globalTarget, [event]);
  });
  const handlerTypes = ["error", "unhandledrejection", "rejectionhandled"];
  for (let i = 0; i < handlerTypes.length; i++) {
    const type = handlerTypes[i];
    let handler = null;
    const listener = (e) => {
      if (typeof handler !== "function") return;
      const r = ReflectApply(handler, P.globalThis, [e]);
      if (type === "error" && r === true) e.preventDefault();
    };
    ReflectApply(globalAdd, globalTarget, [type, listener]);
    ObjectDefineProperty(P.globalThis, `on${type}`, {
      __proto__: null,
      enumerable: true,
      configurable: true,
      get() {
        return handler;
      },
      set(v) {
        handler = typeof v === "function" || (typeof v === "object" && v !== null) ? v : null;
      },
    });
  }
  // An error no code caught (a listener's, or handed to reportError): an
  // `error` event on the global, then, unless a listener cancelled it, the
  // tenant's log with its stack.
  let reporting = false;
  web.reportError = function reportError(e) {
    if (arguments.length < 1) throw new TypeError("Failed to execute 'reportError': 1 argument required, but only 0 present.");
    if (reporting) {
      printError("Uncaught", e); // thrown by an error listener itself
      return;
    }
    reporting = true;
    try {
      const message = e !== null && typeof e === "object" && typeof e.message === "string" ? e.message : String(e);
      if (fireEvent(globalTarget, new ErrorEvent("error", { cancelable: true, error: e, message }))) printError("Uncaught", e);
    } finally {
      reporting = false;
    }
  };
  // A promise still rejected with no handler after a microtask checkpoint
  // (reported by the runtime): `unhandledrejection`, then the log.
  function unhandledRejection(promise, reason) {
    const ev = new PromiseRejectionEvent("unhandledrejection", { cancelable: true, promise, reason });
    if (fireEvent(globalTarget, ev)) printError("Uncaught (in promise)", reason);
  }
  // A promise reported as unhandled got a handler later.
  function rejectionHandled(promise, reason) {
    fireEvent(globalTarget, new PromiseRejectionEvent("rejectionhandled", { promise, reason }));
  }
  // The web APIs of js/web/*.js (each file puts its names on `web`).
  const WEB_GLOBALS = [
    "setTimeout", "setInterval", "clearTimeout", "clearInterval",
    "DOMException", "Event", "EventTarget", "CustomEvent", "ErrorEvent", "PromiseRejectionEvent", "MessageEvent",
    "AbortController", "AbortSignal",
    "URL", "URLSearchParams",
    "atob", "btoa", "structuredClone", "Navigator", "navigator", "Performance", "performance",
    "reportError",
  ];
  for (let i = 0; i < WEB_GLOBALS.length; i++) {
    const name = WEB_GLOBALS[i];
    if (web[name] === undefined) throw new Error(`bootstrap: js/web left ${name} undefined`);
    define(name, web[name]);
  }
  define("queueMicrotask", (cb) => {
    if (typeof cb !== "function") throw new TypeError("queueMicrotask: callback must be a function");
    (async () => {
      await undefined;
      cb();
    })();
  });
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);
  define("Headers", Headers);
  define("Request", Request);
  define("Response", Response);
  // structuredClone refuses the runtime's own objects (V8 would copy them empty).
  const platformChecks = [
    web.__events.isEvent, web.__events.isTarget, web.__isURL,
    // crypto is a lazy area: until it is loaded, nothing is a CryptoKey.
    (v) => web.__isCryptoKey !== undefined && web.__isCryptoKey(v),
    (v) => blobBytes(v) !== undefined,
    Headers.is, Request.is, Response.is,
  ];
  for (let i = 0; i < platformChecks.length; i++) web.__addPlatformCheck(platformChecks[i]);
  // For the fetch area.
  web.Request = Request;
  web.Response = Response;
  web.__http = P.ObjectFreeze({
    __proto__: null,
    isRequest: Request.is,
    headersOf: Request.headersOf,
    signalOf: Request.signalOf,
    forEachLine: Headers.forEachLine,
    fromFlat: Headers.fromFlat,
    take: Body.take,
    fetched: Response.fetched,
    // WebAssembly.compileStreaming: the bytes of an application/wasm Response.
    async wasmBytes(r) {
      if (!Response.is(r)) throw new TypeError("WebAssembly: Argument 0 must be a Response or a promise of one");
      const type = HeadersPrototypeGet(Response.headersOf(r), "content-type");
      if (type === null || StringPrototypeToLowerCase(StringPrototypeTrim(type)) !== "application/wasm") {
        throw new TypeError(`WebAssembly: the Response's Content-Type must be application/wasm (it is ${type === null ? "missing" : type})`);
      }
      const bytes = await Body.take(r);
      return bytes === null ? new Uint8Array(0) : bytes;
    },
  });

  // The lazy areas (snapshot.rs LAZY_SOURCES): each global is an accessor
  // until first use; its getter runs the area once (within the tenant's
  // budgets), then every global of the area becomes a plain data property.
  // An area is marked loaded only when it ran to the end, so one stopped
  // midway (a CPU kill, a stack overflow) runs again on the next use. A
  // tenant that assigns the global first simply replaces it.
  const ReflectDefineProperty = P.intrinsic("Reflect.defineProperty");
  const ReflectGetOwnPropertyDescriptor = P.intrinsic("Reflect.getOwnPropertyDescriptor");
  const lazyAreas = web.__lazyAreas;
  const lazyLoaded = { __proto__: null };
  const lazyGetters = { __proto__: null };
  const dataProperty = (value) => ({ __proto__: null, value, writable: true, configurable: true, enumerable: false });
  web.__load = (area) => {
    if (lazyLoaded[area] === true) return;
    const rec = lazyAreas[area];
    if (rec === undefined) throw new Error(`isola: no lazy area ${area}`);
    ReflectApply(ops.loadArea(rec.index), undefined, [ops, P, web]);
    lazyLoaded[area] = true;
    const names = rec.names;
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const d = ReflectGetOwnPropertyDescriptor(P.globalThis, name);
      // Still our accessor (not replaced by the tenant): now a data property.
      // A frozen global keeps the accessor, which goes on answering.
      if (d !== undefined && d.get === lazyGetters[name]) ReflectDefineProperty(P.globalThis, name, dataProperty(web[name]));
    }
  };
  const lazyKeys = P.ObjectKeys(lazyAreas);
  for (let a = 0; a < lazyKeys.length; a++) {
    const areaResource = lazyKeys[a];
    const names = lazyAreas[areaResource].names;
    // "isola:web/blob.js" -> "blob"
    const area = P.StringPrototypeSlice(areaResource, 10, -3);
    lazyAreas[area] = lazyAreas[areaResource];
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const get = {
        [name]() {
          web.__load(area);
          return web[name];
        },
      }[name];
      lazyGetters[name] = get;
      ObjectDefineProperty(P.globalThis, name, {
        __proto__: null,
        get,
        set(v) {
          ReflectDefineProperty(P.globalThis, name, dataProperty(v));
        },
        configurable: true,
        enumerable: false,
      });
    }
  }
  define("self", P.globalThis);

  // Resizable and growable buffers reserve memory through V8's page
  // allocator, outside the tenant's counted ArrayBuffer budget: refused. The
  // options are never handed to the real constructor, whatever their shape
  // (object, function, proxy), so V8 never sees a maxByteLength. A native
  // use-counter hook terminates any invocation that creates one anyway.
  const buffers = ["ArrayBuffer", "SharedArrayBuffer"];
  for (let i = 0; i < buffers.length; i++) {
    const name = buffers[i];
    const Original = P.globalThis[name];
    if (typeof Original !== "function") continue;
    const Guarded = new Proxy(Original, {
      __proto__: null,
      construct(target, args, newTarget) {
        const opts = args.length > 1 ? args[1] : undefined;
        if ((typeof opts === "object" && opts !== null) || typeof opts === "function") {
          if (opts.maxByteLength !== undefined) {
            throw new RangeError(`${name}: resizable buffers (maxByteLength) are not available in isola`);
          }
        }
        return ReflectConstruct(target, [args.length > 0 ? args[0] : undefined], newTarget === Guarded ? target : newTarget);
      },
    });
    ObjectDefineProperty(Original.prototype, "constructor", {
      __proto__: null,
      value: Guarded,
      writable: true,
      configurable: true,
      enumerable: false,
    });
    define(name, Guarded);
  }

  // ---------- internals, driven from Rust ----------
  const MAX_ERROR_TEXT = 64 * 1024;
  function clip(s) {
    return s.length > MAX_ERROR_TEXT ? StringPrototypeSlice(s, 0, MAX_ERROR_TEXT) + "...[truncated]" : s;
  }
  function errorRecord(e) {
    const rec = { __proto__: null, name: "Error", message: "", stack: "", thrown: "error" };
    try {
      if (isError(e)) {
        rec.name = clip(safeString(e.name));
        rec.message = clip(safeString(e.message));
        const stack = e.stack;
        rec.stack = typeof stack === "string" ? clip(stack) : "";
      } else {
        rec.thrown = e === null ? "null" : typeof e;
        rec.name = "Uncaught";
        rec.message = clip(formatValue(e, 0, newArray()));
      }
    } catch {
      rec.message = "[exception could not be described]";
    }
    return rec;
  }

  // Turns a handler's result into a null-prototype record for Rust. Response
  // headers go through the `responseHeader` op, which caps their count and size.
  function finish(v) {
    if (Response.is(v)) {
      ops.responseHeadersReset();
      Headers.forEachLine(Response.headersOf(v), ops.responseHeader);
      const stream = Body.stream(v);
      const rec = { __proto__: null, kind: "response", status: Response.statusOf(v) };
      if (stream) {
        // Streamed: Rust pulls the chunks through `readChunk`.
        rec.stream = { __proto__: null, read: streams.lockForRuntime(stream), source: stream };
      } else {
        rec.body = Body.peek(v) || new Uint8Array(0);
      }
      return rec;
    }
    if (v === undefined) return { __proto__: null, kind: "json", json: "null" };
    if (TypedArrayPrototypeGetSymbolToStringTag(v) === "Uint8Array") return { __proto__: null, kind: "bytes", body: v };
    const json = JSONStringify(v);
    return { __proto__: null, kind: "json", json: json === undefined ? "null" : json };
  }

  function makeRequest(method, url, headers, body, streamed) {
    const h = Headers.fromFlat(headers);
    incoming = true;
    try {
      return incomingRequest(method, url, h, body, streamed);
    } finally {
      incoming = false;
    }
  }
  function incomingRequest(method, url, h, body, streamed) {
    if (streamed) {
      // The body arrives while the handler runs: each pull asks Rust for the next chunk.
      const stream = streams.fromPull(async (sink) => {
        const chunk = await ops.readBody();
        if (chunk === null) sink.close();
        else sink.enqueue(chunk);
      });
      return new Request(url, { method, headers: h, body: stream });
    }
    return new Request(url, { method, headers: h, body: body && TypedArrayPrototypeGetByteLength(body) ? body : null });
  }

  // One step of a streamed response: the next chunk as bytes, or null at the end.
  async function readChunk(handle) {
    const r = await handle.read();
    return r.done ? null : chunkBytes(r.value);
  }

  async function settleAll(list) {
    for (let i = 0; i < list.length; i++) await list[i];
  }

  async function guard(p) {
    try {
      await p;
    } catch (e) {
      printError("Uncaught (in ctx.waitUntil promise)", e);
    }
  }

  async function invoke(ns, entry, request, args, env) {
    const def = ns ? ns.default : undefined;
    let result;
    if (request) {
      const handler = def && typeof def.fetch === "function" ? def : null;
      if (!handler) throw new TypeError(`${entry} has no fetch handler: export default { async fetch(request, env, ctx) { ... } }`);
      const waits = newArray();
      const ctx = {
        waitUntil(p) {
          append(waits, guard(p));
        },
        passThroughOnException() {},
      };
      try {
        result = await handler.fetch(request, env, ctx);
      } finally {
        if (waits.length) append(background, settleAll(waits));
      }
      if (!Response.is(result)) {
        throw new TypeError(`fetch handler in ${entry} must return a Response, got ${result === null ? "null" : typeof result}`);
      }
    } else if (typeof def === "function") {
      result = await ReflectApply(def, undefined, args);
    } else if (def && typeof def.fetch === "function" && args.length === 0) {
      result = await def.fetch(new Request("http://localhost/"), env, { waitUntil() {}, passThroughOnException() {} });
    } else if (ns && typeof ns.handler === "function") {
      result = await ReflectApply(ns.handler, undefined, args);
    } else if (ns && ObjectPrototypeHasOwnProperty(ns, "default")) {
      result = def;
    } else {
      result = undefined;
    }
    return finish(result);
  }

  // Work handed to ctx.waitUntil, kept alive after the response is sent.
  let background = newArray();
  function takeBackground() {
    if (!background.length) return null;
    const list = background;
    background = newArray();
    return settleAll(list);
  }

  const fireTimer = web.__fireTimer;
  // WebAssembly for a tenant that has it enabled: V8's namespace (removed
  // from the context at creation), wrapped so its memories and code count.
  function enableWasm(ns) {
    web.__load("wasm");
    define("WebAssembly", web.__wasm.install(ns));
  }

  return { __proto__: null, invoke, finish, fireTimer, enableWasm, rejectionHandled, unhandledRejection, errorRecord, makeRequest, takeBackground, readChunk };
});
