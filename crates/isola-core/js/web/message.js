// MessageChannel and MessagePort (WHATWG HTML Standard, "Channel
// messaging"): two entangled ports; postMessage(message, transfer or
// options) clones the message with the runtime's structuredClone at once
// and queues it on the other port; a started port (start(), or setting
// onmessage) receives each message as a `message` MessageEvent in its own
// task, after the current microtasks; close() disentangles both ports and
// drops what is still queued.
//
// Delivery: the ports with messages to deliver wait in one FIFO; one
// runtime timer of 0 ms (web.__timers.startInternal, which the tenant's
// clearTimeout cannot cancel) is pending while the FIFO is not empty, and
// each firing delivers one message, then a microtask checkpoint runs (the
// event loop in runtime/mod.rs). That timer keeps an invocation waiting for
// messages alive, within the existing wall-time and CPU limits, like any
// timer; ports with nothing to deliver keep nothing alive.
//
// A lazy area (snapshot.rs LAZY_SOURCES): called as (ops, P, web) on the
// first use of MessageChannel or MessagePort, after tenant code ran, so every
// built-in comes from the primordials and nothing here calls a method a
// tenant can patch.
//
// Divergences: a port holds at most 10000 undelivered messages (the
// postMessage past that throws a QuotaExceededError DOMException); a
// MessagePort cannot be transferred (in the transfer list: DataCloneError)
// nor cloned, so MessageEvent.ports is always empty; ArrayBuffers in the
// transfer list are copied into the message and then detached in the
// sender (observably a transfer, done as a copy); there are no `close`
// events, no `messageerror` is ever fired (the clone is made in the same
// realm, so it cannot fail on the receiving side), and an unstarted port's
// messages do not keep an invocation alive.
(function message(ops, P, web) {
  "use strict";
  const { DateNow, ObjectDefineProperty, ReflectApply, TypeError, append, newArray, sequence } = P;
  const I = P.intrinsic;
  const SymbolToStringTag = I("Symbol.toStringTag");
  const SymbolIterator = I("Symbol.iterator");
  const ReflectGetOwnPropertyDescriptor = I("Reflect.getOwnPropertyDescriptor");
  const ArrayBufferPrototypeTransfer = I("ArrayBuffer.prototype.transfer");
  const ArrayBufferPrototypeGetDetached = I("get ArrayBuffer.prototype.detached");
  const { DOMException, EventTarget, MessageEvent } = web;
  const events = web.__events;
  const timers = web.__timers;
  const structuredClone = web.structuredClone;

  // Most undelivered messages one port may hold.
  const MAX_QUEUED = 10000;
  const kCreate = { __proto__: null };
  const isObject = (v) => v !== null && (typeof v === "object" || typeof v === "function");
  const isArrayBuffer = (v) => {
    try {
      P.ArrayBufferPrototypeGetByteLength(v);
      return true;
    } catch {
      return false;
    }
  };

  // ---------- delivery ----------
  // Ports with messages to deliver, oldest first (each at most once).
  let ready = newArray();
  let readyHead = 0;
  let scheduled = false;
  let port; // internal operations on a MessagePort, set in its static block
  let scheduledAt = 0;
  function schedule() {
    // A runtime that stopped an invocation (a CPU or wall kill) drops its
    // pending timers: a delivery timer not seen for a second is taken as
    // lost and started again (a duplicate only finds nothing to deliver).
    if (scheduled && DateNow() - scheduledAt < 1000) return;
    timers.startInternal(deliverOne, 0); // throws past the tenant's timer cap
    scheduled = true;
    scheduledAt = DateNow();
  }
  function markReady(p) {
    if (port.isReady(p)) return;
    port.setReady(p, true);
    append(ready, p);
    schedule();
  }
  // One task: the next ready port gets its oldest message.
  function deliverOne() {
    scheduled = false;
    let target;
    while (readyHead < ready.length && target === undefined) {
      const p = ready[readyHead];
      ready[readyHead++] = undefined;
      port.setReady(p, false);
      if (port.pending(p)) target = p;
    }
    if (readyHead === ready.length) {
      ready = newArray();
      readyHead = 0;
    }
    if (target === undefined) return;
    const data = port.shift(target);
    if (port.pending(target)) markReady(target);
    else if (readyHead < ready.length) schedule();
    events.fire(target, new MessageEvent("message", { __proto__: null, data }));
  }

  // postMessage's second argument: a sequence<object> (the transfer list) or
  // a StructuredSerializeOptions dictionary.
  function transferList(arg, hasArg) {
    if (!hasArg || arg === undefined || arg === null) return newArray();
    if (!isObject(arg)) throw new TypeError("Failed to execute 'postMessage' on 'MessagePort': The provided value is not of type 'StructuredSerializeOptions'.");
    if (arg[SymbolIterator] !== undefined) return sequence(arg, "Failed to execute 'postMessage' on 'MessagePort'");
    const t = arg.transfer;
    return t === undefined ? newArray() : sequence(t, "Failed to execute 'postMessage' on 'MessagePort'");
  }
  const cloneError = (msg) => new DOMException(`Failed to execute 'postMessage' on 'MessagePort': ${msg}`, "DataCloneError");

  let isPort;
  let startPort;
  class MessagePort extends EventTarget {
    #peer = null;
    #queue = newArray();
    #head = 0;
    #enabled = false;
    #closed = false;
    #ready = false;
    constructor(key = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
      super();
    }
    postMessage(message, options = undefined) {
      if (!(#peer in this)) throw new TypeError("Illegal invocation");
      if (arguments.length < 1) throw new TypeError("Failed to execute 'postMessage' on 'MessagePort': 1 argument required, but only 0 present.");
      const transfer = transferList(options, arguments.length > 1);
      for (let i = 0; i < transfer.length; i++) {
        const t = transfer[i];
        if (!isObject(t)) throw new TypeError("Failed to execute 'postMessage' on 'MessagePort': a transfer list item is not an object.");
        if (isPort(t)) throw cloneError("transferring a MessagePort is not supported in isola.");
        if (!isArrayBuffer(t)) throw cloneError("only ArrayBuffers can be transferred.");
        if (ArrayBufferPrototypeGetDetached(t)) throw cloneError("an ArrayBuffer in the transfer list is detached.");
        for (let j = 0; j < i; j++) if (transfer[j] === t) throw cloneError("an ArrayBuffer is listed twice in the transfer list.");
      }
      const clone = structuredClone(message);
      for (let i = 0; i < transfer.length; i++) ArrayBufferPrototypeTransfer(transfer[i], 0);
      const peer = this.#peer;
      if (peer === null || peer.#closed) return;
      if (peer.#queue.length - peer.#head >= MAX_QUEUED) {
        throw new DOMException(
          `Failed to execute 'postMessage' on 'MessagePort': the receiving port already holds ${MAX_QUEUED} undelivered messages.`,
          "QuotaExceededError",
        );
      }
      append(peer.#queue, clone);
      if (peer.#enabled) markReady(peer);
    }
    start() {
      if (!(#peer in this)) throw new TypeError("Illegal invocation");
      startPort(this);
    }
    close() {
      if (!(#peer in this)) throw new TypeError("Illegal invocation");
      this.#closed = true;
      this.#queue = newArray();
      this.#head = 0;
      const peer = this.#peer;
      this.#peer = null;
      if (peer !== null) peer.#peer = null;
    }
    static {
      isPort = (v) => isObject(v) && #peer in v;
      port = {
        __proto__: null,
        isReady: (p) => p.#ready,
        setReady: (p, v) => {
          p.#ready = v;
        },
        pending: (p) => !p.#closed && p.#enabled && p.#queue.length > p.#head,
        shift: (p) => {
          const v = p.#queue[p.#head];
          p.#queue[p.#head++] = undefined;
          if (p.#head === p.#queue.length) {
            p.#queue = newArray();
            p.#head = 0;
          }
          return v;
        },
        entangle: (a, b) => {
          a.#peer = b;
          b.#peer = a;
        },
      };
      startPort = (p) => {
        if (p.#closed || p.#enabled) return;
        p.#enabled = true;
        if (p.#queue.length > p.#head) markReady(p);
      };
    }
  }
  const proto = MessagePort.prototype;
  events.defineEventHandler(proto, "message");
  events.defineEventHandler(proto, "messageerror");
  // Setting onmessage starts the port (HTML: "as if start() had been called").
  const onmessage = ReflectGetOwnPropertyDescriptor(proto, "onmessage");
  const setHandler = onmessage.set;
  ObjectDefineProperty(proto, "onmessage", {
    __proto__: null,
    enumerable: true,
    configurable: true,
    get: onmessage.get,
    set: function onmessage(v) {
      ReflectApply(setHandler, this, [v]);
      if (isPort(this)) startPort(this);
    },
  });
  ObjectDefineProperty(proto, SymbolToStringTag, { __proto__: null, value: "MessagePort", configurable: true });

  let isChannel;
  class MessageChannel {
    #port1;
    #port2;
    constructor() {
      this.#port1 = new MessagePort(kCreate);
      this.#port2 = new MessagePort(kCreate);
      port.entangle(this.#port1, this.#port2);
    }
    get port1() {
      return this.#port1;
    }
    get port2() {
      return this.#port2;
    }
    static {
      isChannel = (v) => isObject(v) && #port1 in v;
    }
  }
  ObjectDefineProperty(MessageChannel.prototype, SymbolToStringTag, { __proto__: null, value: "MessageChannel", configurable: true });

  web.__addPlatformCheck(isPort);
  web.__addPlatformCheck(isChannel);
  web.MessagePort = MessagePort;
  web.MessageChannel = MessageChannel;
});
