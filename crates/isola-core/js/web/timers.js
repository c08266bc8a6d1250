// Timers (HTML Standard, "Timers"): setTimeout, setInterval, clearTimeout,
// clearInterval, and web.__timers for other area files (AbortSignal.timeout).
// The pending timers live natively (ops.timerStart / timerClear, capped per
// tenant); the event loop calls web.__fireTimer(id) when one is due.
//
// Evaluated once in the snapshot creator, called as (ops, P, web) before the
// other area files. Built-ins are captured below; nothing here calls a method
// a tenant can patch.
//
// Divergences: no nesting clamp (4 ms after 5 levels); a delay is at most
// 2^31-1 ms.
(function timers(ops, P, web) {
  "use strict";
  const { Map, MapPrototypeDelete, MapPrototypeGet, MapPrototypeSet, MathMax, ReflectApply, TypeError, newArray } = P;

  const pending = new Map();
  let nextId = 1;
  function start(cb, ms, args, repeat, internal = false) {
    if (typeof cb !== "function") throw new TypeError("timer callback must be a function");
    const id = nextId++;
    const delay = MathMax(0, +ms || 0);
    // The op enforces the cap on pending timers (and throws past it) before
    // anything is remembered here.
    ops.timerStart(id, delay);
    MapPrototypeSet(pending, id, { __proto__: null, cb, args, repeat, delay, internal });
    return id;
  }
  function clear(id) {
    if (MapPrototypeDelete(pending, id)) ops.timerClear(id);
  }
  // clearTimeout/clearInterval: the runtime's own timers (startInternal)
  // are not the tenant's to clear.
  function clearByTenant(id) {
    const t = MapPrototypeGet(pending, id);
    if (t !== undefined && !t.internal) clear(id);
  }
  function fire(id) {
    const t = MapPrototypeGet(pending, id);
    if (!t) return;
    if (t.repeat) ops.timerStart(id, t.delay);
    else MapPrototypeDelete(pending, id);
    ReflectApply(t.cb, undefined, t.args);
  }

  web.setTimeout = function setTimeout(cb, ms = 0, ...args) {
    return start(cb, ms, args, false);
  };
  web.setInterval = function setInterval(cb, ms = 0, ...args) {
    return start(cb, ms, args, true);
  };
  web.clearTimeout = function clearTimeout(id = 0) {
    clearByTenant(id);
  };
  web.clearInterval = function clearInterval(id = 0) {
    clearByTenant(id);
  };
  web.__timers = {
    __proto__: null,
    start: (cb, ms) => start(cb, ms, newArray(), false),
    startInternal: (cb, ms) => start(cb, ms, newArray(), false, true),
    clear,
  };
  web.__fireTimer = fire;
});
