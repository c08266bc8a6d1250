// web/abort.js: AbortController and AbortSignal (abort, timeout, any,
// aborted, reason, throwIfAborted, onabort), plus web.__abort, the internal
// interface other area files (fetch, streams) use to follow a signal.
// Follows the WHATWG DOM Standard §3.1-3.2 ("Aborting ongoing activities"),
// including dependent signals (AbortSignal.any) and WebIDL argument rules.
//
// Evaluated once in the snapshot creator, called as (ops, P, web) after
// events.js; reads web.Event, web.EventTarget, web.DOMException, web.__events
// and web.__timers ({ start(cb, ms), clear(id) }, set by the loader first).
// Tenant code shares the realm: every built-in is captured below, internal
// arrays are read by index, the abort event is fired through events.js (never
// the patchable dispatchEvent) and state lives in #private fields.
//
// Known divergences from the spec:
// - AbortSignal.any reads an array argument by index (its iterator is not
//   consulted); other iterables go through their own iterator protocol.
// - Garbage collection of dependent signals: a source signal holds each
//   dependent through a WeakRef, or strongly while the dependent has abort
//   listeners or abort algorithms (until it aborts or they are removed), which
//   is the spec's rule; dead WeakRefs are swept as the set grows.
// - The timer behind AbortSignal.timeout is an ordinary runtime timer; whether
//   it holds a request open is up to web.__timers (the spec says it must not).
// - Default reasons: DOMException AbortError "signal is aborted without
//   reason" and TimeoutError "signal timed out" (the spec leaves messages open).
(function abort(ops, P, web) {
  "use strict";
  const { Map, MapPrototypeDelete, MapPrototypeForEach, MapPrototypeGetSize } = P;
  const { MapPrototypeHas, MapPrototypeSet, MathMax, ObjectFreeze, TypeError } = P;
  const { append, newArray, sequence } = P;
  const { bind, call } = Function.prototype;
  const uncurryThis = bind.bind(call);
  const WeakRefCtor = WeakRef;
  const WeakRefPrototypeDeref = uncurryThis(WeakRef.prototype.deref);
  const MathTrunc = Math.trunc;
  const NumberIsFinite = Number.isFinite;
  const MAX_SAFE = Number.MAX_SAFE_INTEGER;

  const Event = web.Event;
  const EventTarget = web.EventTarget;
  const DOMException = web.DOMException;
  const events = web.__events;
  const { fire, hasListeners, defineEventHandler, report, finish, needArgs } = events;
  const timers = web.__timers;

  const kCreate = { __proto__: null };
  const abortError = () => new DOMException("signal is aborted without reason", "AbortError");

  // ---------- AbortSignal ----------
  let signalState; // (v) => the signal's internal record, or undefined
  class AbortSignal extends EventTarget {
    #s;
    constructor(key = undefined) {
      if (key !== kCreate) throw new TypeError("Failed to construct 'AbortSignal': Illegal constructor");
      super();
      this.#s = {
        __proto__: null,
        aborted: false,
        reason: undefined,
        algorithms: null, // Map token -> internal function, in insertion order
        dependent: false,
        sources: null, // a dependent's source signals (array)
        dependents: null, // a source's dependents: Map WeakRef -> the signal if pinned, else null
        sweepAt: 64,
        ref: null, // a dependent's WeakRef to itself, its key in its sources' maps
        pinned: false,
      };
    }
    static { signalState = (v) => (v !== null && typeof v === "object" && #s in v ? v.#s : undefined); }
    static abort(reason = undefined) {
      const signal = create();
      const s = signalState(signal);
      s.aborted = true;
      s.reason = reason === undefined ? abortError() : reason;
      return signal;
    }
    static timeout(milliseconds) {
      needArgs(arguments.length, 1, "AbortSignal", "timeout");
      const ms = enforceRange(milliseconds);
      if (timers === undefined || timers === null || typeof timers.start !== "function") {
        throw new TypeError("Failed to execute 'timeout' on 'AbortSignal': timers are not available");
      }
      const signal = create();
      timers.start(() => signalAbort(signal, new DOMException("signal timed out", "TimeoutError")), ms);
      return signal;
    }
    static any(signals) {
      needArgs(arguments.length, 1, "AbortSignal", "any");
      return createDependent(toSignalList(signals));
    }
    get aborted() { return this.#s.aborted; }
    get reason() { return this.#s.reason; }
    throwIfAborted() {
      const s = this.#s;
      if (s.aborted) throw s.reason;
    }
  }
  defineEventHandler(AbortSignal.prototype, "abort");
  finish(AbortSignal, "AbortSignal");
  const create = () => new AbortSignal(kCreate);

  // WebIDL [EnforceRange] unsigned long long.
  function enforceRange(v) {
    const n = +v;
    const where = "Failed to execute 'timeout' on 'AbortSignal'";
    if (!NumberIsFinite(n)) throw new TypeError(`${where}: Value is not a finite number.`);
    const x = MathTrunc(n);
    if (x < 0 || x > MAX_SAFE) throw new TypeError(`${where}: Value is outside the 'unsigned long long' value range.`);
    return x === 0 ? 0 : x;
  }

  // WebIDL sequence<AbortSignal>, into an internal array.
  function toSignalList(v) {
    const where = "Failed to execute 'any' on 'AbortSignal'";
    const out = newArray();
    const add = (x) => {
      if (signalState(x) === undefined) throw new TypeError(`${where}: Failed to convert value to 'AbortSignal'.`);
      append(out, x);
    };
    const list = sequence(v, where);
    for (let i = 0; i < list.length; i++) add(list[i]);
    return out;
  }

  // "Create a dependent abort signal" from an internal array of signals.
  function createDependent(list) {
    const result = create();
    const rs = signalState(result);
    for (let i = 0; i < list.length; i++) {
      const s = signalState(list[i]);
      if (s.aborted) {
        rs.aborted = true;
        rs.reason = s.reason;
        return result;
      }
    }
    rs.dependent = true;
    rs.sources = newArray();
    rs.ref = new WeakRefCtor(result);
    const seen = new Map();
    for (let i = 0; i < list.length; i++) {
      const s = signalState(list[i]);
      if (!s.dependent) {
        link(rs, list[i], s, seen);
      } else if (s.sources !== null) {
        for (let j = 0; j < s.sources.length; j++) link(rs, s.sources[j], signalState(s.sources[j]), seen);
      }
    }
    return result;
  }
  function link(rs, source, ss, seen) {
    if (MapPrototypeHas(seen, source)) return;
    MapPrototypeSet(seen, source, true);
    append(rs.sources, source);
    if (ss.dependents === null) ss.dependents = new Map();
    else if (MapPrototypeGetSize(ss.dependents) >= ss.sweepAt) sweep(ss);
    MapPrototypeSet(ss.dependents, rs.ref, null);
  }
  // Drops the entries of dependents that were garbage collected.
  function sweep(ss) {
    const d = ss.dependents;
    MapPrototypeForEach(d, (strong, ref) => {
      if (strong === null && WeakRefPrototypeDeref(ref) === undefined) MapPrototypeDelete(d, ref);
    });
    ss.sweepAt = MathMax(64, MapPrototypeGetSize(d) * 2);
  }
  // A dependent with abort listeners or algorithms must stay alive while a
  // source can still abort it: its sources then hold it strongly.
  function repin(signal, s) {
    if (!s.dependent || s.aborted || s.sources === null) return;
    const want = (s.algorithms !== null && MapPrototypeGetSize(s.algorithms) > 0) || hasListeners(signal, "abort");
    if (want === s.pinned) return;
    s.pinned = want;
    for (let i = 0; i < s.sources.length; i++) {
      const d = signalState(s.sources[i]).dependents;
      if (d !== null && MapPrototypeHas(d, s.ref)) MapPrototypeSet(d, s.ref, want ? signal : null);
    }
  }

  // Internal "add an abort algorithm": returns a token for removeAlgorithm, or
  // undefined if the signal is already aborted (the algorithm will never run).
  function addAlgorithm(signal, fn) {
    const s = signalState(signal);
    if (s === undefined) throw new TypeError("addAlgorithm: not an AbortSignal");
    if (s.aborted) return undefined;
    if (s.algorithms === null) s.algorithms = new Map();
    const token = { __proto__: null };
    MapPrototypeSet(s.algorithms, token, fn);
    repin(signal, s);
    return token;
  }
  function removeAlgorithm(signal, token) {
    const s = signalState(signal);
    if (s === undefined || token === undefined || s.algorithms === null) return;
    if (MapPrototypeDelete(s.algorithms, token)) repin(signal, s);
  }

  // "Signal abort".
  function signalAbort(signal, reason) {
    const s = signalState(signal);
    if (s === undefined) throw new TypeError("signalAbort: not an AbortSignal");
    if (s.aborted) return;
    s.aborted = true;
    s.reason = reason === undefined ? abortError() : reason;
    const toAbort = newArray();
    const d = s.dependents;
    s.dependents = null;
    if (d !== null) {
      MapPrototypeForEach(d, (strong, ref) => {
        const dep = strong !== null ? strong : WeakRefPrototypeDeref(ref);
        const ds = dep === undefined ? undefined : signalState(dep);
        if (ds === undefined || ds.aborted) return;
        ds.aborted = true;
        ds.reason = s.reason;
        append(toAbort, dep);
      });
    }
    runAbortSteps(signal, s);
    for (let i = 0; i < toAbort.length; i++) runAbortSteps(toAbort[i], signalState(toAbort[i]));
  }
  const runAlgorithm = (fn) => {
    try {
      fn();
    } catch (e) {
      report(e);
    }
  };
  // "Run the abort steps": the algorithms, then the trusted "abort" event.
  function runAbortSteps(signal, s) {
    const algorithms = s.algorithms;
    s.algorithms = null;
    const sources = s.sources;
    s.sources = null;
    if (sources !== null) {
      for (let i = 0; i < sources.length; i++) {
        const d = signalState(sources[i]).dependents;
        if (d !== null) MapPrototypeDelete(d, s.ref);
      }
    }
    if (algorithms !== null) MapPrototypeForEach(algorithms, runAlgorithm);
    fire(signal, new Event("abort"));
  }

  // Hooks events.js needs for addEventListener's `signal` option and for
  // pinning dependents that gain or lose abort listeners.
  events.setSignalHooks(ObjectFreeze({
    __proto__: null,
    isSignal: (v) => signalState(v) !== undefined,
    aborted: (v) => signalState(v).aborted,
    add: addAlgorithm,
    remove: removeAlgorithm,
    changed(target, type) {
      if (type !== "abort") return;
      const s = signalState(target);
      if (s !== undefined) repin(target, s);
    },
  }));

  // ---------- AbortController ----------
  class AbortController {
    #signal = create();
    get signal() { return this.#signal; }
    abort(reason = undefined) { signalAbort(this.#signal, reason); }
  }
  finish(AbortController, "AbortController");

  web.AbortController = AbortController;
  web.AbortSignal = AbortSignal;
  // Internal, for other area files only; never a global.
  web.__abort = ObjectFreeze({
    __proto__: null,
    create, // () -> a new, not aborted AbortSignal
    isSignal: (v) => signalState(v) !== undefined,
    aborted: (signal) => signalState(signal).aborted,
    reason: (signal) => signalState(signal).reason,
    add: addAlgorithm, // (signal, fn) -> token | undefined when already aborted
    remove: removeAlgorithm, // (signal, token)
    abort: signalAbort, // (signal, reason?)
    any: (list) => createDependent(toSignalList(list)), // (array of signals) -> dependent signal
  });
});
