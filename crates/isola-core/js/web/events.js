// web/events.js: DOMException, Event, EventTarget, CustomEvent, ErrorEvent,
// PromiseRejectionEvent and MessageEvent, plus the internal event machinery
// other area files use (web.__events: firing trusted events, event handler
// attributes such as `onabort`, WebIDL argument helpers).
// Follows the WHATWG DOM Standard §2 (events), WebIDL §2.8 (DOMException) and
// the WHATWG HTML Standard (ErrorEvent, PromiseRejectionEvent, MessageEvent,
// event handler IDL attributes).
//
// Evaluated once in the snapshot creator, called as (ops, P, web). Tenant code
// shares the realm and may patch any prototype, iterator or global later:
// every built-in used here is captured below, internal arrays are dense and
// read by index, descriptors and records have null prototypes, and state
// lives in #private fields (brand checks use `#x in v`, never instanceof).
//
// Known divergences from the specs:
// - No node tree: an event's path is its target alone, so listeners only run
//   in the AT_TARGET phase (capture listeners first, as the spec orders them
//   for a non-node target); `bubbles` and `composed` are recorded only.
// - `timeStamp` is Date.now() (ms since the epoch), not relative to a time origin.
// - At most 10000 listeners per target (RangeError past it).
// - `new DOMException(msg, { name, cause })` is also accepted (as in Node/Deno).
// - MessageEvent: MessagePorts cannot be transferred and there are no
//   windows, so `ports` must be omitted or an empty array and `source`
//   omitted or null; no initMessageEvent.
// - ErrorEvent.error defaults to undefined; PromiseRejectionEvent.promise is
//   typed `object` (current HTML), never wrapped in a new promise.
// - A malformed init dictionary given to an Event subclass is reported as
//   "Failed to construct 'Event'".
// - No document.createEvent, legacy type aliases (webkit*) or window-specific
//   passive defaults.
(function events(ops, P, web) {
  "use strict";
  const { ArrayIsArray, DateNow, Error, ErrorCaptureStackTrace, Map, MapPrototypeDelete, MapPrototypeGet } = P;
  const { MapPrototypeSet, ObjectDefineProperty, ObjectFreeze, RangeError, ReflectApply, String, TypeError } = P;
  const { append, newArray } = P;
  const ObjectSetPrototypeOf = Object.setPrototypeOf;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const ObjectGetOwnPropertyNames = Object.getOwnPropertyNames;
  const SymbolToStringTag = Symbol.toStringTag;
  const ErrorPrototype = Error.prototype;

  const MAX_LISTENERS = 10000;
  const NONE = 0;
  const AT_TARGET = 2;

  // ---------- helpers ----------
  // An exception from a listener: handed to web.reportError when the
  // bootstrap provides one (looked up at dispatch time), otherwise dropped.
  function report(e) {
    const r = web.reportError;
    if (typeof r === "function") try { ReflectApply(r, undefined, [e]); } catch {}
  }
  const illegal = () => new TypeError("Illegal invocation");
  const failed = (iface, op) =>
    op === undefined ? `Failed to construct '${iface}'` : `Failed to execute '${op}' on '${iface}'`;
  function needArgs(got, n, iface, op) {
    if (got < n) throw new TypeError(`${failed(iface, op)}: ${n} argument${n > 1 ? "s" : ""} required, but only ${got} present.`);
  }
  // WebIDL DOMString conversion.
  function str(v) {
    if (typeof v === "string") return v;
    if (typeof v === "symbol") throw new TypeError("Cannot convert a Symbol value to a string");
    return String(v);
  }
  const optStr = (v) => (v === undefined ? "" : str(v));
  // WebIDL unsigned long: ToNumber, then modulo 2^32.
  const uint32 = (v) => (v === undefined ? 0 : +v >>> 0);
  const isObject = (v) => v !== null && (typeof v === "object" || typeof v === "function");
  // A dictionary argument: null for undefined/null, else the object, else a TypeError.
  function dict(v, iface, name) {
    if (v === undefined || v === null) return null;
    if (!isObject(v)) throw new TypeError(`${failed(iface)}: The provided value is not of type '${name}'.`);
    return v;
  }
  // WebIDL interface shape, at load time: enumerable members and statics, a
  // Symbol.toStringTag.
  function finish(C, name) {
    const holders = [C.prototype, C];
    for (let h = 0; h < 2; h++) {
      const keys = ObjectGetOwnPropertyNames(holders[h]);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (k === "constructor" || k === "prototype" || k === "length" || k === "name") continue;
        const d = ObjectGetOwnPropertyDescriptor(holders[h], k);
        if (!d.configurable) continue;
        d.enumerable = true;
        ObjectDefineProperty(holders[h], k, d);
      }
    }
    ObjectDefineProperty(C.prototype, SymbolToStringTag, { __proto__: null, value: name, configurable: true });
  }
  // WebIDL constants: names[i] is first + i, on C and on C.prototype.
  function constants(C, names, first) {
    for (let i = 0; i < names.length; i++) {
      const d = { __proto__: null, value: first + i, enumerable: true, writable: false, configurable: false };
      ObjectDefineProperty(C, names[i], d);
      ObjectDefineProperty(C.prototype, names[i], d);
    }
  }

  // ---------- DOMException ----------
  // The spec's names table: name -> legacy code (names not listed have code 0).
  const CODES = { __proto__: null, IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4,
    InvalidCharacterError: 5, NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9,
    InUseAttributeError: 10, InvalidStateError: 11, SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14,
    InvalidAccessError: 15, TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20,
    URLMismatchError: 21, QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25 };
  class DOMException {
    #name; #message;
    constructor(message = undefined, options = undefined) {
      this.#message = optStr(message);
      let name = "Error";
      if (options !== null && typeof options === "object") {
        const n = options.name;
        if (n !== undefined) name = str(n);
        if ("cause" in options) {
          ObjectDefineProperty(this, "cause", { __proto__: null, value: options.cause, writable: true, configurable: true });
        }
      } else if (options !== undefined) {
        name = str(options);
      }
      this.#name = name;
      ErrorCaptureStackTrace(this);
    }
    get name() { return this.#name; }
    get message() { return this.#message; }
    get code() { return CODES[this.#name] || 0; }
  }
  ObjectSetPrototypeOf(DOMException.prototype, ErrorPrototype);
  finish(DOMException, "DOMException");
  constants(DOMException, ["INDEX_SIZE_ERR", "DOMSTRING_SIZE_ERR", "HIERARCHY_REQUEST_ERR", "WRONG_DOCUMENT_ERR",
    "INVALID_CHARACTER_ERR", "NO_DATA_ALLOWED_ERR", "NO_MODIFICATION_ALLOWED_ERR", "NOT_FOUND_ERR", "NOT_SUPPORTED_ERR",
    "INUSE_ATTRIBUTE_ERR", "INVALID_STATE_ERR", "SYNTAX_ERR", "INVALID_MODIFICATION_ERR", "NAMESPACE_ERR",
    "INVALID_ACCESS_ERR", "VALIDATION_ERR", "TYPE_MISMATCH_ERR", "SECURITY_ERR", "NETWORK_ERR", "ABORT_ERR",
    "URL_MISMATCH_ERR", "QUOTA_EXCEEDED_ERR", "TIMEOUT_ERR", "INVALID_NODE_TYPE_ERR", "DATA_CLONE_ERR"], 1);

  // ---------- Event ----------
  let eventState; // (v) => the event's internal record, or undefined
  function isTrustedGetter() {
    const s = eventState(this);
    if (s === undefined) throw illegal();
    return s.trusted;
  }
  // "Set the canceled flag".
  function cancel(s) {
    if (s.cancelable && !s.inPassive) s.canceled = true;
  }
  class Event {
    #s;
    constructor(type, eventInitDict = undefined) {
      needArgs(arguments.length, 1, "Event");
      const t = str(type);
      const d = dict(eventInitDict, "Event", "EventInit");
      const bubbles = d !== null && !!d.bubbles;
      const cancelable = d !== null && !!d.cancelable;
      const composed = d !== null && !!d.composed;
      this.#s = { __proto__: null, type: t, bubbles, cancelable, composed, trusted: false, timeStamp: DateNow(),
        target: null, currentTarget: null, phase: NONE, stop: false, stopImmediate: false, canceled: false,
        inPassive: false, dispatching: false };
      // [LegacyUnforgeable]: an own, non-configurable accessor.
      ObjectDefineProperty(this, "isTrusted", { __proto__: null, get: isTrustedGetter, enumerable: true, configurable: false });
    }
    static { eventState = (v) => (v !== null && typeof v === "object" && #s in v ? v.#s : undefined); }
    get type() { return this.#s.type; }
    get target() { return this.#s.target; }
    get srcElement() { return this.#s.target; }
    get currentTarget() { return this.#s.currentTarget; }
    composedPath() { return this.#s.dispatching ? [this.#s.currentTarget] : []; }
    get eventPhase() { return this.#s.phase; }
    stopPropagation() { this.#s.stop = true; }
    get cancelBubble() { return this.#s.stop; }
    set cancelBubble(v) { if (v) this.#s.stop = true; }
    stopImmediatePropagation() { this.#s.stop = this.#s.stopImmediate = true; }
    get bubbles() { return this.#s.bubbles; }
    get cancelable() { return this.#s.cancelable; }
    get returnValue() { return !this.#s.canceled; }
    set returnValue(v) { if (!v) cancel(this.#s); }
    preventDefault() { cancel(this.#s); }
    get defaultPrevented() { return this.#s.canceled; }
    get composed() { return this.#s.composed; }
    get timeStamp() { return this.#s.timeStamp; }
    initEvent(type, bubbles = false, cancelable = false) {
      const s = this.#s;
      needArgs(arguments.length, 1, "Event", "initEvent");
      initialize(s, str(type), !!bubbles, !!cancelable);
    }
  }
  function initialize(s, type, bubbles, cancelable) {
    if (s.dispatching) return;
    s.stop = s.stopImmediate = s.canceled = s.trusted = false;
    s.target = null;
    s.type = type;
    s.bubbles = bubbles;
    s.cancelable = cancelable;
  }
  finish(Event, "Event");
  constants(Event, ["NONE", "CAPTURING_PHASE", "AT_TARGET", "BUBBLING_PHASE"], 0);

  // ---------- EventTarget ----------
  let targetState; // (v) => the target's internal record, or undefined
  // Installed once by abort.js: what this file needs to know about AbortSignal.
  let signalHooks = null;
  function changed(target, type) {
    if (signalHooks !== null) signalHooks.changed(target, type);
  }
  const listOf = (ts, type) => (ts.lists === null ? undefined : MapPrototypeGet(ts.lists, type));
  function find(ts, type, callback, capture) {
    const list = listOf(ts, type);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      if (list[i].callback === callback && list[i].capture === capture) return list[i];
    }
    return undefined;
  }
  const newRecord = (type, callback, capture, passive, once) =>
    ({ __proto__: null, type, callback, capture, passive, once, removed: false, signal: null, token: undefined });
  function addRecord(ts, target, rec) {
    if (ts.count >= MAX_LISTENERS) {
      throw new RangeError(`EventTarget: too many event listeners (at most ${MAX_LISTENERS} per target)`);
    }
    if (ts.lists === null) ts.lists = new Map();
    let list = MapPrototypeGet(ts.lists, rec.type);
    if (list === undefined) MapPrototypeSet(ts.lists, rec.type, (list = newArray()));
    append(list, rec);
    ts.count++;
    changed(target, rec.type);
  }
  function removeRecord(ts, target, rec) {
    if (rec.removed) return;
    rec.removed = true;
    const list = listOf(ts, rec.type);
    if (list !== undefined) {
      let j = 0;
      for (let i = 0; i < list.length; i++) if (list[i] !== rec) list[j++] = list[i];
      if (j < list.length) ts.count--;
      list.length = j;
      if (j === 0) MapPrototypeDelete(ts.lists, rec.type);
    }
    const token = rec.token;
    rec.token = undefined;
    if (token !== undefined) signalHooks.remove(rec.signal, token);
    changed(target, rec.type);
  }
  function checkCallback(callback, op) {
    if (callback !== undefined && callback !== null && !isObject(callback)) {
      throw new TypeError(`${failed("EventTarget", op)}: parameter 2 is not of type 'EventListener'.`);
    }
  }
  function callListener(callback, thisArg, event) {
    if (typeof callback === "function") return ReflectApply(callback, thisArg, [event]);
    const handleEvent = callback.handleEvent;
    if (typeof handleEvent !== "function") throw new TypeError("The event listener object has no callable 'handleEvent' method");
    return ReflectApply(handleEvent, callback, [event]);
  }
  // "Inner invoke" for one phase at the path's only entry, the target.
  function invoke(target, ts, s, event, capture) {
    const list = listOf(ts, s.type);
    if (list === undefined) return;
    const copy = newArray();
    for (let i = 0; i < list.length; i++) append(copy, list[i]);
    for (let i = 0; i < copy.length; i++) {
      const rec = copy[i];
      if (rec.removed || rec.capture !== capture) continue;
      if (rec.once) removeRecord(ts, target, rec);
      if (rec.passive) s.inPassive = true;
      try { callListener(rec.callback, target, event); } catch (e) { report(e); }
      s.inPassive = false;
      if (s.stopImmediate) return;
    }
  }
  function dispatch(target, ts, s, event) {
    s.dispatching = true;
    s.target = s.currentTarget = target;
    s.phase = AT_TARGET;
    try {
      if (!s.stop) invoke(target, ts, s, event, true);
      if (!s.stop) invoke(target, ts, s, event, false);
    } finally {
      s.phase = NONE;
      s.currentTarget = null;
      s.dispatching = s.stop = s.stopImmediate = false;
    }
    return !s.canceled;
  }
  function own(v) {
    const ts = targetState(v);
    if (ts !== undefined) return ts;
    throw illegal();
  }
  class EventTarget {
    #t = { __proto__: null, lists: null, count: 0, handlers: null };
    static { targetState = (v) => (v !== null && typeof v === "object" && #t in v ? v.#t : undefined); }
    addEventListener(type, callback, options = undefined) {
      const ts = own(this);
      needArgs(arguments.length, 2, "EventTarget", "addEventListener");
      const t = str(type);
      checkCallback(callback, "addEventListener");
      let capture, once = false, passive = false, signal = null;
      if (isObject(options)) {
        capture = !!options.capture;
        once = !!options.once;
        passive = !!options.passive;
        const sig = options.signal;
        if (sig !== undefined && (signalHooks === null || !signalHooks.isSignal(sig))) {
          throw new TypeError(`${failed("EventTarget", "addEventListener")}: member signal is not of type 'AbortSignal'.`);
        }
        if (sig !== undefined) signal = sig;
      } else capture = !!options;
      if (signal !== null && signalHooks.aborted(signal)) return;
      if (callback === undefined || callback === null || find(ts, t, callback, capture) !== undefined) return;
      const rec = newRecord(t, callback, capture, passive, once);
      addRecord(ts, this, rec);
      if (signal !== null) {
        const target = this;
        rec.signal = signal;
        rec.token = signalHooks.add(signal, () => removeRecord(ts, target, rec));
      }
    }
    removeEventListener(type, callback, options = undefined) {
      const ts = own(this);
      needArgs(arguments.length, 2, "EventTarget", "removeEventListener");
      const t = str(type);
      checkCallback(callback, "removeEventListener");
      const capture = isObject(options) ? !!options.capture : !!options;
      if (callback === undefined || callback === null) return;
      const rec = find(ts, t, callback, capture);
      if (rec !== undefined) removeRecord(ts, this, rec);
    }
    dispatchEvent(event) {
      const ts = own(this);
      needArgs(arguments.length, 1, "EventTarget", "dispatchEvent");
      const s = eventState(event);
      if (s === undefined) throw new TypeError(`${failed("EventTarget", "dispatchEvent")}: parameter 1 is not of type 'Event'.`);
      const busy = "The event is already being dispatched.";
      if (s.dispatching) throw new DOMException(`${failed("EventTarget", "dispatchEvent")}: ${busy}`, "InvalidStateError");
      s.trusted = false;
      return dispatch(this, ts, s, event);
    }
  }
  finish(EventTarget, "EventTarget");

  // Internal: "fire an event" (isTrusted true), never through the patchable
  // dispatchEvent. Returns false if the event was canceled.
  function fire(target, event) {
    const ts = targetState(target);
    const s = eventState(event);
    if (ts === undefined || s === undefined || s.dispatching) throw new TypeError("fire: needs an EventTarget and an idle Event");
    s.trusted = true;
    return dispatch(target, ts, s, event);
  }
  function hasListeners(target, type) {
    const ts = targetState(target);
    const list = ts === undefined ? undefined : listOf(ts, type);
    return list !== undefined && list.length > 0;
  }
  // Internal: an `on<type>` event handler IDL attribute on proto (HTML
  // "event handlers"). Its listener is added when first set to an object and
  // keeps its place in the list until set to a non-object again.
  function defineEventHandler(proto, type) {
    ObjectDefineProperty(proto, `on${type}`, {
      __proto__: null,
      enumerable: true,
      configurable: true,
      get() {
        const ts = own(this);
        const h = ts.handlers === null ? undefined : MapPrototypeGet(ts.handlers, type);
        return h === undefined ? null : h.value;
      },
      set(value) {
        const ts = own(this);
        const h = ts.handlers === null ? undefined : MapPrototypeGet(ts.handlers, type);
        if (!isObject(value)) {
          if (h !== undefined) {
            MapPrototypeDelete(ts.handlers, type);
            removeRecord(ts, this, h.rec);
          }
        } else if (h !== undefined) {
          h.value = value;
        } else {
          const handler = { __proto__: null, value, rec: null };
          // Called with this = currentTarget; a non-callable object does nothing.
          const run = function (event) {
            const f = handler.value;
            if (typeof f !== "function") return;
            const s = eventState(event);
            if (ReflectApply(f, this, [event]) === false && s !== undefined) cancel(s);
          };
          handler.rec = newRecord(type, run, false, false, false);
          addRecord(ts, this, handler.rec);
          if (ts.handlers === null) ts.handlers = new Map();
          MapPrototypeSet(ts.handlers, type, handler);
        }
      },
    });
  }
  function setSignalHooks(hooks) {
    if (signalHooks !== null) throw new TypeError("events: signal hooks are already installed");
    signalHooks = hooks;
  }

  // ---------- CustomEvent and HTML events ----------
  // Init dictionary members are read after EventInit's, in WebIDL
  // (lexicographic) order.
  const initOf = (d) => (d === undefined || d === null ? null : d);
  class CustomEvent extends Event {
    #detail;
    constructor(type, eventInitDict = undefined) {
      needArgs(arguments.length, 1, "CustomEvent");
      super(type, eventInitDict);
      const d = initOf(eventInitDict);
      const detail = d === null ? undefined : d.detail;
      this.#detail = detail === undefined ? null : detail;
    }
    get detail() { return this.#detail; }
    initCustomEvent(type, bubbles = false, cancelable = false, detail = null) {
      const s = eventState(this);
      if (s === undefined) throw illegal();
      needArgs(arguments.length, 1, "CustomEvent", "initCustomEvent");
      const t = str(type);
      if (s.dispatching) return;
      initialize(s, t, !!bubbles, !!cancelable);
      this.#detail = detail;
    }
  }
  finish(CustomEvent, "CustomEvent");

  // Events whose init dictionary only sets readonly attributes: members is a
  // flat list of [name, convert(value, iface)] pairs in lexicographic order.
  function initEventClass(name, required, members) {
    let record;
    const C = class extends Event {
      #m;
      constructor(type, eventInitDict = undefined) {
        needArgs(arguments.length, required, name);
        super(type, eventInitDict);
        const d = initOf(eventInitDict);
        const m = { __proto__: null };
        for (let i = 0; i < members.length; i += 2) {
          m[members[i]] = members[i + 1](d === null ? undefined : d[members[i]], name);
        }
        this.#m = m;
      }
      static { record = (v) => v.#m; }
    };
    ObjectDefineProperty(C, "name", { __proto__: null, value: name, configurable: true });
    ObjectDefineProperty(C, "length", { __proto__: null, value: required, configurable: true });
    for (let i = 0; i < members.length; i += 2) {
      const key = members[i];
      ObjectDefineProperty(C.prototype, key, { __proto__: null, configurable: true, get() { return record(this)[key]; } });
    }
    finish(C, name);
    return C;
  }
  const any = (v) => v;
  const orNull = (v) => (v === undefined ? null : v);
  const ErrorEvent = initEventClass("ErrorEvent", 1,
    ["colno", uint32, "error", any, "filename", optStr, "lineno", uint32, "message", optStr]);
  const PromiseRejectionEvent = initEventClass("PromiseRejectionEvent", 2, ["promise", (v, iface) => {
    if (v === undefined) throw new TypeError(`${failed(iface)}: required member promise is undefined.`);
    if (!isObject(v)) throw new TypeError(`${failed(iface)}: member promise is not an object.`);
    return v;
  }, "reason", any]);
  const MessageEvent = initEventClass("MessageEvent", 1, ["data", orNull, "lastEventId", optStr, "origin", optStr,
    "ports", (v, iface) => {
      if (v !== undefined && !(ArrayIsArray(v) && v.length === 0)) {
        throw new TypeError(`${failed(iface)}: member ports must be empty (isola cannot transfer MessagePorts).`);
      }
      return ObjectFreeze(newArray());
    },
    "source", (v, iface) => {
      if (v !== undefined && v !== null) throw new TypeError(`${failed(iface)}: member source is not of type 'MessageEventSource'.`);
      return null;
    }]);

  web.DOMException = DOMException;
  web.Event = Event;
  web.EventTarget = EventTarget;
  web.CustomEvent = CustomEvent;
  web.ErrorEvent = ErrorEvent;
  web.PromiseRejectionEvent = PromiseRejectionEvent;
  web.MessageEvent = MessageEvent;
  // Internal, for other area files only; never a global.
  web.__events = ObjectFreeze({
    __proto__: null,
    fire, // (target, event) -> !canceled; isTrusted true
    hasListeners, // (target, type) -> boolean
    defineEventHandler, // (proto, "abort") defines proto.onabort
    setSignalHooks, // once, by abort.js
    isEvent: (v) => eventState(v) !== undefined,
    isTarget: (v) => targetState(v) !== undefined,
    report,
    finish,
    needArgs,
    str,
  });
});
