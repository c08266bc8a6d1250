// web/streams_bytes.js: the byte streams of the WHATWG Streams Standard:
// ReadableByteStreamController, ReadableStreamBYOBReader,
// ReadableStreamBYOBRequest (their tee is in streams_more.js), on the internals
// of streams.js (web.__rs), which loads this file on first need; it gives
// web.__rsBytes back.
//
// A lazy area: runs after tenant code, takes every built-in from the
// primordials. Buffers handed to a byte stream are transferred
// (ArrayBuffer.prototype.transfer, the intrinsic) as the spec says; clones
// are made with new Uint8Arrays from the tenant's counted allocator.
(function streamsBytes(ops, P, web) {
  "use strict";
  web.__load("streams");
  const R = web.__rs;
  const { kCreate, isObject, deferred, noop, markHandled, resolved, react, microtask, qNew, qLen, qPush, qPeek, qShift } = R;
  const { resetQueue, enforceRangeULL, illegal, noStream, rsOf, readableStreamCancel, readableStreamClose } = R;
  const { readableStreamError, fulfillReadRequest, numReadRequests, hasDefaultReader, hasBYOBReader } = R;
  const { readerGenericRelease, errorReadRequests, acquireReader, defaultReaderRead, readerRelease } = R;
  const { promiseReadRequest, startController, createStreamRecord, isLocked } = R;
  const { ObjectFreeze, PromiseReject, PromiseResolve, RangeError, ReflectConstruct, TypeError, Uint8Array, append, newArray } = P;
  const { ArrayBufferIsView, TypedArrayPrototypeGetSymbolToStringTag, TypedArrayPrototypeSet } = P;
  const { TypedArrayPrototypeGetBuffer, TypedArrayPrototypeGetByteOffset, TypedArrayPrototypeGetByteLength } = P;
  const { DataViewPrototypeGetBuffer, DataViewPrototypeGetByteOffset, DataViewPrototypeGetByteLength } = P;
  const I = P.intrinsic;
  const { finish, needArgs } = web.__events;
  const ArrayBuffer = I("ArrayBuffer");
  const DataView = I("DataView");
  const transfer = I("ArrayBuffer.prototype.transfer");
  const isDetached = I("get ArrayBuffer.prototype.detached");
  const bufferByteLength = I("get ArrayBuffer.prototype.byteLength");
  const MathMin = I("Math.min");

  // Typed array kinds: element size and constructor, by Symbol.toStringTag.
  const kinds = { __proto__: null };
  const names = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array",
                 "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"];
  const sizes = [1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8];
  for (let i = 0; i < names.length; i++) kinds[names[i]] = { __proto__: null, size: sizes[i], ctor: I(names[i]) };
  // A view's parts; undefined for anything that is not an ArrayBufferView.
  function viewParts(v) {
    if (!ArrayBufferIsView(v)) return undefined;
    const tag = TypedArrayPrototypeGetSymbolToStringTag(v);
    if (tag === undefined) {
      return { __proto__: null, buffer: DataViewPrototypeGetBuffer(v), byteOffset: DataViewPrototypeGetByteOffset(v),
               byteLength: DataViewPrototypeGetByteLength(v), size: 1, ctor: DataView };
    }
    const k = kinds[tag];
    return { __proto__: null, buffer: TypedArrayPrototypeGetBuffer(v), byteOffset: TypedArrayPrototypeGetByteOffset(v),
             byteLength: TypedArrayPrototypeGetByteLength(v), size: k === undefined ? 1 : k.size, ctor: k === undefined ? Uint8Array : k.ctor };
  }
  function viewLength(v) {
    const p = viewParts(v);
    return p.byteLength / p.size;
  }
  // A copy of `len` bytes of `buffer` from `off`, in a new buffer.
  function cloneBytes(buffer, off, len) {
    const out = new Uint8Array(len);
    TypedArrayPrototypeSet(out, new Uint8Array(buffer, off, len));
    return TypedArrayPrototypeGetBuffer(out);
  }

  // ---------- ReadableStreamBYOBRequest ----------
  let reqOf;
  class ReadableStreamBYOBRequest {
    #r;
    constructor(key = undefined, rec = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
      this.#r = rec;
      rec.obj = this;
    }
    static {
      reqOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get view() {
      const r = reqOf(this);
      if (r === undefined) throw illegal();
      return r.view;
    }
    respond(bytesWritten) {
      const r = reqOf(this);
      if (r === undefined) throw illegal();
      needArgs(arguments.length, 1, "ReadableStreamBYOBRequest", "respond");
      const n = enforceRangeULL(bytesWritten, "Failed to execute 'respond' on 'ReadableStreamBYOBRequest'");
      if (r.controller === undefined) throw new TypeError("This BYOB request was already answered.");
      if (isDetached(viewParts(r.view).buffer)) throw new TypeError("The BYOB request's buffer is detached.");
      respond(r.controller, n);
    }
    respondWithNewView(view) {
      const r = reqOf(this);
      if (r === undefined) throw illegal();
      needArgs(arguments.length, 1, "ReadableStreamBYOBRequest", "respondWithNewView");
      if (viewParts(view) === undefined) throw new TypeError("Failed to execute 'respondWithNewView' on 'ReadableStreamBYOBRequest': parameter 1 is not an ArrayBufferView.");
      if (r.controller === undefined) throw new TypeError("This BYOB request was already answered.");
      if (isDetached(viewParts(view).buffer)) throw new TypeError("The view's buffer is detached.");
      respondWithNewView(r.controller, view);
    }
  }
  finish(ReadableStreamBYOBRequest, "ReadableStreamBYOBRequest");

  // ---------- ReadableByteStreamController ----------
  let bcOf;
  class ReadableByteStreamController {
    #r;
    constructor(key = undefined, rec = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
      this.#r = rec;
      rec.obj = this;
    }
    static {
      bcOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get byobRequest() {
      const c = bcOf(this);
      if (c === undefined) throw illegal();
      const r = getBYOBRequest(c);
      return r === null ? null : r.obj;
    }
    get desiredSize() {
      const c = bcOf(this);
      if (c === undefined) throw illegal();
      return getDesiredSize(c);
    }
    close() {
      const c = bcOf(this);
      if (c === undefined) throw illegal();
      if (c.closeRequested) throw new TypeError("The stream is already closing.");
      if (c.stream.state !== "readable") throw new TypeError("The stream is not readable: it cannot be closed.");
      close(c);
    }
    enqueue(chunk) {
      const c = bcOf(this);
      if (c === undefined) throw illegal();
      needArgs(arguments.length, 1, "ReadableByteStreamController", "enqueue");
      const p = viewParts(chunk);
      if (p === undefined) throw new TypeError("Failed to execute 'enqueue' on 'ReadableByteStreamController': parameter 1 is not an ArrayBufferView.");
      if (p.byteLength === 0) throw new TypeError("The chunk is empty.");
      if (bufferByteLength(p.buffer) === 0) throw new TypeError("The chunk's buffer is empty (or detached).");
      if (c.closeRequested) throw new TypeError("The stream is closing: it cannot take more chunks.");
      if (c.stream.state !== "readable") throw new TypeError("The stream is not readable: it cannot take more chunks.");
      enqueue(c, p);
    }
    error(e = undefined) {
      const c = bcOf(this);
      if (c === undefined) throw illegal();
      error(c, e);
    }
  }
  finish(ReadableByteStreamController, "ReadableByteStreamController");

  function callPullIfNeeded(c) {
    R.callPullIfNeeded(c, shouldCallPull, error);
  }
  function shouldCallPull(c) {
    const s = c.stream;
    if (s.state !== "readable" || c.closeRequested || !c.started) return false;
    if (hasDefaultReader(s) && numReadRequests(s) > 0) return true;
    if (hasBYOBReader(s) && numReadRequests(s) > 0) return true;
    return getDesiredSize(c) > 0;
  }
  function clearAlgorithms(c) {
    c.pullAlgorithm = undefined;
    c.cancelAlgorithm = undefined;
  }
  function clearPendingPullIntos(c) {
    invalidateBYOBRequest(c);
    c.pending = qNew();
  }
  function close(c) {
    const s = c.stream;
    if (c.closeRequested || s.state !== "readable") return;
    if (c.queueTotalSize > 0) {
      c.closeRequested = true;
      return;
    }
    if (qLen(c.pending) > 0) {
      const first = qPeek(c.pending);
      if (first.bytesFilled % first.elementSize !== 0) {
        const e = new TypeError("The stream closed in the middle of an element of the view being filled.");
        error(c, e);
        throw e;
      }
    }
    clearAlgorithms(c);
    readableStreamClose(s);
  }
  function commitPullInto(s, pid) {
    const done = s.state === "closed";
    const view = convertPullInto(pid);
    if (pid.readerType === "default") fulfillReadRequest(s, view, done);
    else fulfillReadRequest(s, view, done);
  }
  function convertPullInto(pid) {
    const buffer = transfer(pid.buffer);
    return ReflectConstruct(pid.viewConstructor, [buffer, pid.byteOffset, pid.bytesFilled / pid.elementSize]);
  }
  function enqueue(c, p) {
    const s = c.stream;
    if (c.closeRequested || s.state !== "readable") return;
    if (isDetached(p.buffer)) throw new TypeError("The chunk's buffer is detached.");
    const buf = transfer(p.buffer);
    if (qLen(c.pending) > 0) {
      const first = qPeek(c.pending);
      if (isDetached(first.buffer)) throw new TypeError("The buffer of the pending read is detached.");
      invalidateBYOBRequest(c);
      first.buffer = transfer(first.buffer);
      if (first.readerType === "none") enqueueDetachedPullIntoToQueue(c, first);
    }
    if (hasDefaultReader(s)) {
      processReadRequestsUsingQueue(c);
      if (numReadRequests(s) === 0) enqueueChunk(c, buf, p.byteOffset, p.byteLength);
      else {
        if (qLen(c.pending) > 0) shiftPendingPullInto(c);
        fulfillReadRequest(s, new Uint8Array(buf, p.byteOffset, p.byteLength), false);
      }
    } else if (hasBYOBReader(s)) {
      enqueueChunk(c, buf, p.byteOffset, p.byteLength);
      const filled = processPullIntosUsingQueue(c);
      for (let i = 0; i < filled.length; i++) commitPullInto(s, filled[i]);
    } else {
      enqueueChunk(c, buf, p.byteOffset, p.byteLength);
    }
    callPullIfNeeded(c);
  }
  function enqueueChunk(c, buffer, byteOffset, byteLength) {
    qPush(c.queue, { __proto__: null, buffer, byteOffset, byteLength });
    c.queueTotalSize += byteLength;
  }
  function enqueueClonedChunk(c, buffer, off, len) {
    let clone;
    try {
      clone = cloneBytes(buffer, off, len);
    } catch (e) {
      error(c, e);
      throw e;
    }
    enqueueChunk(c, clone, 0, len);
  }
  function enqueueDetachedPullIntoToQueue(c, pid) {
    if (pid.bytesFilled > 0) enqueueClonedChunk(c, pid.buffer, pid.byteOffset, pid.bytesFilled);
    shiftPendingPullInto(c);
  }
  function error(c, e) {
    const s = c.stream;
    if (s.state !== "readable") return;
    clearPendingPullIntos(c);
    resetQueue(c);
    clearAlgorithms(c);
    readableStreamError(s, e);
  }
  function fillPullIntoFromQueue(c, pid) {
    const maxBytesToCopy = MathMin(c.queueTotalSize, pid.byteLength - pid.bytesFilled);
    const maxBytesFilled = pid.bytesFilled + maxBytesToCopy;
    let remaining = maxBytesToCopy;
    let ready = false;
    const maxAligned = maxBytesFilled - (maxBytesFilled % pid.elementSize);
    if (maxAligned >= pid.minimumFill) {
      remaining = maxAligned - pid.bytesFilled;
      ready = true;
    }
    while (remaining > 0) {
      const head = qPeek(c.queue);
      const n = MathMin(remaining, head.byteLength);
      const destStart = pid.byteOffset + pid.bytesFilled;
      TypedArrayPrototypeSet(new Uint8Array(pid.buffer, destStart, n), new Uint8Array(head.buffer, head.byteOffset, n));
      if (head.byteLength === n) qShift(c.queue);
      else {
        head.byteOffset += n;
        head.byteLength -= n;
      }
      c.queueTotalSize -= n;
      pid.bytesFilled += n;
      remaining -= n;
    }
    return ready;
  }
  function fillReadRequestFromQueue(c, req) {
    const entry = qShift(c.queue);
    c.queueTotalSize -= entry.byteLength;
    handleQueueDrain(c);
    req.chunk(new Uint8Array(entry.buffer, entry.byteOffset, entry.byteLength));
  }
  function getBYOBRequest(c) {
    if (c.byobRequest === null && qLen(c.pending) > 0) {
      const first = qPeek(c.pending);
      const view = new Uint8Array(first.buffer, first.byteOffset + first.bytesFilled, first.byteLength - first.bytesFilled);
      const r = { __proto__: null, controller: c, view, obj: undefined };
      new ReadableStreamBYOBRequest(kCreate, r);
      c.byobRequest = r;
    }
    return c.byobRequest;
  }
  function getDesiredSize(c) {
    const st = c.stream.state;
    if (st === "errored") return null;
    if (st === "closed") return 0;
    return c.strategyHWM - c.queueTotalSize;
  }
  function handleQueueDrain(c) {
    if (c.queueTotalSize === 0 && c.closeRequested) {
      clearAlgorithms(c);
      readableStreamClose(c.stream);
    } else callPullIfNeeded(c);
  }
  function invalidateBYOBRequest(c) {
    if (c.byobRequest === null) return;
    c.byobRequest.controller = undefined;
    c.byobRequest.view = null;
    c.byobRequest = null;
  }
  function processPullIntosUsingQueue(c) {
    const filled = newArray();
    while (qLen(c.pending) > 0) {
      if (c.queueTotalSize === 0) break;
      const pid = qPeek(c.pending);
      if (fillPullIntoFromQueue(c, pid)) {
        shiftPendingPullInto(c);
        append(filled, pid);
      }
    }
    return filled;
  }
  function processReadRequestsUsingQueue(c) {
    const s = c.stream;
    while (numReadRequests(s) > 0) {
      if (c.queueTotalSize === 0) return;
      fillReadRequestFromQueue(c, qShift(s.reader.requests));
    }
  }
  function pullInto(c, view, min, req) {
    const s = c.stream;
    const p = viewParts(view);
    let buffer;
    try {
      buffer = transfer(p.buffer);
    } catch (e) {
      req.error(e);
      return;
    }
    const pid = {
      __proto__: null, buffer, bufferByteLength: bufferByteLength(buffer), byteOffset: p.byteOffset, byteLength: p.byteLength,
      bytesFilled: 0, minimumFill: min * p.size, elementSize: p.size, viewConstructor: p.ctor, readerType: "byob",
    };
    if (qLen(c.pending) > 0) {
      qPush(c.pending, pid);
      qPush(s.reader.requests, req);
      return;
    }
    if (s.state === "closed") {
      req.close(ReflectConstruct(p.ctor, [pid.buffer, pid.byteOffset, 0]));
      return;
    }
    if (c.queueTotalSize > 0) {
      if (fillPullIntoFromQueue(c, pid)) {
        const filled = convertPullInto(pid);
        handleQueueDrain(c);
        req.chunk(filled);
        return;
      }
      if (c.closeRequested) {
        const e = new TypeError("The stream is closing: the view cannot be filled.");
        error(c, e);
        req.error(e);
        return;
      }
    }
    qPush(c.pending, pid);
    qPush(s.reader.requests, req);
    callPullIfNeeded(c);
  }
  function respond(c, bytesWritten) {
    const first = qPeek(c.pending);
    if (c.stream.state === "closed") {
      if (bytesWritten !== 0) throw new TypeError("The stream is closed: respond() takes only 0.");
    } else {
      if (bytesWritten === 0) throw new TypeError("respond(0) is only for a closed stream.");
      if (first.bytesFilled + bytesWritten > first.byteLength) throw new RangeError("bytesWritten is more than the view holds.");
    }
    first.buffer = transfer(first.buffer);
    respondInternal(c, bytesWritten);
  }
  function respondInClosedState(c, first) {
    if (first.readerType === "none") shiftPendingPullInto(c);
    const s = c.stream;
    if (hasBYOBReader(s)) {
      while (numReadRequests(s) > 0) commitPullInto(s, shiftPendingPullInto(c));
    }
  }
  function respondInReadableState(c, bytesWritten, pid) {
    pid.bytesFilled += bytesWritten;
    if (pid.readerType === "none") {
      enqueueDetachedPullIntoToQueue(c, pid);
      const filled = processPullIntosUsingQueue(c);
      for (let i = 0; i < filled.length; i++) commitPullInto(c.stream, filled[i]);
      return;
    }
    if (pid.bytesFilled < pid.minimumFill) return;
    shiftPendingPullInto(c);
    const rem = pid.bytesFilled % pid.elementSize;
    if (rem > 0) {
      const end = pid.byteOffset + pid.bytesFilled;
      enqueueClonedChunk(c, pid.buffer, end - rem, rem);
    }
    pid.bytesFilled -= rem;
    const filled = processPullIntosUsingQueue(c);
    commitPullInto(c.stream, pid);
    for (let i = 0; i < filled.length; i++) commitPullInto(c.stream, filled[i]);
  }
  function respondInternal(c, bytesWritten) {
    const first = qPeek(c.pending);
    invalidateBYOBRequest(c);
    if (c.stream.state === "closed") respondInClosedState(c, first);
    else respondInReadableState(c, bytesWritten, first);
    callPullIfNeeded(c);
  }
  function respondWithNewView(c, view) {
    const first = qPeek(c.pending);
    const p = viewParts(view);
    if (c.stream.state === "closed") {
      if (p.byteLength !== 0) throw new TypeError("The stream is closed: the view must be empty.");
    } else if (p.byteLength === 0) throw new TypeError("The view is empty but the stream is not closed.");
    if (first.byteOffset + first.bytesFilled !== p.byteOffset) throw new RangeError("The view does not start where the request's view does.");
    if (first.bufferByteLength !== bufferByteLength(p.buffer)) throw new RangeError("The view's buffer is not the request's buffer.");
    if (first.bytesFilled + p.byteLength > first.byteLength) throw new RangeError("The view is longer than the request's view.");
    first.buffer = transfer(p.buffer);
    respondInternal(c, p.byteLength);
  }
  function shiftPendingPullInto(c) {
    return qShift(c.pending);
  }

  function setUp(s, start, pull, cancel, hwm, auto) {
    const c = {
      __proto__: null, byte: true, stream: s, queue: undefined, queueTotalSize: 0, started: false, closeRequested: false,
      pullAgain: false, pulling: false, strategyHWM: hwm, pullAlgorithm: pull, cancelAlgorithm: cancel,
      autoAllocateChunkSize: auto, pending: qNew(), byobRequest: null, obj: undefined,
      cancelSteps: undefined, pullSteps: undefined, releaseSteps: undefined,
    };
    c.cancelSteps = (reason) => {
      clearPendingPullIntos(c);
      resetQueue(c);
      const r = c.cancelAlgorithm(reason);
      clearAlgorithms(c);
      return r;
    };
    c.pullSteps = (req) => {
      if (c.queueTotalSize > 0) {
        fillReadRequestFromQueue(c, req);
        return;
      }
      const auto = c.autoAllocateChunkSize;
      if (auto !== undefined) {
        let buffer;
        try {
          buffer = new ArrayBuffer(auto);
        } catch (e) {
          req.error(e);
          return;
        }
        qPush(c.pending, {
          __proto__: null, buffer, bufferByteLength: auto, byteOffset: 0, byteLength: auto, bytesFilled: 0,
          minimumFill: 1, elementSize: 1, viewConstructor: Uint8Array, readerType: "default",
        });
      }
      qPush(s.reader.requests, req);
      callPullIfNeeded(c);
    };
    c.releaseSteps = () => {
      if (qLen(c.pending) > 0) {
        const first = qPeek(c.pending);
        first.readerType = "none";
        c.pending = qNew();
        qPush(c.pending, first);
      }
    };
    resetQueue(c);
    new ReadableByteStreamController(kCreate, c);
    s.controller = c;
    startController(c, start, callPullIfNeeded, error);
    return c;
  }
  function createByteStream(start, pull, cancel) {
    const s = createStreamRecord();
    setUp(s, start, pull, cancel, 0, undefined);
    return s;
  }

  // ---------- ReadableStreamBYOBReader ----------
  let readerOf;
  class ReadableStreamBYOBReader {
    #r;
    constructor(stream, rec = undefined) {
      if (stream === kCreate) {
        this.#r = rec;
        rec.obj = this;
        return;
      }
      needArgs(arguments.length, 1, "ReadableStreamBYOBReader");
      const s = rsOf(stream);
      if (s === undefined) throw new TypeError("Failed to construct 'ReadableStreamBYOBReader': parameter 1 is not of type 'ReadableStream'.");
      this.#r = acquireReader(s, true);
      this.#r.obj = this;
    }
    static {
      readerOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get closed() {
      const r = readerOf(this);
      return r === undefined ? PromiseReject(illegal()) : r.closed.promise;
    }
    read(view, options = undefined) {
      const r = readerOf(this);
      if (r === undefined) return PromiseReject(illegal());
      const where = "Failed to execute 'read' on 'ReadableStreamBYOBReader'";
      const p = viewParts(view);
      if (p === undefined) return PromiseReject(new TypeError(`${where}: parameter 1 is not an ArrayBufferView.`));
      if (options !== undefined && options !== null && !isObject(options)) return PromiseReject(new TypeError(`${where}: the options are not an object.`));
      const minRaw = options === undefined || options === null ? undefined : options.min;
      let min = 1;
      if (minRaw !== undefined) {
        try {
          min = enforceRangeULL(minRaw, where);
        } catch (e) {
          return PromiseReject(e);
        }
      }
      if (p.byteLength === 0) return PromiseReject(new TypeError(`${where}: the view is empty.`));
      if (bufferByteLength(p.buffer) === 0) return PromiseReject(new TypeError(`${where}: the view's buffer is empty or detached.`));
      if (min === 0) return PromiseReject(new TypeError(`${where}: options.min must be greater than 0.`));
      if (min > p.byteLength / p.size) return PromiseReject(new RangeError(`${where}: options.min is more than the view's length.`));
      if (r.stream === undefined) return PromiseReject(noStream());
      const d = deferred();
      const req = promiseReadRequest(d);
      const s = r.stream;
      s.disturbed = true;
      if (s.state === "errored") req.error(s.storedError);
      else pullInto(s.controller, view, min, req);
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
  finish(ReadableStreamBYOBReader, "ReadableStreamBYOBReader");

  web.__rsBytes = ObjectFreeze({
    __proto__: null,
    setUp, createByteStream, viewParts, cloneBytes, error, enqueue, close, respond, respondWithNewView, getBYOBRequest, pullInto,
    readerObject: (rec) => new ReadableStreamBYOBReader(kCreate, rec),
    // A byte stream of one chunk (a body's bytes), then closed.
    fromBytes(b) {
      const start = (c) => {
        if (TypedArrayPrototypeGetByteLength(b) > 0) enqueue(c, viewParts(b));
        close(c);
      };
      return createByteStream(start, resolved, resolved).obj;
    },
  });
  web.__addPlatformCheck((v) => bcOf(v) !== undefined || readerOf(v) !== undefined || reqOf(v) !== undefined);
  web.ReadableByteStreamController = ReadableByteStreamController;
  web.ReadableStreamBYOBReader = ReadableStreamBYOBReader;
  web.ReadableStreamBYOBRequest = ReadableStreamBYOBRequest;
});
