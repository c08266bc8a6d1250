// web/streams_transform.js: TransformStream and
// TransformStreamDefaultController (WHATWG Streams Standard), and the
// transform streams built on them: TextEncoderStream and TextDecoderStream
// (WHATWG Encoding Standard), CompressionStream and DecompressionStream
// (WHATWG Compression Standard: "gzip", "deflate", "deflate-raw"; the
// (de)compressor is native, runtime/ops_compress.rs, one bounded step per
// op call). Loads streams_writable.js (and so streams.js) first.
//
// A lazy area: runs after tenant code, takes every built-in from the
// primordials; TextDecoderStream decodes with the bootstrap's TextDecoder
// through its decode method as captured in the snapshot (web.__textDecoder).
//
// Divergences: at most 16 compression streams may be open at once per
// tenant (RangeError).
(function streamsTransform(ops, P, web) {
  "use strict";
  web.__load("streams_writable");
  const R = web.__rs;
  const W = web.__ws;
  const { kCreate, isObject, deferred, follow, resolved, react, promiseCall, strategyDict, extractHighWaterMark } = R;
  const { extractSizeAlgorithm, callbackMember, illegal, createReadableStream, dcEnqueue, dcClose, dcError } = R;
  const { dcGetDesiredSize, dcHasBackpressure, dcCanCloseOrEnqueue } = R;
  const { ObjectFreeze, PromiseReject, RangeError, ReflectApply, String, TypeError, Uint8Array } = P;
  const { TypedArrayPrototypeGetByteLength, TypedArrayPrototypeSet, toBytes } = P;
  const I = P.intrinsic;
  const then = I("Promise.prototype.then");
  const subarray = I("TypedArray.prototype.subarray");
  const StringPrototypeCharCodeAt = I("String.prototype.charCodeAt");
  const StringPrototypeSlice = I("String.prototype.slice");
  const FinalizationRegistry = I("FinalizationRegistry");
  const registryRegister = I("FinalizationRegistry.prototype.register");
  const registryUnregister = I("FinalizationRegistry.prototype.unregister");
  const { finish, needArgs } = web.__events;

  // ---------- TransformStream abstract operations (on records) ----------
  function initialize(t, startPromise, whwm, wsize, rhwm, rsize) {
    const start = () => startPromise;
    t.writable = W.createWritableStream(start, (chunk) => sinkWrite(t, chunk), () => sinkClose(t), (r) => sinkAbort(t, r), whwm, wsize);
    t.readable = createReadableStream(start, () => sourcePull(t), (r) => sourceCancel(t, r), rhwm, rsize);
    t.backpressure = undefined;
    t.backpressureChange = undefined;
    setBackpressure(t, true);
    t.controller = undefined;
  }
  function tsError(t, e) {
    dcError(t.readable.controller, e);
    errorWritableAndUnblockWrite(t, e);
  }
  function errorWritableAndUnblockWrite(t, e) {
    clearAlgorithms(t.controller);
    W.errorIfNeeded(t.writable.controller, e);
    unblockWrite(t);
  }
  function unblockWrite(t) {
    if (t.backpressure) setBackpressure(t, false);
  }
  function setBackpressure(t, bp) {
    if (t.backpressureChange !== undefined) t.backpressureChange.resolve(undefined);
    t.backpressureChange = deferred();
    t.backpressure = bp;
  }
  function clearAlgorithms(c) {
    c.transformAlgorithm = undefined;
    c.flushAlgorithm = undefined;
    c.cancelAlgorithm = undefined;
  }
  function tcEnqueue(c, chunk) {
    const t = c.stream;
    const rc = t.readable.controller;
    if (!dcCanCloseOrEnqueue(rc)) throw new TypeError("The readable side is closed or errored: it cannot take more chunks.");
    try {
      dcEnqueue(rc, chunk);
    } catch (e) {
      errorWritableAndUnblockWrite(t, e);
      throw t.readable.storedError;
    }
    const bp = dcHasBackpressure(rc);
    if (bp !== t.backpressure) setBackpressure(t, true);
  }
  function tcTerminate(c) {
    const t = c.stream;
    dcClose(t.readable.controller);
    errorWritableAndUnblockWrite(t, new TypeError("The TransformStream was terminated."));
  }
  function performTransform(c, chunk) {
    return then(c.transformAlgorithm(chunk), undefined, (r) => {
      tsError(c.stream, r);
      throw r;
    });
  }
  function sinkWrite(t, chunk) {
    const c = t.controller;
    if (t.backpressure) {
      return follow(t.backpressureChange.promise, () => {
        if (t.writable.state === "erroring") throw t.writable.storedError;
        return performTransform(c, chunk);
      });
    }
    return performTransform(c, chunk);
  }
  // The shared shape of the sink's abort and close and the source's cancel.
  function finishWith(t, run, onDone, onFail) {
    const c = t.controller;
    if (c.finishPromise !== undefined) return c.finishPromise.promise;
    const d = deferred();
    c.finishPromise = d;
    const p = run(c);
    clearAlgorithms(c);
    react(p, () => onDone(d), (r) => onFail(d, r));
    return d.promise;
  }
  function sinkAbort(t, reason) {
    const rs = t.readable;
    return finishWith(t, (c) => c.cancelAlgorithm(reason), (d) => {
      if (rs.state === "errored") d.reject(rs.storedError);
      else {
        dcError(rs.controller, reason);
        d.resolve(undefined);
      }
    }, (d, r) => {
      dcError(rs.controller, r);
      d.reject(r);
    });
  }
  function sinkClose(t) {
    const rs = t.readable;
    return finishWith(t, (c) => c.flushAlgorithm(), (d) => {
      if (rs.state === "errored") d.reject(rs.storedError);
      else {
        dcClose(rs.controller);
        d.resolve(undefined);
      }
    }, (d, r) => {
      dcError(rs.controller, r);
      d.reject(r);
    });
  }
  function sourcePull(t) {
    setBackpressure(t, false);
    return t.backpressureChange.promise;
  }
  function sourceCancel(t, reason) {
    const ws = t.writable;
    return finishWith(t, (c) => c.cancelAlgorithm(reason), (d) => {
      if (ws.state === "errored") d.reject(ws.storedError);
      else {
        W.errorIfNeeded(ws.controller, reason);
        unblockWrite(t);
        d.resolve(undefined);
      }
    }, (d, r) => {
      W.errorIfNeeded(ws.controller, r);
      unblockWrite(t);
      d.reject(r);
    });
  }
  function setUpController(t, transform, flush, cancel) {
    const c = {
      __proto__: null, stream: t, transformAlgorithm: transform, flushAlgorithm: flush, cancelAlgorithm: cancel,
      finishPromise: undefined, obj: undefined,
    };
    new TransformStreamDefaultController(kCreate, c);
    t.controller = c;
    return c;
  }
  const newRecord = () => ({ __proto__: null, readable: undefined, writable: undefined, backpressure: undefined, backpressureChange: undefined, controller: undefined, obj: undefined });
  // A transform stream over internal algorithms: transform(chunk, c), flush(c), cancel(reason).
  function createTransform(transform, flush, cancel) {
    const t = newRecord();
    const start = deferred();
    initialize(t, start.promise, 1, () => 1, 0, () => 1);
    const c = setUpController(t, undefined, undefined, undefined);
    c.transformAlgorithm = (chunk) => {
      try {
        transform(chunk, c);
        return resolved();
      } catch (e) {
        return PromiseReject(e);
      }
    };
    c.flushAlgorithm = () => {
      try {
        flush(c);
        return resolved();
      } catch (e) {
        return PromiseReject(e);
      }
    };
    c.cancelAlgorithm = (reason) => {
      try {
        cancel(reason);
        return resolved();
      } catch (e) {
        return PromiseReject(e);
      }
    };
    start.resolve(undefined);
    return t;
  }

  // ---------- TransformStream ----------
  let tsOf;
  class TransformStream {
    #r;
    constructor(transformer = undefined, writableStrategy = undefined, readableStrategy = undefined) {
      const where = "Failed to construct 'TransformStream'";
      if (transformer !== undefined && !isObject(transformer)) throw new TypeError(`${where}: parameter 1 is not an object.`);
      const wst = strategyDict(writableStrategy, where);
      const rst = strategyDict(readableStrategy, where);
      const tr = transformer === undefined ? { __proto__: null } : transformer;
      const cancelM = callbackMember(tr, "cancel", where);
      const flushM = callbackMember(tr, "flush", where);
      const readableType = tr.readableType;
      const startM = callbackMember(tr, "start", where);
      const transformM = callbackMember(tr, "transform", where);
      const writableType = tr.writableType;
      if (readableType !== undefined) throw new RangeError(`${where}: readableType must be undefined.`);
      if (writableType !== undefined) throw new RangeError(`${where}: writableType must be undefined.`);
      const rhwm = extractHighWaterMark(rst, 0);
      const rsize = extractSizeAlgorithm(rst);
      const whwm = extractHighWaterMark(wst, 1);
      const wsize = extractSizeAlgorithm(wst);
      const t = newRecord();
      this.#r = t;
      t.obj = this;
      const startPromise = deferred();
      initialize(t, startPromise.promise, whwm, wsize, rhwm, rsize);
      const c = setUpController(t, undefined, undefined, undefined);
      c.transformAlgorithm = transformM === undefined
        ? (chunk) => {
          try {
            tcEnqueue(c, chunk);
            return resolved();
          } catch (e) {
            return PromiseReject(e);
          }
        }
        : (chunk) => promiseCall(transformM, transformer, [chunk, c.obj]);
      c.flushAlgorithm = flushM === undefined ? resolved : () => promiseCall(flushM, transformer, [c.obj]);
      c.cancelAlgorithm = cancelM === undefined ? resolved : (reason) => promiseCall(cancelM, transformer, [reason]);
      if (startM !== undefined) startPromise.resolve(ReflectApply(startM, transformer, [c.obj]));
      else startPromise.resolve(undefined);
    }
    static {
      tsOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get readable() {
      const t = tsOf(this);
      if (t === undefined) throw illegal();
      return t.readable.obj;
    }
    get writable() {
      const t = tsOf(this);
      if (t === undefined) throw illegal();
      return t.writable.obj;
    }
  }
  finish(TransformStream, "TransformStream");

  let tcOf;
  class TransformStreamDefaultController {
    #r;
    constructor(key = undefined, rec = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
      this.#r = rec;
      rec.obj = this;
    }
    static {
      tcOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get desiredSize() {
      const c = tcOf(this);
      if (c === undefined) throw illegal();
      return dcGetDesiredSize(c.stream.readable.controller);
    }
    enqueue(chunk = undefined) {
      const c = tcOf(this);
      if (c === undefined) throw illegal();
      tcEnqueue(c, chunk);
    }
    error(reason = undefined) {
      const c = tcOf(this);
      if (c === undefined) throw illegal();
      tsError(c.stream, reason);
    }
    terminate() {
      const c = tcOf(this);
      if (c === undefined) throw illegal();
      tcTerminate(c);
    }
  }
  finish(TransformStreamDefaultController, "TransformStreamDefaultController");

  // A `readable`/`writable` pair object of a transform record (GenericTransformStream).
  const pairGetters = (C, of) => {
    const d = { __proto__: null, configurable: true, enumerable: true };
    I("Object.defineProperty")(C.prototype, "readable", { __proto__: d, get() { const x = of(this); if (x === undefined) throw illegal(); return x.t.readable.obj; } });
    I("Object.defineProperty")(C.prototype, "writable", { __proto__: d, get() { const x = of(this); if (x === undefined) throw illegal(); return x.t.writable.obj; } });
  };

  // ---------- TextEncoderStream ----------
  const encode = (s) => {
    const out = new Uint8Array(ops.utf8Length(s));
    ops.encodeUtf8Into(s, out);
    return out;
  };
  let tesOf;
  class TextEncoderStream {
    #r;
    constructor() {
      const r = { __proto__: null, t: undefined, high: "" };
      r.t = createTransform((chunk, c) => {
        let s = r.high + String(chunk);
        r.high = "";
        const last = s.length > 0 ? StringPrototypeCharCodeAt(s, s.length - 1) : 0;
        if (last >= 0xd800 && last <= 0xdbff) {
          r.high = StringPrototypeSlice(s, s.length - 1);
          s = StringPrototypeSlice(s, 0, s.length - 1);
        }
        if (s.length > 0) tcEnqueue(c, encode(s));
      }, (c) => {
        if (r.high !== "") tcEnqueue(c, encode("\ufffd"));
      }, () => {});
      this.#r = r;
    }
    static {
      tesOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get encoding() {
      if (tesOf(this) === undefined) throw illegal();
      return "utf-8";
    }
  }
  pairGetters(TextEncoderStream, tesOf);
  finish(TextEncoderStream, "TextEncoderStream");

  // ---------- TextDecoderStream ----------
  const { TextDecoder, decode, encodingOf, fatalOf, ignoreBOMOf } = web.__textDecoder;
  let tdsOf;
  class TextDecoderStream {
    #r;
    constructor(label = "utf-8", options = undefined) {
      const dec = new TextDecoder(label, options);
      const r = { __proto__: null, t: undefined, dec };
      r.t = createTransform((chunk, c) => {
        const bytes = toBytes(chunk);
        if (bytes === undefined) throw new TypeError("TextDecoderStream: a chunk is not an ArrayBuffer or ArrayBufferView.");
        const s = decode(dec, bytes, { __proto__: null, stream: true });
        if (s !== "") tcEnqueue(c, s);
      }, (c) => {
        const s = decode(dec);
        if (s !== "") tcEnqueue(c, s);
      }, () => {});
      this.#r = r;
    }
    static {
      tdsOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get encoding() {
      const r = tdsOf(this);
      if (r === undefined) throw illegal();
      return encodingOf(r.dec);
    }
    get fatal() {
      const r = tdsOf(this);
      if (r === undefined) throw illegal();
      return fatalOf(r.dec);
    }
    get ignoreBOM() {
      const r = tdsOf(this);
      if (r === undefined) throw illegal();
      return ignoreBOMOf(r.dec);
    }
  }
  pairGetters(TextDecoderStream, tdsOf);
  finish(TextDecoderStream, "TextDecoderStream");

  // ---------- CompressionStream / DecompressionStream ----------
  const FORMATS = { __proto__: null, gzip: 0, deflate: 1, "deflate-raw": 2 };
  const SCRATCH = 64 << 10;
  const registry = new FinalizationRegistry((id) => ops.codecFree(id));
  const EMPTY = new Uint8Array(0);
  function codecStream(format, decompress, iface) {
    const name = String(format);
    const f = FORMATS[name];
    if (f === undefined) throw new TypeError(`Failed to construct '${iface}': '${name}' is not a supported format (gzip, deflate, deflate-raw).`);
    // The native codec is made on the first chunk (a stream never written
    // to holds none) and freed at the end, on an error, or when the stream
    // is collected.
    const r = { __proto__: null, t: undefined, id: undefined, scratch: undefined, open: true };
    const free = () => {
      if (!r.open) return;
      r.open = false;
      if (r.id === undefined) return;
      registryUnregister(registry, r);
      ops.codecFree(r.id);
    };
    // Feeds `input` through the codec, enqueueing the output in chunks.
    const pump = (input, end, c) => {
      if (r.id === undefined) {
        r.id = ops.codecNew(f, decompress);
        registryRegister(registry, r.t, r.id, r);
      }
      if (r.scratch === undefined) r.scratch = new Uint8Array(SCRATCH);
      let rest = input;
      try {
        for (;;) {
          const res = ops.codecPush(r.id, rest, r.scratch, end);
          const consumed = res[0];
          const written = res[1];
          if (written > 0) {
            let out;
            try {
              out = new Uint8Array(written);
            } catch (e) {
              throw new RangeError(`${iface}: the output does not fit in the ArrayBuffer memory budget (${e.message}).`);
            }
            TypedArrayPrototypeSet(out, subarray(r.scratch, 0, written));
            tcEnqueue(c, out);
          }
          rest = subarray(rest, consumed);
          const left = TypedArrayPrototypeGetByteLength(rest);
          if (res[2] === 2 || (res[2] === 0 && left === 0)) break;
          if (res[2] === 0 && consumed === 0 && written === 0) throw new TypeError(`${iface}: the codec made no progress.`);
        }
      } catch (e) {
        free();
        throw e;
      }
    };
    r.t = createTransform((chunk, c) => {
      const bytes = toBytes(chunk);
      if (bytes === undefined) {
        free();
        throw new TypeError(`${iface}: a chunk is not an ArrayBuffer or ArrayBufferView.`);
      }
      pump(bytes, false, c);
    }, (c) => {
      pump(EMPTY, true, c);
      free();
    }, free);
    return r;
  }
  let csOf;
  class CompressionStream {
    #r;
    constructor(format) {
      needArgs(arguments.length, 1, "CompressionStream");
      this.#r = codecStream(format, false, "CompressionStream");
    }
    static {
      csOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
  }
  pairGetters(CompressionStream, csOf);
  finish(CompressionStream, "CompressionStream");
  let dsOf;
  class DecompressionStream {
    #r;
    constructor(format) {
      needArgs(arguments.length, 1, "DecompressionStream");
      this.#r = codecStream(format, true, "DecompressionStream");
    }
    static {
      dsOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
  }
  pairGetters(DecompressionStream, dsOf);
  finish(DecompressionStream, "DecompressionStream");

  web.__addPlatformCheck((v) => tsOf(v) !== undefined || tcOf(v) !== undefined || tesOf(v) !== undefined ||
    tdsOf(v) !== undefined || csOf(v) !== undefined || dsOf(v) !== undefined);
  web.TransformStream = TransformStream;
  web.TransformStreamDefaultController = TransformStreamDefaultController;
  web.TextEncoderStream = TextEncoderStream;
  web.TextDecoderStream = TextDecoderStream;
  web.CompressionStream = CompressionStream;
  web.DecompressionStream = DecompressionStream;
});
