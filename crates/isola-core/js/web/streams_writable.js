// web/streams_writable.js: the WHATWG Streams Standard's WritableStream,
// WritableStreamDefaultWriter and WritableStreamDefaultController, on the internals of
// streams.js (web.__rs), which this file loads first; it gives web.__ws
// (what pipeTo and the codec streams need) back.
//
// A lazy area: runs after tenant code, takes every built-in from the
// primordials. A controller's `signal` is an AbortSignal made and aborted
// through web.__abort.
(function streamsWritable(ops, P, web) {
  "use strict";
  web.__load("streams");
  const R = web.__rs;
  const { kCreate, isObject, deferred, noop, markHandled, resolved, react, promiseCall, qNew, qLen, qPush, qPeek, qShift } = R;
  const { resetQueue, enqueueValueWithSize, dequeueValue, strategyDict, extractHighWaterMark, extractSizeAlgorithm } = R;
  const { callbackMember, illegal } = R;
  const { ObjectFreeze, PromiseReject, PromiseResolve, RangeError, ReflectApply, TypeError } = P;
  const { finish, needArgs } = web.__events;
  const abort = web.__abort;
  const CLOSE = { __proto__: null }; // the close sentinel in a controller's queue
  const noWriter = () => new TypeError("The writer has no stream: its lock was released.");

  // ---------- WritableStream abstract operations (on records) ----------
  const newStreamRecord = () => ({
    __proto__: null, state: "writable", storedError: undefined, writer: undefined, controller: undefined,
    inFlightWriteRequest: undefined, closeRequest: undefined, inFlightCloseRequest: undefined,
    pendingAbortRequest: undefined, writeRequests: qNew(), backpressure: false, obj: undefined,
  });
  const isLocked = (s) => s.writer !== undefined;
  function wsAbort(s, reason) {
    if (s.state === "closed" || s.state === "errored") return resolved();
    abort.abort(s.controller.signal, reason);
    const state = s.state;
    if (state === "closed" || state === "errored") return resolved();
    if (s.pendingAbortRequest !== undefined) return s.pendingAbortRequest.d.promise;
    let wasAlreadyErroring = false;
    if (state === "erroring") {
      wasAlreadyErroring = true;
      reason = undefined;
    }
    const d = deferred();
    s.pendingAbortRequest = { __proto__: null, d, reason, wasAlreadyErroring };
    if (!wasAlreadyErroring) startErroring(s, reason);
    return d.promise;
  }
  function wsClose(s) {
    if (s.state === "closed" || s.state === "errored") return PromiseReject(new TypeError("The WritableStream is closed or errored."));
    const d = deferred();
    s.closeRequest = d;
    const w = s.writer;
    if (w !== undefined && s.backpressure && s.state === "writable") w.ready.resolve(undefined);
    enqueueValueWithSize(s.controller, CLOSE, 0);
    advanceQueueIfNeeded(s.controller);
    return d.promise;
  }
  function dealWithRejection(s, e) {
    if (s.state === "writable") startErroring(s, e);
    else finishErroring(s);
  }
  function startErroring(s, reason) {
    const c = s.controller;
    s.state = "erroring";
    s.storedError = reason;
    if (s.writer !== undefined) ensureReadyRejected(s.writer, reason);
    if (!hasOperationMarkedInFlight(s) && c.started) finishErroring(s);
  }
  function finishErroring(s) {
    s.state = "errored";
    resetQueue(s.controller);
    const e = s.storedError;
    const reqs = s.writeRequests;
    s.writeRequests = qNew();
    while (qLen(reqs) > 0) qShift(reqs).reject(e);
    const ar = s.pendingAbortRequest;
    if (ar === undefined) {
      rejectCloseAndClosedIfNeeded(s);
      return;
    }
    s.pendingAbortRequest = undefined;
    if (ar.wasAlreadyErroring) {
      ar.d.reject(e);
      rejectCloseAndClosedIfNeeded(s);
      return;
    }
    const c = s.controller;
    const p = c.abortAlgorithm(ar.reason);
    clearAlgorithms(c);
    react(p, () => {
      ar.d.resolve(undefined);
      rejectCloseAndClosedIfNeeded(s);
    }, (r) => {
      ar.d.reject(r);
      rejectCloseAndClosedIfNeeded(s);
    });
  }
  function finishInFlightClose(s) {
    s.inFlightCloseRequest.resolve(undefined);
    s.inFlightCloseRequest = undefined;
    if (s.state === "erroring") {
      s.storedError = undefined;
      if (s.pendingAbortRequest !== undefined) {
        s.pendingAbortRequest.d.resolve(undefined);
        s.pendingAbortRequest = undefined;
      }
    }
    s.state = "closed";
    if (s.writer !== undefined) s.writer.closed.resolve(undefined);
  }
  function finishInFlightCloseWithError(s, e) {
    s.inFlightCloseRequest.reject(e);
    s.inFlightCloseRequest = undefined;
    if (s.pendingAbortRequest !== undefined) {
      s.pendingAbortRequest.d.reject(e);
      s.pendingAbortRequest = undefined;
    }
    dealWithRejection(s, e);
  }
  const closeQueuedOrInFlight = (s) => s.closeRequest !== undefined || s.inFlightCloseRequest !== undefined;
  const hasOperationMarkedInFlight = (s) => s.inFlightWriteRequest !== undefined || s.inFlightCloseRequest !== undefined;
  function rejectCloseAndClosedIfNeeded(s) {
    if (s.closeRequest !== undefined) {
      s.closeRequest.reject(s.storedError);
      s.closeRequest = undefined;
    }
    const w = s.writer;
    if (w !== undefined) {
      w.closed.reject(s.storedError);
      markHandled(w.closed.promise);
    }
  }
  function updateBackpressure(s, bp) {
    const w = s.writer;
    if (w !== undefined && bp !== s.backpressure) {
      if (bp) w.ready = deferred();
      else w.ready.resolve(undefined);
    }
    s.backpressure = bp;
  }

  // ---------- the writer (records) ----------
  function rejectedDeferred(e) {
    const d = deferred();
    d.reject(e);
    markHandled(d.promise);
    return d;
  }
  function resolvedDeferred() {
    const d = deferred();
    d.resolve(undefined);
    return d;
  }
  function acquireWriter(s) {
    if (isLocked(s)) throw new TypeError("The WritableStream is locked to a writer.");
    const w = { __proto__: null, stream: s, ready: undefined, closed: undefined, obj: undefined };
    s.writer = w;
    const st = s.state;
    if (st === "writable") {
      w.ready = !closeQueuedOrInFlight(s) && s.backpressure ? deferred() : resolvedDeferred();
      w.closed = deferred();
    } else if (st === "erroring") {
      w.ready = rejectedDeferred(s.storedError);
      w.closed = deferred();
    } else if (st === "closed") {
      w.ready = resolvedDeferred();
      w.closed = resolvedDeferred();
    } else {
      w.ready = rejectedDeferred(s.storedError);
      w.closed = rejectedDeferred(s.storedError);
    }
    return w;
  }
  function ensureClosedRejected(w, e) {
    if (w.closed.settled) w.closed = deferred();
    w.closed.reject(e);
    markHandled(w.closed.promise);
  }
  function ensureReadyRejected(w, e) {
    if (w.ready.settled) w.ready = deferred();
    w.ready.reject(e);
    markHandled(w.ready.promise);
  }
  function writerCloseWithErrorPropagation(w) {
    const s = w.stream;
    if (closeQueuedOrInFlight(s) || s.state === "closed") return resolved();
    if (s.state === "errored") return PromiseReject(s.storedError);
    return wsClose(s);
  }
  function writerGetDesiredSize(w) {
    const st = w.stream.state;
    if (st === "errored" || st === "erroring") return null;
    if (st === "closed") return 0;
    const c = w.stream.controller;
    return c.strategyHWM - c.queueTotalSize;
  }
  function writerRelease(w) {
    const e = new TypeError("The writer's lock on the stream was released.");
    ensureReadyRejected(w, e);
    ensureClosedRejected(w, e);
    w.stream.writer = undefined;
    w.stream = undefined;
  }
  function writerWrite(w, chunk) {
    const s = w.stream;
    const c = s.controller;
    const size = getChunkSize(c, chunk);
    if (s !== w.stream) return PromiseReject(noWriter());
    const st = s.state;
    if (st === "errored") return PromiseReject(s.storedError);
    if (closeQueuedOrInFlight(s) || st === "closed") return PromiseReject(new TypeError("The WritableStream is closing or closed."));
    if (st === "erroring") return PromiseReject(s.storedError);
    const d = deferred();
    qPush(s.writeRequests, d);
    // WritableStreamDefaultControllerWrite
    try {
      enqueueValueWithSize(c, chunk, size);
    } catch (e) {
      errorIfNeeded(c, e);
      return d.promise;
    }
    if (!closeQueuedOrInFlight(s) && s.state === "writable") updateBackpressure(s, getBackpressure(c));
    advanceQueueIfNeeded(c);
    return d.promise;
  }

  // ---------- the controller (records) ----------
  function clearAlgorithms(c) {
    c.writeAlgorithm = undefined;
    c.closeAlgorithm = undefined;
    c.abortAlgorithm = undefined;
    c.sizeAlgorithm = undefined;
  }
  function errorIfNeeded(c, e) {
    if (c.stream.state === "writable") {
      clearAlgorithms(c);
      startErroring(c.stream, e);
    }
  }
  const getBackpressure = (c) => c.strategyHWM - c.queueTotalSize <= 0;
  function getChunkSize(c, chunk) {
    if (c.sizeAlgorithm === undefined) return 1;
    try {
      return c.sizeAlgorithm(chunk);
    } catch (e) {
      errorIfNeeded(c, e);
      return 1;
    }
  }
  function advanceQueueIfNeeded(c) {
    const s = c.stream;
    if (!c.started || s.inFlightWriteRequest !== undefined) return;
    if (s.state === "erroring") {
      finishErroring(s);
      return;
    }
    if (qLen(c.queue) === 0) return;
    const value = qPeek(c.queue).value;
    if (value === CLOSE) {
      s.inFlightCloseRequest = s.closeRequest;
      s.closeRequest = undefined;
      dequeueValue(c);
      const p = c.closeAlgorithm();
      clearAlgorithms(c);
      react(p, () => finishInFlightClose(s), (e) => finishInFlightCloseWithError(s, e));
    } else {
      s.inFlightWriteRequest = qShift(s.writeRequests);
      react(c.writeAlgorithm(value), () => {
        s.inFlightWriteRequest.resolve(undefined);
        s.inFlightWriteRequest = undefined;
        dequeueValue(c);
        if (!closeQueuedOrInFlight(s) && s.state === "writable") updateBackpressure(s, getBackpressure(c));
        advanceQueueIfNeeded(c);
      }, (e) => {
        if (s.state === "writable") clearAlgorithms(c);
        s.inFlightWriteRequest.reject(e);
        s.inFlightWriteRequest = undefined;
        dealWithRejection(s, e);
      });
    }
  }
  // SetUpWritableStreamDefaultController; algorithms: start(c), write(chunk, c), close(), abort(reason).
  function setUpController(s, start, write, close, abortAlg, hwm, size) {
    const c = {
      __proto__: null, stream: s, queue: undefined, queueTotalSize: 0, signal: abort.create(), started: false,
      sizeAlgorithm: size, strategyHWM: hwm, writeAlgorithm: undefined, closeAlgorithm: close, abortAlgorithm: abortAlg, obj: undefined,
    };
    c.writeAlgorithm = (chunk) => write(chunk, c);
    new WritableStreamDefaultController(kCreate, c);
    s.controller = c;
    resetQueue(c);
    updateBackpressure(s, getBackpressure(c));
    const startResult = start(c);
    react(PromiseResolve(startResult), () => {
      c.started = true;
      advanceQueueIfNeeded(c);
    }, (r) => {
      c.started = true;
      dealWithRejection(s, r);
    });
  }
  function createWritableStream(start, write, close, abortAlg, hwm, size) {
    const s = newStreamRecord();
    new WritableStream(kCreate, s);
    setUpController(s, start, write, close, abortAlg, hwm, size);
    return s;
  }

  // ---------- public classes ----------
  let wsOf;
  class WritableStream {
    #r;
    constructor(underlyingSink = undefined, strategy = undefined) {
      if (underlyingSink === kCreate) {
        this.#r = strategy;
        strategy.obj = this;
        return;
      }
      const where = "Failed to construct 'WritableStream'";
      if (underlyingSink !== undefined && !isObject(underlyingSink)) throw new TypeError(`${where}: parameter 1 is not an object.`);
      const st = strategyDict(strategy, where);
      const sink = underlyingSink === undefined ? { __proto__: null } : underlyingSink;
      const abortM = callbackMember(sink, "abort", where);
      const closeM = callbackMember(sink, "close", where);
      const startM = callbackMember(sink, "start", where);
      const type = sink.type;
      const writeM = callbackMember(sink, "write", where);
      if (type !== undefined) throw new RangeError(`${where}: the sink's type must be undefined.`);
      const size = extractSizeAlgorithm(st);
      const hwm = extractHighWaterMark(st, 1);
      const s = newStreamRecord();
      this.#r = s;
      s.obj = this;
      setUpController(
        s,
        (c) => (startM === undefined ? undefined : ReflectApply(startM, underlyingSink, [c.obj])),
        (chunk, c) => (writeM === undefined ? resolved() : promiseCall(writeM, underlyingSink, [chunk, c.obj])),
        () => (closeM === undefined ? resolved() : promiseCall(closeM, underlyingSink, [])),
        (reason) => (abortM === undefined ? resolved() : promiseCall(abortM, underlyingSink, [reason])),
        hwm,
        size,
      );
    }
    static {
      wsOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get locked() {
      const s = wsOf(this);
      if (s === undefined) throw illegal();
      return isLocked(s);
    }
    abort(reason = undefined) {
      const s = wsOf(this);
      if (s === undefined) return PromiseReject(illegal());
      if (isLocked(s)) return PromiseReject(new TypeError("Cannot abort a locked WritableStream."));
      return wsAbort(s, reason);
    }
    close() {
      const s = wsOf(this);
      if (s === undefined) return PromiseReject(illegal());
      if (isLocked(s)) return PromiseReject(new TypeError("Cannot close a locked WritableStream."));
      if (closeQueuedOrInFlight(s)) return PromiseReject(new TypeError("The WritableStream is already closing."));
      return wsClose(s);
    }
    getWriter() {
      const s = wsOf(this);
      if (s === undefined) throw illegal();
      return new WritableStreamDefaultWriter(kCreate, acquireWriter(s));
    }
  }
  finish(WritableStream, "WritableStream");

  let writerOf;
  class WritableStreamDefaultWriter {
    #r;
    constructor(stream, rec = undefined) {
      if (stream === kCreate) {
        this.#r = rec;
        rec.obj = this;
        return;
      }
      needArgs(arguments.length, 1, "WritableStreamDefaultWriter");
      const s = wsOf(stream);
      if (s === undefined) throw new TypeError("Failed to construct 'WritableStreamDefaultWriter': parameter 1 is not of type 'WritableStream'.");
      this.#r = acquireWriter(s);
      this.#r.obj = this;
    }
    static {
      writerOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get closed() {
      const w = writerOf(this);
      return w === undefined ? PromiseReject(illegal()) : w.closed.promise;
    }
    get ready() {
      const w = writerOf(this);
      return w === undefined ? PromiseReject(illegal()) : w.ready.promise;
    }
    get desiredSize() {
      const w = writerOf(this);
      if (w === undefined) throw illegal();
      if (w.stream === undefined) throw noWriter();
      return writerGetDesiredSize(w);
    }
    abort(reason = undefined) {
      const w = writerOf(this);
      if (w === undefined) return PromiseReject(illegal());
      if (w.stream === undefined) return PromiseReject(noWriter());
      return wsAbort(w.stream, reason);
    }
    close() {
      const w = writerOf(this);
      if (w === undefined) return PromiseReject(illegal());
      if (w.stream === undefined) return PromiseReject(noWriter());
      if (closeQueuedOrInFlight(w.stream)) return PromiseReject(new TypeError("The WritableStream is already closing."));
      return wsClose(w.stream);
    }
    releaseLock() {
      const w = writerOf(this);
      if (w === undefined) throw illegal();
      if (w.stream !== undefined) writerRelease(w);
    }
    write(chunk = undefined) {
      const w = writerOf(this);
      if (w === undefined) return PromiseReject(illegal());
      if (w.stream === undefined) return PromiseReject(noWriter());
      return writerWrite(w, chunk);
    }
  }
  finish(WritableStreamDefaultWriter, "WritableStreamDefaultWriter");

  let wcOf;
  class WritableStreamDefaultController {
    #r;
    constructor(key = undefined, rec = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
      this.#r = rec;
      rec.obj = this;
    }
    static {
      wcOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    get signal() {
      const c = wcOf(this);
      if (c === undefined) throw illegal();
      return c.signal;
    }
    error(e = undefined) {
      const c = wcOf(this);
      if (c === undefined) throw illegal();
      if (c.stream.state !== "writable") return;
      clearAlgorithms(c);
      startErroring(c.stream, e);
    }
  }
  finish(WritableStreamDefaultController, "WritableStreamDefaultController");

  web.__ws = ObjectFreeze({
    __proto__: null,
    wsOf, isLocked, acquireWriter, writerRelease, writerWrite, writerCloseWithErrorPropagation, closeQueuedOrInFlight,
    abort: wsAbort, createWritableStream, errorIfNeeded,
  });
  web.__addPlatformCheck((v) => wsOf(v) !== undefined || writerOf(v) !== undefined || wcOf(v) !== undefined);
  web.WritableStream = WritableStream;
  web.WritableStreamDefaultWriter = WritableStreamDefaultWriter;
  web.WritableStreamDefaultController = WritableStreamDefaultController;
});
