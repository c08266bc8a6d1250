// web/streams_more.js: the parts of ReadableStream that build on the core of
// streams.js (web.__rs) and streams_bytes.js (web.__rsBytes): pipeTo and
// pipeThrough (with preventClose/preventAbort/preventCancel and an
// AbortSignal), tee (default and byte streams), async iteration (values(),
// with preventCancel) and ReadableStream.from. streams.js loads this file on
// the first call of one of them; it gives web.__rsMore back.
//
// A lazy area: runs after tenant code, takes every built-in from the
// primordials; the iterator protocol of a tenant's iterable is followed as
// the spec says (GetIterator, IteratorNext), never an array iterator.
(function streamsMore(ops, P, web) {
  "use strict";
  web.__load("streams");
  const R = web.__rs;
  const { isObject, deferred, follow, settleWith, noop, markHandled, resolved, react, microtask, waitAll, qLen, illegal } = R;
  const { readableStreamCancel, readerRelease, acquireReader, defaultReaderRead, rsOf, isLocked } = R;
  const { createReadableStream, dcEnqueue, dcClose, dcError } = R;
  const { ObjectFreeze, PromiseReject, PromiseResolve, ReflectApply, TypeError, Uint8Array, append, newArray } = P;
  const I = P.intrinsic;
  const { finish } = web.__events;
  const then = I("Promise.prototype.then");
  const ObjectGetPrototypeOf = I("Object.getPrototypeOf");
  const SymbolAsyncIterator = I("Symbol.asyncIterator");
  const SymbolIterator = I("Symbol.iterator");
  const abort = web.__abort;
  const pair = (a, b) => {
    const out = newArray();
    append(out, a);
    append(out, b);
    return out;
  };

  // ---------- pipeTo / pipeThrough ----------
  // StreamPipeOptions, members in WebIDL order.
  function pipeOptions(o, where) {
    if (o === undefined || o === null) return { __proto__: null, preventAbort: false, preventCancel: false, preventClose: false, signal: undefined };
    if (!isObject(o)) throw new TypeError(`${where}: the options are not an object.`);
    const preventAbort = !!o.preventAbort;
    const preventCancel = !!o.preventCancel;
    const preventClose = !!o.preventClose;
    const signal = o.signal;
    if (signal !== undefined && !abort.isSignal(signal)) throw new TypeError(`${where}: options.signal is not an AbortSignal.`);
    return { __proto__: null, preventAbort, preventCancel, preventClose, signal };
  }
  const wsOf = (v) => (web.__ws === undefined ? undefined : web.__ws.wsOf(v));

  function pipeToChecked(s, destination, options) {
    const where = "Failed to execute 'pipeTo' on 'ReadableStream'";
    const ws = wsOf(destination);
    if (ws === undefined) return PromiseReject(new TypeError(`${where}: parameter 1 is not of type 'WritableStream'.`));
    let o;
    try {
      o = pipeOptions(options, where);
    } catch (e) {
      return PromiseReject(e);
    }
    if (isLocked(s)) return PromiseReject(new TypeError(`${where}: the ReadableStream is locked.`));
    if (web.__ws.isLocked(ws)) return PromiseReject(new TypeError(`${where}: the WritableStream is locked.`));
    return pipeTo(s, ws, o.preventClose, o.preventAbort, o.preventCancel, o.signal);
  }
  function pipeThrough(s, transform, options) {
    const where = "Failed to execute 'pipeThrough' on 'ReadableStream'";
    if (!isObject(transform)) throw new TypeError(`${where}: parameter 1 is not an object.`);
    const readable = transform.readable;
    if (rsOf(readable) === undefined) throw new TypeError(`${where}: transform.readable is not a ReadableStream.`);
    const writable = transform.writable;
    const ws = wsOf(writable);
    if (ws === undefined) throw new TypeError(`${where}: transform.writable is not a WritableStream.`);
    const o = pipeOptions(options, where);
    if (isLocked(s)) throw new TypeError(`${where}: the ReadableStream is locked.`);
    if (web.__ws.isLocked(ws)) throw new TypeError(`${where}: the WritableStream is locked.`);
    markHandled(pipeTo(s, ws, o.preventClose, o.preventAbort, o.preventCancel, o.signal));
    return readable;
  }

  // ReadableStreamPipeTo (source and dest are records).
  function pipeTo(source, dest, preventClose, preventAbort, preventCancel, signal) {
    const W = web.__ws;
    const reader = acquireReader(source, false);
    const writer = W.acquireWriter(dest);
    source.disturbed = true;
    let shuttingDown = false;
    let currentWrite = resolved();
    const done = deferred();
    let abortToken;

    const waitForWritesToFinish = () => {
      const old = currentWrite;
      return follow(currentWrite, () => (old !== currentWrite ? waitForWritesToFinish() : undefined));
    };
    const finalize = (isError, error) => {
      W.writerRelease(writer);
      readerRelease(reader);
      if (abortToken !== undefined) abort.remove(signal, abortToken);
      if (isError) done.reject(error);
      else done.resolve(undefined);
    };
    const destBusy = () => dest.state === "writable" && !W.closeQueuedOrInFlight(dest);
    const shutdownWithAnAction = (action, originalIsError, originalError) => {
      if (shuttingDown) return;
      shuttingDown = true;
      const doTheRest = () => {
        react(action(), () => finalize(originalIsError, originalError), (e) => finalize(true, e));
      };
      if (destBusy()) react(waitForWritesToFinish(), doTheRest);
      else doTheRest();
    };
    const shutdown = (isError, error) => {
      if (shuttingDown) return;
      shuttingDown = true;
      if (destBusy()) react(waitForWritesToFinish(), () => finalize(isError, error));
      else finalize(isError, error);
    };

    if (signal !== undefined) {
      const abortAlgorithm = () => {
        const error = abort.reason(signal);
        const actions = newArray();
        if (!preventAbort) append(actions, () => (dest.state === "writable" ? W.abort(dest, error) : resolved()));
        if (!preventCancel) append(actions, () => (source.state === "readable" ? readableStreamCancel(source, error) : resolved()));
        shutdownWithAnAction(() => {
          const ps = newArray();
          for (let i = 0; i < actions.length; i++) append(ps, actions[i]());
          return waitAll(ps);
        }, true, error);
      };
      if (abort.aborted(signal)) {
        abortAlgorithm();
        return done.promise;
      }
      abortToken = abort.add(signal, abortAlgorithm);
    }

    // One step: wait for the writer to be ready, read a chunk, write it.
    const pipeStep = () => {
      if (shuttingDown) return PromiseResolve(true);
      return follow(writer.ready.promise, () => {
        const d = deferred();
        defaultReaderRead(reader, {
          __proto__: null,
          chunk: (chunk) => {
            currentWrite = then(W.writerWrite(writer, chunk), undefined, noop);
            d.resolve(false);
          },
          close: () => d.resolve(true),
          error: d.reject,
        });
        return d.promise;
      });
    };
    const loop = deferred();
    const next = (finished) => {
      if (finished) loop.resolve(undefined);
      else react(pipeStep(), next, loop.reject);
    };
    // Errors must be propagated forward.
    const sourceErrored = (e) => {
      if (!preventAbort) shutdownWithAnAction(() => W.abort(dest, e), true, e);
      else shutdown(true, e);
    };
    if (source.state === "errored") sourceErrored(source.storedError);
    else react(reader.closed.promise, undefined, sourceErrored);
    // Errors must be propagated backward.
    const destErrored = (e) => {
      if (!preventCancel) shutdownWithAnAction(() => readableStreamCancel(source, e), true, e);
      else shutdown(true, e);
    };
    if (dest.state === "errored") destErrored(dest.storedError);
    else react(writer.closed.promise, undefined, destErrored);
    // Closing must be propagated forward.
    const sourceClosed = () => {
      if (!preventClose) shutdownWithAnAction(() => W.writerCloseWithErrorPropagation(writer));
      else shutdown();
    };
    if (source.state === "closed") sourceClosed();
    else react(reader.closed.promise, sourceClosed, noop);
    // Closing must be propagated backward.
    if (W.closeQueuedOrInFlight(dest) || dest.state === "closed") {
      const destClosed = new TypeError("The destination WritableStream closed before all data could be piped to it.");
      if (!preventCancel) shutdownWithAnAction(() => readableStreamCancel(source, destClosed), true, destClosed);
      else shutdown(true, destClosed);
    }
    next(false);
    markHandled(loop.promise);
    return done.promise;
  }

  // ---------- tee of a default stream ----------
  function defaultTee(stream) {
    const reader = acquireReader(stream, false);
    let reading = false;
    let readAgain = false;
    let canceled1 = false;
    let canceled2 = false;
    let reason1;
    let reason2;
    let branch1;
    let branch2;
    const cancelDone = deferred();
    const pull = () => {
      if (reading) {
        readAgain = true;
        return resolved();
      }
      reading = true;
      defaultReaderRead(reader, {
        __proto__: null,
        chunk: (chunk) => microtask(() => {
          readAgain = false;
          if (!canceled1) dcEnqueue(branch1.controller, chunk);
          if (!canceled2) dcEnqueue(branch2.controller, chunk);
          reading = false;
          if (readAgain) pull();
        }),
        close: () => {
          reading = false;
          if (!canceled1) dcClose(branch1.controller);
          if (!canceled2) dcClose(branch2.controller);
          if (!canceled1 || !canceled2) cancelDone.resolve(undefined);
        },
        error: () => {
          reading = false;
        },
      });
      return resolved();
    };
    const cancelBoth = () => settleWith(cancelDone, readableStreamCancel(stream, pair(reason1, reason2)));
    const cancel1 = (reason) => {
      canceled1 = true;
      reason1 = reason;
      if (canceled2) cancelBoth();
      return cancelDone.promise;
    };
    const cancel2 = (reason) => {
      canceled2 = true;
      reason2 = reason;
      if (canceled1) cancelBoth();
      return cancelDone.promise;
    };
    branch1 = createReadableStream(noop, pull, cancel1);
    branch2 = createReadableStream(noop, pull, cancel2);
    react(reader.closed.promise, undefined, (r) => {
      dcError(branch1.controller, r);
      dcError(branch2.controller, r);
      if (!canceled1 || !canceled2) cancelDone.resolve(undefined);
    });
    return pair(branch1, branch2);
  }
  // ---------- ReadableByteStreamTee ----------
  function byteTee(stream) {
    const { viewParts, cloneBytes, error, enqueue, close, respond, respondWithNewView, getBYOBRequest, pullInto, createByteStream } = web.__rsBytes;
    let reader = acquireReader(stream, false);
    let reading = false;
    let readAgain1 = false;
    let readAgain2 = false;
    let canceled1 = false;
    let canceled2 = false;
    let reason1;
    let reason2;
    let branch1;
    let branch2;
    const cancelDone = deferred();
    const cloneChunk = (chunk) => {
      const p = viewParts(chunk);
      return new Uint8Array(cloneBytes(p.buffer, p.byteOffset, p.byteLength));
    };
    const forwardReaderError = (thisReader) => {
      react(thisReader.closed.promise, noop, (r) => {
        if (thisReader !== reader) return;
        error(branch1.controller, r);
        error(branch2.controller, r);
        if (!canceled1 || !canceled2) cancelDone.resolve(undefined);
      });
    };
    const pullWithDefaultReader = () => {
      if (reader.byob) {
        readerRelease(reader);
        reader = acquireReader(stream, false);
        forwardReaderError(reader);
      }
      defaultReaderRead(reader, {
        __proto__: null,
        chunk: (chunk) => microtask(() => {
          readAgain1 = false;
          readAgain2 = false;
          let chunk2 = chunk;
          if (!canceled1 && !canceled2) {
            try {
              chunk2 = cloneChunk(chunk);
            } catch (e) {
              error(branch1.controller, e);
              error(branch2.controller, e);
              settleWith(cancelDone, readableStreamCancel(stream, e));
              return;
            }
          }
          if (!canceled1) enqueue(branch1.controller, viewParts(chunk));
          if (!canceled2) enqueue(branch2.controller, viewParts(chunk2));
          reading = false;
          if (readAgain1) pull1();
          else if (readAgain2) pull2();
        }),
        close: () => {
          reading = false;
          if (!canceled1) close(branch1.controller);
          if (!canceled2) close(branch2.controller);
          if (qLen(branch1.controller.pending) > 0) respond(branch1.controller, 0);
          if (qLen(branch2.controller.pending) > 0) respond(branch2.controller, 0);
          if (!canceled1 || !canceled2) cancelDone.resolve(undefined);
        },
        error: () => {
          reading = false;
        },
      });
    };
    const pullWithBYOBReader = (view, forBranch2) => {
      if (!reader.byob) {
        readerRelease(reader);
        reader = acquireReader(stream, true);
        forwardReaderError(reader);
      }
      const byobBranch = forBranch2 ? branch2 : branch1;
      const otherBranch = forBranch2 ? branch1 : branch2;
      const req = {
        __proto__: null,
        chunk: (chunk) => microtask(() => {
          readAgain1 = false;
          readAgain2 = false;
          const byobCanceled = forBranch2 ? canceled2 : canceled1;
          const otherCanceled = forBranch2 ? canceled1 : canceled2;
          if (!otherCanceled) {
            let cloned;
            try {
              cloned = cloneChunk(chunk);
            } catch (e) {
              error(byobBranch.controller, e);
              error(otherBranch.controller, e);
              settleWith(cancelDone, readableStreamCancel(stream, e));
              return;
            }
            if (!byobCanceled) respondWithNewView(byobBranch.controller, chunk);
            enqueue(otherBranch.controller, viewParts(cloned));
          } else if (!byobCanceled) respondWithNewView(byobBranch.controller, chunk);
          reading = false;
          if (readAgain1) pull1();
          else if (readAgain2) pull2();
        }),
        close: (chunk) => {
          reading = false;
          const byobCanceled = forBranch2 ? canceled2 : canceled1;
          const otherCanceled = forBranch2 ? canceled1 : canceled2;
          if (!byobCanceled) close(byobBranch.controller);
          if (!otherCanceled) close(otherBranch.controller);
          if (chunk !== undefined) {
            if (!byobCanceled) respondWithNewView(byobBranch.controller, chunk);
            if (!otherCanceled && qLen(otherBranch.controller.pending) > 0) respond(otherBranch.controller, 0);
          }
          if (!byobCanceled || !otherCanceled) cancelDone.resolve(undefined);
        },
        error: () => {
          reading = false;
        },
      };
      const s = reader.stream;
      s.disturbed = true;
      if (s.state === "errored") req.error(s.storedError);
      else pullInto(s.controller, view, 1, req);
    };
    const pull1 = () => {
      if (reading) {
        readAgain1 = true;
        return resolved();
      }
      reading = true;
      const r = getBYOBRequest(branch1.controller);
      if (r === null) pullWithDefaultReader();
      else pullWithBYOBReader(r.view, false);
      return resolved();
    };
    const pull2 = () => {
      if (reading) {
        readAgain2 = true;
        return resolved();
      }
      reading = true;
      const r = getBYOBRequest(branch2.controller);
      if (r === null) pullWithDefaultReader();
      else pullWithBYOBReader(r.view, true);
      return resolved();
    };
    const cancelBoth = () => settleWith(cancelDone, readableStreamCancel(stream, pair(reason1, reason2)));
    const cancel1 = (reason) => {
      canceled1 = true;
      reason1 = reason;
      if (canceled2) cancelBoth();
      return cancelDone.promise;
    };
    const cancel2 = (reason) => {
      canceled2 = true;
      reason2 = reason;
      if (canceled1) cancelBoth();
      return cancelDone.promise;
    };
    branch1 = createByteStream(noop, pull1, cancel1);
    branch2 = createByteStream(noop, pull2, cancel2);
    forwardReaderError(reader);
    return pair(branch1, branch2);
  }


  // ---------- async iteration ----------
  const AsyncIteratorPrototype = ObjectGetPrototypeOf(ObjectGetPrototypeOf(async function* () {}.prototype));
  const END = { __proto__: null };
  let itOf;
  class ReadableStreamAsyncIterator {
    #r;
    constructor(rec) {
      this.#r = rec;
    }
    static {
      itOf = (v) => (isObject(v) && #r in v ? v.#r : undefined);
    }
    next() {
      const it = itOf(this);
      if (it === undefined) return PromiseReject(illegal());
      const nextSteps = () => {
        if (it.finished) return PromiseResolve({ value: undefined, done: true });
        const d = deferred();
        const reader = it.reader;
        defaultReaderRead(reader, {
          __proto__: null,
          chunk: d.resolve,
          close: () => {
            readerRelease(reader);
            d.resolve(END);
          },
          error: (e) => {
            readerRelease(reader);
            d.reject(e);
          },
        });
        return then(d.promise, (v) => {
          it.ongoing = undefined;
          if (v === END) {
            it.finished = true;
            return { value: undefined, done: true };
          }
          return { value: v, done: false };
        }, (e) => {
          it.ongoing = undefined;
          it.finished = true;
          throw e;
        });
      };
      const ongoing = it.ongoing;
      const after = ongoing !== undefined ? follow(ongoing, nextSteps, nextSteps) : nextSteps();
      it.ongoing = after;
      return after;
    }
    return(value = undefined) {
      const it = itOf(this);
      if (it === undefined) return PromiseReject(illegal());
      const returnSteps = () => {
        if (it.finished) return resolved();
        it.finished = true;
        const reader = it.reader;
        if (reader.stream === undefined) return resolved();
        if (!it.preventCancel) {
          const r = readableStreamCancel(reader.stream, value);
          readerRelease(reader);
          return r;
        }
        readerRelease(reader);
        return resolved();
      };
      const ongoing = it.ongoing;
      const after = ongoing !== undefined ? follow(ongoing, returnSteps, returnSteps) : returnSteps();
      it.ongoing = after;
      return then(after, () => ({ value, done: true }));
    }
  }
  finish(ReadableStreamAsyncIterator, "ReadableStream AsyncIterator");
  I("Reflect.deleteProperty")(ReadableStreamAsyncIterator.prototype, "constructor");
  I("Object.setPrototypeOf")(ReadableStreamAsyncIterator.prototype, AsyncIteratorPrototype);
  const iterator = (reader, preventCancel) =>
    new ReadableStreamAsyncIterator({ __proto__: null, reader, preventCancel, ongoing: undefined, finished: false });

  // ---------- ReadableStream.from ----------
  function from(iterable) {
    const where = "Failed to execute 'from' on 'ReadableStream'";
    if (iterable === undefined || iterable === null) throw new TypeError(`${where}: the value is not iterable.`);
    const method = (v, key) => {
      const m = v[key];
      if (m === undefined || m === null) return undefined;
      if (typeof m !== "function") throw new TypeError(`${where}: the value's iterator method is not a function.`);
      return m;
    };
    const am = method(iterable, SymbolAsyncIterator);
    let sync = false;
    let iter;
    if (am !== undefined) iter = ReflectApply(am, iterable, []);
    else {
      const sm = method(iterable, SymbolIterator);
      if (sm === undefined) throw new TypeError(`${where}: the value is not iterable.`);
      iter = ReflectApply(sm, iterable, []);
      sync = true;
    }
    if (!isObject(iter)) throw new TypeError(`${where}: the iterator is not an object.`);
    const nextMethod = iter.next;
    let stream;
    const pull = () => {
      let result;
      try {
        result = ReflectApply(nextMethod, iter, []);
        if (sync) {
          if (!isObject(result)) throw new TypeError("The iterator's next() result is not an object.");
          const d = !!result.done;
          result = then(PromiseResolve(result.value), (value) => ({ value, done: d }));
        }
      } catch (e) {
        return PromiseReject(e);
      }
      return then(PromiseResolve(result), (r) => {
        if (!isObject(r)) throw new TypeError("The iterator's next() result is not an object.");
        if (r.done) dcClose(stream.controller);
        else dcEnqueue(stream.controller, r.value);
      });
    };
    const cancel = (reason) => {
      let result;
      try {
        const ret = iter.return;
        if (ret === undefined || ret === null) return resolved();
        result = ReflectApply(ret, iter, [reason]);
        if (sync) {
          if (!isObject(result)) throw new TypeError("The iterator's return() result is not an object.");
          result = then(PromiseResolve(result.value), () => ({ __proto__: null }));
        }
      } catch (e) {
        return PromiseReject(e);
      }
      return then(PromiseResolve(result), (r) => {
        if (!isObject(r)) throw new TypeError("The iterator's return() result is not an object.");
      });
    };
    stream = createReadableStream(noop, pull, cancel, 0);
    return stream;
  }

  web.__addPlatformCheck((v) => itOf(v) !== undefined);
  web.__rsMore = ObjectFreeze({ __proto__: null, pipeTo: pipeToChecked, pipeThrough, defaultTee, byteTee, iterator, from, pipeOptions });
});
