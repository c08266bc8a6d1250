// Small globals of the HTML and HR Time standards: atob and btoa (forgiving
// base64, native via ops.atob / ops.btoa), structuredClone (V8's serializer,
// via ops.structuredClone, runtime/ops_clone.rs: the runtime's own objects
// are refused, except Blob and File, copied by the cloners lazy areas add
// with web.__addHostCloner), navigator.userAgent, and performance (now,
// timeOrigin).
//
// Evaluated once in the snapshot creator, called as (ops, P, web) after
// events.js (DOMException). Built-ins are captured below.
//
// Divergences: structuredClone has no transfer list (a non-empty one is a
// DataCloneError) and refuses values larger than 64 MiB serialized;
// performance.now() has a resolution of 1 ms (it is built on
// Date.now(), coarse on purpose: finer clocks help timing attacks across
// tenants); its origin is the first reading in the isolate, not the start of
// the isolate. There is no performance timeline (mark, measure, entries).
(function globals(ops, P, web) {
  "use strict";
  const { DateNow, ObjectDefineProperty, ObjectPrototypeHasOwnProperty, String, TypeError } = P;
  const DOMException = web.DOMException;
  const SymbolToStringTag = Symbol.toStringTag;
  const kCreate = { __proto__: null };

  const required = (n, have, what) => {
    if (have < n) throw new TypeError(`Failed to execute '${what}': ${n} argument required, but only ${have} present.`);
  };

  web.atob = function atob(data) {
    required(1, arguments.length, "atob");
    const r = ops.atob(String(data));
    if (r === null) throw new DOMException("Failed to execute 'atob': The string to be decoded is not correctly encoded.", "InvalidCharacterError");
    return r;
  };
  web.btoa = function btoa(data) {
    required(1, arguments.length, "btoa");
    const r = ops.btoa(String(data));
    if (r === null) throw new DOMException("Failed to execute 'btoa': The string to be encoded contains characters outside of the Latin1 range.", "InvalidCharacterError");
    return r;
  };

  // The runtime's own classes, which V8 would copy as empty objects: the
  // bootstrap adds its checks (Headers, Request, Response, ReadableStream).
  const platformChecks = [];
  web.__addPlatformCheck = (f) => {
    P.append(platformChecks, f); // not an index store: Array.prototype may have setters
  };
  // Serializable platform objects (Blob, File: added by the blob area when
  // it loads): a cloner returns the copy of an object it knows, or undefined.
  const hostCloners = [];
  web.__addHostCloner = (f) => {
    hostCloners[hostCloners.length] = f;
  };
  const cloneHost = (v) => {
    for (let i = 0; i < hostCloners.length; i++) {
      const copy = hostCloners[i](v);
      if (copy !== undefined) return copy;
    }
    return undefined;
  };
  const isPlatform = (v) => {
    for (let i = 0; i < platformChecks.length; i++) if (platformChecks[i](v)) return true;
    return false;
  };
  web.structuredClone = function structuredClone(value, options = undefined) {
    required(1, arguments.length, "structuredClone");
    if (options !== undefined && options !== null) {
      const transfer = options.transfer;
      if (transfer !== undefined && transfer !== null && transfer.length > 0) {
        throw new DOMException("Failed to execute 'structuredClone': transferring is not supported in isola.", "DataCloneError");
      }
    }
    try {
      return ops.structuredClone(value, isPlatform, cloneHost);
    } catch (e) {
      if (e !== null && typeof e === "object" && !(e instanceof DOMException) && ObjectPrototypeHasOwnProperty(e, "name") && e.name === "DataCloneError") {
        throw new DOMException(`Failed to execute 'structuredClone': ${e.message}`, "DataCloneError");
      }
      throw e;
    }
  };

  class Navigator {
    constructor(key = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
    }
    get userAgent() {
      return "isola";
    }
  }
  ObjectDefineProperty(Navigator.prototype, SymbolToStringTag, { __proto__: null, value: "Navigator", configurable: true });

  let origin = -1;
  const now = () => {
    const t = DateNow();
    if (origin < 0) origin = t;
    return t - origin;
  };
  class Performance {
    constructor(key = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
    }
    now() {
      return now();
    }
    get timeOrigin() {
      now();
      return origin;
    }
    toJSON() {
      return { timeOrigin: this.timeOrigin };
    }
  }
  ObjectDefineProperty(Performance.prototype, SymbolToStringTag, { __proto__: null, value: "Performance", configurable: true });

  web.Navigator = Navigator;
  web.navigator = new Navigator(kCreate);
  web.Performance = Performance;
  web.performance = new Performance(kCreate);
});
