// web/streams.js: the WHATWG Streams Standard's readable side:
// ReadableStream (default and byte sources, tee, pipeTo, pipeThrough, async
// iteration, ReadableStream.from), its readers (default and BYOB) and
// controllers (default, byte, BYOB request), and the queuing strategies; plus
// web.__rs, the internals the other stream areas (streams_writable.js,
// streams_codecs.js) and the bootstrap (web.__streams) use. The byte stream
// algorithms live in streams_bytes.js (loaded by this file).
//
// A lazy area (snapshot.rs LAZY_SOURCES): it runs after tenant code, so every
// built-in comes from the primordials, internal lists are read by index and
// every object this file creates for itself has a null prototype. Promise
// reactions use the intrinsic Promise.prototype.then.
//
// State: each public object holds one internal record (#r); the spec's
// abstract operations work on records. pipeTo needs WritableStream, whose
// area (streams_writable.js) loads this one first: a destination that is a
// WritableStream means web.__ws is there.
//
// Divergences from the spec:
// - Cloning chunks in tee (cloneForBranch2) is never asked for (as the spec's
//   public tee()); structured cloning of chunks is not supported.
// - A Promise.prototype.constructor patched by the tenant changes how the
//   intrinsic `then` builds derived promises (the tenant's own streams only).
(function streams(ops, P, web) {
  "use strict";
  const { ObjectDefineProperty, ObjectFreeze, Promise, PromiseReject, PromiseResolve, ReflectApply } = P;
  const { RangeError, String, TypeError, append, newArray } = P;
  const I = P.intrinsic;
  const then = I("Promise.prototype.then");
  const NumberIsNaN = I("Number.isNaN");
  const MathFloor = I("Math.floor");
  const SymbolAsyncIterator = I("Symbol.asyncIterator");
  const { finish, needArgs } = web.__events;
  const abort = web.__abort;
  const kCreate = { __proto__: null };

  // ---------- shared helpers (also web.__rs for the other stream files) ----------
  const isObject = (v) => v !== null && (typeof v === "object" || typeof v === "function");
  function deferred() {
    const d = { __proto__: null, promise: undefined, resolve: undefined, reject: undefined, settled: false };
    d.promise = new Promise((res, rej) => {
      d.resolve = (v) => { d.settled = true; res(v); };
      d.reject = (e) => { d.settled = true; rej(e); };
    });
    return d;
  }
  const noop = () => {};
  const markHandled = (p) => { then(p, undefined, noop); };
  const rejectedHandled = (e) => { const p = PromiseReject(e); markHandled(p); return p; };
  const resolved = () => PromiseResolve(undefined);
  // upon fulfilment / rejection of p (the spec's "react").
  const react = (p, onF, onR) => { then(p, onF, onR); };
  // then(p, onF, onR) for reactions that may return one of this file's own
  // promises: it is followed with the intrinsic then, never resolved into
  // the derived promise (which would look up a `then` the tenant may patch).
  function follow(p, onF, onR) {
    const d = deferred();
    const settle = (f, v) => {
      let r;
      try {
        r = f(v);
      } catch (e) {
        d.reject(e);
        return;
      }
      if (r !== null && typeof r === "object") react(r, d.resolve, d.reject);
      else d.resolve(r);
    };
    react(p, onF === undefined ? d.resolve : (v) => settle(onF, v), onR === undefined ? d.reject : (e) => settle(onR, e));
    return d.promise;
  }
  // Settles d as p settles (instead of resolving d with p).
  const settleWith = (d, p) => react(p, d.resolve, d.reject);
  // Invoking a WebIDL callback that returns a promise: a throw becomes a rejection.
  function promiseCall(fn, self, args) {
    try {
      return PromiseResolve(ReflectApply(fn, self, args));
    } catch (e) {
      return PromiseReject(e);
    }
  }
  // A queued microtask (one tick, no lookups).
  const microtask = (fn) => { (async () => { await undefined; fn(); })(); };
  // Settles when every promise of `list` did: fulfilled with undefined, or
  // rejected with the first rejection (Promise.all without iterators).
  function waitAll(list) {
    const d = deferred();
    let left = list.length;
    if (left === 0) d.resolve(undefined);
    for (let i = 0; i < list.length; i++) {
      react(list[i], () => { if (--left === 0) d.resolve(undefined); }, d.reject);
    }
    return d.promise;
  }

  // A FIFO read by index: { a, h }.
  const qNew = () => ({ __proto__: null, a: newArray(), h: 0 });
  const qLen = (q) => q.a.length - q.h;
  const qPush = (q, v) => append(q.a, v);
  const qPeek = (q) => q.a[q.h];
  function qShift(q) {
    const v = q.a[q.h];
    q.a[q.h] = undefined;
    q.h++;
    if (q.h === q.a.length) {
      q.a = newArray();
      q.h = 0;
    } else if (q.h >= 1024 && q.h * 2 >= q.a.length) {
      const rest = newArray();
      for (let i = q.h; i < q.a.length; i++) append(rest, q.a[i]);
      q.a = rest;
      q.h = 0;
    }
    return v;
  }

  // Queue-with-sizes on a controller record (queue, queueTotalSize).
  function resetQueue(c) {
    c.queue = qNew();
    c.queueTotalSize = 0;
  }
  function enqueueValueWithSize(c, value, size) {
    if (typeof size !== "number" || NumberIsNaN(size) || size < 0) throw new RangeError("The queuing strategy's size must be a non-negative number.");
    if (size === 1 / 0) throw new RangeError("The queuing strategy's size must be finite.");
    qPush(c.queue, { __proto__: null, value, size });
    c.queueTotalSize += size;
  }
  function dequeueValue(c) {
    const pair = qShift(c.queue);
    c.queueTotalSize -= pair.size;
    if (c.queueTotalSize < 0) c.queueTotalSize = 0;
    return pair.value;
  }

  // QueuingStrategy dictionary (highWaterMark, size), read in WebIDL order.
  function strategyDict(v, where) {
    if (v === undefined || v === null) return { __proto__: null, highWaterMark: undefined, size: undefined };
    if (!isObject(v)) throw new TypeError(`${where}: the queuing strategy is not an object.`);
    const hwm = v.highWaterMark;
    const highWaterMark = hwm === undefined ? undefined : +hwm;
    const size = v.size;
    if (size !== undefined && typeof size !== "function") throw new TypeError(`${where}: the queuing strategy's size is not a function.`);
    return { __proto__: null, highWaterMark, size };
  }
  function extractHighWaterMark(s, dflt) {
    if (s.highWaterMark === undefined) return dflt;
    if (NumberIsNaN(s.highWaterMark) || s.highWaterMark < 0) throw new RangeError("The queuing strategy's highWaterMark must be a non-negative number.");
    return s.highWaterMark;
  }
  function extractSizeAlgorithm(s) {
    const size = s.size;
    if (size === undefined) return () => 1;
    return (chunk) => +ReflectApply(size, undefined, [chunk]);
  }
  // A callback member of an underlying source/sink/transformer dictionary.
  function callbackMember(dict, name, where) {
    const f = dict[name];
    if (f === undefined) return undefined;
    if (typeof f !== "function") throw new TypeError(`${where}: '${name}' is not a function.`);
    return f;
  }

  // WebIDL [EnforceRange] unsigned long long.
  function enforceRangeULL(v, where) {
    const n = +v;
    if (n !== n || n === 1 / 0 || n === -1 / 0) throw new TypeError(`${where}: the value is not a finite number.`);
    const x = n < 0 ? -MathFloor(-n) : MathFloor(n);
    if (x < 0 || x > 9007199254740991) throw new TypeError(`${where}: the value is outside the 'unsigned long long' range.`);
    return x === 0 ? 0 : x;
  }

  // ---------- the stream record and its abstract operations ----------
  let rsOf; // (v) => the record of a ReadableStream, or undefined
  const newStreamRecord = () => ({ __proto__: null, state: "readable", reader: undefined, storedError: undefined, disturbed: false, controller: undefined, obj: undefined });
  function createStreamRecord() {
    const s = newStreamRecord();
    new ReadableStream(kCreate, s);
    return s;
  }
  const isLocked = (s) => s.reader !== undefined;

  function readableStreamCancel(s, reason) {
    s.disturbed = true;
    if (s.state === "closed") return resolved();
    if (s.state === "errored") return PromiseReject(s.storedError);
    readableStreamClose(s);
    const reader = s.reader;
    if (reader !== undefined && reader.byob) {
      const reqs = reader.requests;
      reader.requests = qNew();
      while (qLen(reqs) > 0) qShift(reqs).close(undefined);
    }
    return then(s.controller.cancelSteps(reason), noop);
  }
  function readableStreamClose(s) {
    s.state = "closed";
    const reader = s.reader;
    if (reader === undefined) return;
    reader.closed.resolve(undefined);
    if (!reader.byob) {
      const reqs = reader.requests;
      reader.requests = qNew();
      while (qLen(reqs) > 0) qShift(reqs).close(undefined);
    }
  }
  function readableStreamError(s, e) {
    s.state = "errored";
    s.storedError = e;
    const reader = s.reader;
    if (reader === undefined) return;
    reader.closed.reject(e);
    markHandled(reader.closed.promise);
    errorReadRequests(reader, e);
  }
  function errorReadRequests(reader, e) {
    const reqs = reader.requests;
    reader.requests = qNew();
    while (qLen(reqs) > 0) qShift(reqs).error(e);
  }
  const addReadRequest = (s, req) => qPush(s.reader.requests, req);
  function fulfillReadRequest(s, chunk, done) {
    const req = qShift(s.reader.requests);
    if (done) req.close(chunk);
    else req.chunk(chunk);
  }
  const numReadRequests = (s) => qLen(s.reader.requests);
  const hasDefaultReader = (s) => s.reader !== undefined && !s.reader.byob;
  const hasBYOBReader = (s) => s.reader !== undefined && s.reader.byob;

  // ---------- readers ----------
  const released = () => new TypeError("The reader's lock on the stream was released.");
  function readerGenericInitialize(reader, s) {
    reader.stream = s;
    s.reader = reader;
    reader.closed = deferred();
    if (s.state === "closed") reader.closed.resolve(undefined);
    else if (s.state === "errored") {
      reader.closed.reject(s.storedError);
      markHandled(reader.closed.promise);
    }
  }
  function readerGenericRelease(reader) {
    const s = reader.stream;
    if (s.state !== "readable") reader.closed = deferred();
    reader.closed.reject(released());
    markHandled(reader.closed.promise);
    s.controller.releaseSteps();
    s.reader = undefined;
    reader.stream = undefined;
  }
  function readerRelease(reader) {
    readerGenericRelease(reader);
    errorReadRequests(reader, released());
  }
  const newReaderRecord = (byob) => ({ __proto__: null, stream: undefined, closed: undefined, requests: qNew(), byob, obj: undefined });
  function acquireReader(s, byob) {
    if (isLocked(s)) throw new TypeError("The ReadableStream is locked to a reader.");
    if (byob && !s.controller.byte) throw new TypeError("A BYOB reader needs a byte stream (one made with type: 'bytes').");
    const r = newReaderRecord(byob);
    readerGenericInitialize(r, s);
    return r;
  }
  function defaultReaderRead(reader, req) {
    const s = reader.stream;
    s.disturbed = true;
    if (s.state === "closed") req.close(undefined);
    else if (s.state === "errored") req.error(s.storedError);
    else s.controller.pullSteps(req);
  }
  // A read request settling a deferred with an iterator result.
  const promiseReadRequest = (d) => ({
    __proto__: null,
    chunk: (v) => d.resolve({ value: v, done: false }),
    close: (v) => d.resolve({ value: v, done: true }),
    error: d.reject,
  });
  const illegal = () => new TypeError("Illegal invocation");
  const noStream = () => new TypeError("The reader has no stream: its lock was released.");

  let readerOf; // (v) => the record of a ReadableStreamDefaultReader
  class ReadableStreamDefaultReader {
    #r;
    constructor(stream, rec = undefined) {
      if (stream === kCreate) {
        this.#r = rec;
        rec.obj = this;
        return;
      }
      needArgs(arguments.length, 1, "ReadableStreamDefaultReader");
      const s = rsOf(stream);
      if (s === undefined) throw new TypeError("Failed to construct 'ReadableStreamDefaultReader': parameter 1 is not of type 'ReadableStream'.");
      this.#r = acquireReader(s, false);
      this.#r.obj = this;
    }
    static {
      readerOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get closed() {
      const r = readerOf(this);
      return r === undefined ? PromiseReject(illegal()) : r.closed.promise;
    }
    read() {
      const r = readerOf(this);
      if (r === undefined) return PromiseReject(illegal());
      if (r.stream === undefined) return PromiseReject(noStream());
      const d = deferred();
      defaultReaderRead(r, promiseReadRequest(d));
      return d.promise;
    }
    releaseLock() {
      const r = readerOf(this);
      if (r === undefined) throw illegal();
      if (r.stream !== undefined) readerRelease(r);
    }
    cancel(reason = undefined) {
      const r = readerOf(this);
      if (r === undefined) return PromiseReject(illegal());
      if (r.stream === undefined) return PromiseReject(noStream());
      return readableStreamCancel(r.stream, reason);
    }
  }
  finish(ReadableStreamDefaultReader, "ReadableStreamDefaultReader");

  // ---------- ReadableStreamDefaultController ----------
  let dcOf;
  class ReadableStreamDefaultController {
    #r;
    constructor(key = undefined, rec = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
      this.#r = rec;
      rec.obj = this;
    }
    static {
      dcOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get desiredSize() {
      const c = dcOf(this);
      if (c === undefined) throw illegal();
      return dcGetDesiredSize(c);
    }
    close() {
      const c = dcOf(this);
      if (c === undefined) throw illegal();
      if (!dcCanCloseOrEnqueue(c)) throw new TypeError("The stream is closed or closing: it cannot be closed again.");
      dcClose(c);
    }
    enqueue(chunk = undefined) {
      const c = dcOf(this);
      if (c === undefined) throw illegal();
      if (!dcCanCloseOrEnqueue(c)) throw new TypeError("The stream is closed or closing: it cannot take more chunks.");
      dcEnqueue(c, chunk);
    }
    error(e = undefined) {
      const c = dcOf(this);
      if (c === undefined) throw illegal();
      dcError(c, e);
    }
  }
  finish(ReadableStreamDefaultController, "ReadableStreamDefaultController");

  // The spec's CallPullIfNeeded, shared by the default and byte controllers
  // (each with its own ShouldCallPull and error steps).
  function callPullIfNeeded(c, shouldCallPull, fail) {
    if (!shouldCallPull(c)) return;
    if (c.pulling) {
      c.pullAgain = true;
      return;
    }
    c.pulling = true;
    react(c.pullAlgorithm(c), () => {
      c.pulling = false;
      if (c.pullAgain) {
        c.pullAgain = false;
        callPullIfNeeded(c, shouldCallPull, fail);
      }
    }, (e) => fail(c, e));
  }
  function dcCallPullIfNeeded(c) {
    callPullIfNeeded(c, dcShouldCallPull, dcError);
  }
  function dcShouldCallPull(c) {
    const s = c.stream;
    if (!dcCanCloseOrEnqueue(c) || !c.started) return false;
    if (isLocked(s) && numReadRequests(s) > 0) return true;
    return dcGetDesiredSize(c) > 0;
  }
  function dcClearAlgorithms(c) {
    c.pullAlgorithm = undefined;
    c.cancelAlgorithm = undefined;
    c.sizeAlgorithm = undefined;
  }
  function dcClose(c) {
    if (!dcCanCloseOrEnqueue(c)) return;
    c.closeRequested = true;
    if (qLen(c.queue) === 0) {
      dcClearAlgorithms(c);
      readableStreamClose(c.stream);
    }
  }
  function dcEnqueue(c, chunk) {
    if (!dcCanCloseOrEnqueue(c)) return;
    const s = c.stream;
    if (isLocked(s) && numReadRequests(s) > 0) fulfillReadRequest(s, chunk, false);
    else {
      try {
        enqueueValueWithSize(c, chunk, c.sizeAlgorithm(chunk));
      } catch (e) {
        dcError(c, e);
        throw e;
      }
    }
    dcCallPullIfNeeded(c);
  }
  function dcError(c, e) {
    if (c.stream.state !== "readable") return;
    resetQueue(c);
    dcClearAlgorithms(c);
    readableStreamError(c.stream, e);
  }
  function dcGetDesiredSize(c) {
    const st = c.stream.state;
    if (st === "errored") return null;
    if (st === "closed") return 0;
    return c.strategyHWM - c.queueTotalSize;
  }
  const dcHasBackpressure = (c) => !dcShouldCallPull(c);
  const dcCanCloseOrEnqueue = (c) => !c.closeRequested && c.stream.state === "readable";

  // Runs a controller's start algorithm and, once it settled, starts pulling.
  function startController(c, start, onStarted, onError) {
    const startResult = start(c);
    react(PromiseResolve(startResult), () => {
      c.started = true;
      onStarted(c);
    }, (e) => onError(c, e));
  }
  // SetUpReadableStreamDefaultController. The algorithms take the controller
  // record: start(c), pull(c), cancel(reason).
  function setUpDefaultController(s, start, pull, cancel, hwm, size) {
    const c = {
      __proto__: null, byte: false, stream: s, queue: undefined, queueTotalSize: 0, started: false, closeRequested: false,
      pullAgain: false, pulling: false, sizeAlgorithm: size, strategyHWM: hwm, pullAlgorithm: pull, cancelAlgorithm: cancel,
      obj: undefined, cancelSteps: undefined, pullSteps: undefined, releaseSteps: noop,
    };
    c.cancelSteps = (reason) => {
      resetQueue(c);
      const r = c.cancelAlgorithm(reason);
      dcClearAlgorithms(c);
      return r;
    };
    c.pullSteps = (req) => {
      if (qLen(c.queue) > 0) {
        const chunk = dequeueValue(c);
        if (c.closeRequested && qLen(c.queue) === 0) {
          dcClearAlgorithms(c);
          readableStreamClose(s);
        } else dcCallPullIfNeeded(c);
        req.chunk(chunk);
      } else {
        addReadRequest(s, req);
        dcCallPullIfNeeded(c);
      }
    };
    resetQueue(c);
    new ReadableStreamDefaultController(kCreate, c);
    s.controller = c;
    startController(c, start, dcCallPullIfNeeded, dcError);
    return c;
  }
  // CreateReadableStream: a stream over internal algorithms.
  function createReadableStream(start, pull, cancel, hwm = 1, size = () => 1) {
    const s = createStreamRecord();
    setUpDefaultController(s, start, pull, cancel, hwm, size);
    return s;
  }

  // The other stream files, loaded when first needed.
  const bytes = () => {
    web.__load("streams_bytes");
    return web.__rsBytes;
  };
  const more = () => {
    web.__load("streams_more");
    return web.__rsMore;
  };

  // ---------- ReadableStream ----------
  class ReadableStream {
    #r;
    constructor(underlyingSource = undefined, strategy = undefined) {
      if (underlyingSource === kCreate) {
        this.#r = strategy;
        strategy.obj = this;
        return;
      }
      const where = "Failed to construct 'ReadableStream'";
      if (underlyingSource !== undefined && !isObject(underlyingSource)) throw new TypeError(`${where}: parameter 1 is not an object.`);
      const st = strategyDict(strategy, where);
      const src = underlyingSource === undefined ? { __proto__: null } : underlyingSource;
      // The UnderlyingSource dictionary, members in WebIDL (alphabetical) order.
      const autoRaw = src.autoAllocateChunkSize;
      const auto = autoRaw === undefined ? undefined : enforceRangeULL(autoRaw, where);
      const cancel = callbackMember(src, "cancel", where);
      const pull = callbackMember(src, "pull", where);
      const start = callbackMember(src, "start", where);
      const typeRaw = src.type;
      const type = typeRaw === undefined ? undefined : String(typeRaw);
      if (type !== undefined && type !== "bytes") throw new TypeError(`${where}: '${type}' is not a valid stream type (only 'bytes').`);
      const s = newStreamRecord();
      this.#r = s;
      s.obj = this;
      const startAlg = (c) => (start === undefined ? undefined : ReflectApply(start, underlyingSource, [c.obj]));
      const pullAlg = (c) => (pull === undefined ? resolved() : promiseCall(pull, underlyingSource, [c.obj]));
      const cancelAlg = (reason) => (cancel === undefined ? resolved() : promiseCall(cancel, underlyingSource, [reason]));
      if (type === "bytes") {
        if (st.size !== undefined) throw new RangeError(`${where}: a byte stream's strategy cannot have a size function.`);
        const hwm = extractHighWaterMark(st, 0);
        if (auto === 0) throw new TypeError(`${where}: autoAllocateChunkSize must be greater than 0.`);
        bytes().setUp(s, startAlg, pullAlg, cancelAlg, hwm, auto);
      } else {
        const size = extractSizeAlgorithm(st);
        setUpDefaultController(s, startAlg, pullAlg, cancelAlg, extractHighWaterMark(st, 1), size);
      }
    }
    static {
      rsOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get locked() {
      const s = rsOf(this);
      if (s === undefined) throw illegal();
      return isLocked(s);
    }
    cancel(reason = undefined) {
      const s = rsOf(this);
      if (s === undefined) return PromiseReject(illegal());
      if (isLocked(s)) return PromiseReject(new TypeError("Cannot cancel a locked ReadableStream."));
      return readableStreamCancel(s, reason);
    }
    getReader(options = undefined) {
      const s = rsOf(this);
      if (s === undefined) throw illegal();
      const where = "Failed to execute 'getReader' on 'ReadableStream'";
      if (options !== undefined && options !== null && !isObject(options)) throw new TypeError(`${where}: the options are not an object.`);
      const modeRaw = options === undefined || options === null ? undefined : options.mode;
      if (modeRaw === undefined) return new ReadableStreamDefaultReader(kCreate, acquireReader(s, false));
      const mode = String(modeRaw);
      if (mode !== "byob") throw new TypeError(`${where}: '${mode}' is not a valid reader mode (only 'byob').`);
      const b = bytes();
      return b.readerObject(acquireReader(s, true));
    }
    pipeThrough(transform, options = undefined) {
      const s = rsOf(this);
      if (s === undefined) throw illegal();
      needArgs(arguments.length, 1, "ReadableStream", "pipeThrough");
      return more().pipeThrough(s, transform, options);
    }
    pipeTo(destination, options = undefined) {
      const s = rsOf(this);
      if (s === undefined) return PromiseReject(illegal());
      if (arguments.length < 1) return PromiseReject(new TypeError("Failed to execute 'pipeTo' on 'ReadableStream': 1 argument required, but only 0 present."));
      return more().pipeTo(s, destination, options);
    }
    tee() {
      const s = rsOf(this);
      if (s === undefined) throw illegal();
      const branches = s.controller.byte ? more().byteTee(s) : more().defaultTee(s);
      return [branches[0].obj, branches[1].obj];
    }
    values(options = undefined) {
      const s = rsOf(this);
      if (s === undefined) throw illegal();
      if (options !== undefined && options !== null && !isObject(options)) throw new TypeError("Failed to execute 'values' on 'ReadableStream': the options are not an object.");
      const preventCancel = options === undefined || options === null ? false : !!options.preventCancel;
      return more().iterator(acquireReader(s, false), preventCancel);
    }
    static from(asyncIterable) {
      needArgs(arguments.length, 1, "ReadableStream", "from");
      return more().from(asyncIterable).obj;
    }
  }
  finish(ReadableStream, "ReadableStream");
  ObjectDefineProperty(ReadableStream.prototype, SymbolAsyncIterator, {
    __proto__: null, value: ReadableStream.prototype.values, writable: true, configurable: true, enumerable: false,
  });

  // ---------- queuing strategies ----------
  const byteLengthSize = { size: (chunk) => chunk.byteLength }.size;
  const countSize = { size: () => 1 }.size;
  function strategyInit(init, iface) {
    needArgs(arguments.length, 1, iface);
    if (!isObject(init)) throw new TypeError(`Failed to construct '${iface}': parameter 1 is not an object.`);
    const hwm = init.highWaterMark;
    if (hwm === undefined) throw new TypeError(`Failed to construct '${iface}': required member highWaterMark is undefined.`);
    return +hwm;
  }
  let blqsOf;
  class ByteLengthQueuingStrategy {
    #hwm;
    constructor(init) {
      needArgs(arguments.length, 1, "ByteLengthQueuingStrategy");
      this.#hwm = strategyInit(init, "ByteLengthQueuingStrategy");
    }
    static {
      blqsOf = (v) => (isObject(v) && #hwm in v ? v.#hwm : undefined);
    }
    get highWaterMark() {
      const h = blqsOf(this);
      if (h === undefined) throw illegal();
      return h;
    }
    get size() {
      if (blqsOf(this) === undefined) throw illegal();
      return byteLengthSize;
    }
  }
  finish(ByteLengthQueuingStrategy, "ByteLengthQueuingStrategy");
  let cqsOf;
  class CountQueuingStrategy {
    #hwm;
    constructor(init) {
      needArgs(arguments.length, 1, "CountQueuingStrategy");
      this.#hwm = strategyInit(init, "CountQueuingStrategy");
    }
    static {
      cqsOf = (v) => (isObject(v) && #hwm in v ? v.#hwm : undefined);
    }
    get highWaterMark() {
      const h = cqsOf(this);
      if (h === undefined) throw illegal();
      return h;
    }
    get size() {
      if (cqsOf(this) === undefined) throw illegal();
      return countSize;
    }
  }
  finish(CountQueuingStrategy, "CountQueuingStrategy");

  // ---------- for the other stream files and the bootstrap ----------
  web.__rs = ObjectFreeze({
    __proto__: null,
    kCreate, isObject, deferred, follow, settleWith, noop, markHandled, rejectedHandled, resolved, react, promiseCall, microtask, waitAll,
    qNew, qLen, qPush, qPeek, qShift, resetQueue, enqueueValueWithSize, dequeueValue,
    strategyDict, extractHighWaterMark, extractSizeAlgorithm, callbackMember, enforceRangeULL, illegal, noStream,
    rsOf, readerOf, isLocked, createStreamRecord, readableStreamCancel, readableStreamClose, readableStreamError,
    errorReadRequests, addReadRequest, fulfillReadRequest, numReadRequests, hasDefaultReader, hasBYOBReader,
    readerGenericInitialize, readerGenericRelease, readerRelease, acquireReader, defaultReaderRead, promiseReadRequest,
    startController, setUpDefaultController, createReadableStream, callPullIfNeeded,
    dcEnqueue, dcClose, dcError, dcGetDesiredSize, dcHasBackpressure, dcCanCloseOrEnqueue,
    ReadableStream, ReadableStreamDefaultReader,
    // For the bootstrap (web.__streams): a read function over a locked stream.
    lockForRuntime(stream) {
      const reader = acquireReader(rsOf(stream), false);
      return () => {
        const d = deferred();
        defaultReaderRead(reader, promiseReadRequest(d));
        return d.promise;
      };
    },
    unusable: (stream) => { const s = rsOf(stream); return isLocked(s) || s.disturbed; },
    // A stream whose pull(sink) is the bootstrap's (sink: enqueue, close).
    fromPull(pull) {
      let sink;
      const start = (c) => {
        sink = { __proto__: null, enqueue: (v) => dcEnqueue(c, v), close: () => dcClose(c) };
      };
      return createReadableStream(start, () => pull(sink), resolved, 1).obj;
    },
    // A stream of one chunk (a body's bytes), then closed.
    fromBytes(b) {
      const start = (c) => {
        if (P.TypedArrayPrototypeGetByteLength(b) > 0) dcEnqueue(c, b);
        dcClose(c);
      };
      return createReadableStream(start, resolved, resolved, 1).obj;
    },
  });
  web.__addPlatformCheck((v) => rsOf(v) !== undefined || readerOf(v) !== undefined || dcOf(v) !== undefined ||
    blqsOf(v) !== undefined || cqsOf(v) !== undefined);
  web.ReadableStream = ReadableStream;
  web.ReadableStreamDefaultReader = ReadableStreamDefaultReader;
  web.ReadableStreamDefaultController = ReadableStreamDefaultController;
  web.ByteLengthQueuingStrategy = ByteLengthQueuingStrategy;
  web.CountQueuingStrategy = CountQueuingStrategy;
});
