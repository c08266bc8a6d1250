// web/wasm.js: WebAssembly for the tenants whose settings enable it
// (`"webassembly": true`; off by default). A lazy area with no globals: the
// runtime calls web.__wasm.install(namespace) with V8's own WebAssembly
// namespace (removed from every context at creation) and defines the result
// as the global `WebAssembly`.
//
// V8 allocates wasm memories outside the tenant's counted ArrayBuffer
// allocator and compiled code outside its heap, so this layer charges them
// to the tenant's ArrayBuffer budget (runtime/ops_wasm.rs), up front:
// - a module's compiled code, at 4 bytes per byte of module, while the
//   module object lives (every instance keeps it alive);
// - each memory a module defines, at its declared maximum (V8 never grows a
//   memory past it), while its exported WebAssembly.Memory lives (the
//   instance, its functions and tables keep that object alive); a memory
//   with no maximum, not exported, shared or 64-bit is refused with a
//   CompileError; an instantiation that fails keeps its charge for the
//   isolate's life (V8 may have made memories a table still reaches);
// - each WebAssembly.Memory, at its maximum, which is required;
// - at most 64 memories alive per tenant.
// Only the standard names are installed (not the promise integration,
// JSPI, which V8 runs with switched off too: its suspended stacks are
// native memory nothing counts).
// A charge that does not fit is a RangeError naming the budget. Charges are
// released when the objects are collected (a FinalizationRegistry; the
// event loop runs V8's cleanup tasks).
//
// Compilation is synchronous on the isolate's thread even behind
// WebAssembly.compile and instantiate (a promise of it), so it counts in the
// tenant's CPU time; V8's later optimising tier-up runs on its background
// threads, like TurboFan for JavaScript. Every constructor's
// `prototype.constructor` is the wrapper, so no path reaches V8's own
// constructors. compileStreaming and instantiateStreaming read the
// Response's bytes first.
(function wasm(ops, P, web) {
  "use strict";
  const I = P.intrinsic;
  const { ObjectDefineProperty, Promise, PromiseReject, RangeError, ReflectApply, ReflectConstruct, TypeError } = P;
  const { Uint8Array, TypedArrayPrototypeGetByteLength, TypedArrayPrototypeSet, toBytes } = P;
  const ObjectCreate = I("Object.create");
  const ObjectGetOwnPropertyNames = I("Object.getOwnPropertyNames");
  const ReflectGetOwnPropertyDescriptor = I("Reflect.getOwnPropertyDescriptor");
  const WeakMapCtor = I("WeakMap");
  const WeakMapGet = I("WeakMap.prototype.get");
  const WeakMapSet = I("WeakMap.prototype.set");
  const FinalizationRegistryCtor = I("FinalizationRegistry");
  const FinalizationRegistryRegister = I("FinalizationRegistry.prototype.register");
  const settle = P.settle;
  const NumberCtor = I("Number");
  const MathTrunc = I("Math.trunc");
  const NumberIsFinite = I("Number.isFinite");
  const PAGE = 65536;

  // Charges come back when their object is collected.
  const registry = new FinalizationRegistryCtor((held) => ops.wasmRelease(held[0], held[1]));
  const reserve = (bytes, memories, what) => {
    if (!ops.wasmReserve(bytes, memories)) {
      throw new RangeError(
        `WebAssembly: ${what} needs ${bytes} bytes of the tenant's ArrayBuffer memory (external_memory_bytes), which do not fit` +
          (memories > 0 ? ", or the tenant has 64 wasm memories alive" : ""),
      );
    }
  };
  // Runs make() with the charge made; the charge stays with what it made
  // (released when that is collected), or is returned at once if it threw.
  const charged = (bytes, memories, what, make) => {
    reserve(bytes, memories, what);
    let made;
    try {
      made = make();
    } catch (e) {
      ops.wasmRelease(bytes, memories);
      throw e;
    }
    FinalizationRegistryRegister(registry, made, [bytes, memories]);
    return made;
  };
  // A private copy of a BufferSource (the tenant cannot change it between
  // the inspection and the compilation).
  const copyOf = (source, what) => {
    const view = toBytes(source);
    if (view === undefined) throw new TypeError(`${what}: Argument 0 must be a buffer source`);
    const out = new Uint8Array(TypedArrayPrototypeGetByteLength(view));
    TypedArrayPrototypeSet(out, view);
    return out;
  };

  function install(ns) {
    const V8Module = ns.Module;
    const V8Instance = ns.Instance;
    const V8Memory = ns.Memory;
    const CompileError = ns.CompileError;
    // Captured now, before any tenant code runs in this context.
    const exportsOf = P.uncurryThis(ReflectGetOwnPropertyDescriptor(V8Instance.prototype, "exports").get);
    // Per module: what one instance's own memories cost.
    const instanceCost = new WeakMapCtor();

    const compile = (bytes, newTarget) => {
      let cost;
      try {
        cost = ops.wasmInspect(bytes);
      } catch (e) {
        throw new CompileError(e.message);
      }
      // Charged before V8 compiles; released with the module object.
      const module = charged(cost[0], 0, "a module's compiled code", () => ReflectConstruct(V8Module, [bytes], newTarget));
      WeakMapSet(instanceCost, module, cost[1]);
      return module;
    };
    const instantiateModule = (module, imports, newTarget) => {
      const memories = WeakMapGet(instanceCost, module);
      if (memories === undefined) throw new TypeError("WebAssembly.Instance: Argument 0 must be a WebAssembly.Module");
      if (memories.length === 0) return ReflectConstruct(V8Instance, [module, imports], newTarget);
      let total = 0;
      for (let i = 0; i < memories.length; i++) total += memories[i][1];
      reserve(total, memories.length, "an instance's memories");
      // A failed instantiation keeps its charge (see the header).
      const instance = ReflectConstruct(V8Instance, [module, imports], newTarget);
      const exports = exportsOf(instance);
      for (let i = 0; i < memories.length; i++) {
        FinalizationRegistryRegister(registry, exports[memories[i][0]], [memories[i][1], 1]);
      }
      return instance;
    };

    const Module = function Module(bytes) {
      if (new.target === undefined) throw new TypeError("WebAssembly.Module must be invoked with 'new'");
      return compile(copyOf(bytes, "WebAssembly.Module"), new.target);
    };
    const Instance = function Instance(module, importObject = undefined) {
      if (new.target === undefined) throw new TypeError("WebAssembly.Instance must be invoked with 'new'");
      return instantiateModule(module, importObject, new.target);
    };
    const Memory = function Memory(descriptor) {
      if (new.target === undefined) throw new TypeError("WebAssembly.Memory must be invoked with 'new'");
      if (descriptor === null || typeof descriptor !== "object") throw new TypeError("WebAssembly.Memory: Argument 0 must be a memory descriptor");
      // Each member read once, then a plain descriptor of our own goes to V8.
      const initial = descriptor.initial;
      const maximum = descriptor.maximum;
      const shared = descriptor.shared;
      const address = descriptor.address === undefined ? descriptor.index : descriptor.address;
      if (shared) throw new TypeError("WebAssembly.Memory: shared memories are not available (they could not be counted)");
      if (address !== undefined && address !== "i32") throw new TypeError("WebAssembly.Memory: 64-bit memories are not available");
      if (maximum === undefined) {
        throw new TypeError("WebAssembly.Memory: a maximum is required: the memory is counted in the tenant's ArrayBuffer budget at its maximum");
      }
      const max = MathTrunc(NumberCtor(maximum));
      const min = MathTrunc(NumberCtor(initial));
      if (!NumberIsFinite(max) || !NumberIsFinite(min) || max < 0 || min < 0 || min > max || max > 65536) {
        throw new RangeError("WebAssembly.Memory: initial and maximum must be page counts with initial <= maximum <= 65536");
      }
      const target = new.target;
      return charged(max * PAGE, 1, `a WebAssembly.Memory of at most ${max} pages`, () =>
        ReflectConstruct(V8Memory, [{ __proto__: null, initial: min, maximum: max }], target),
      );
    };
    const pairs = [
      [Module, V8Module],
      [Instance, V8Instance],
      [Memory, V8Memory],
    ];
    for (let i = 0; i < pairs.length; i++) {
      const wrapper = pairs[i][0];
      const original = pairs[i][1];
      // Same prototype (instanceof and the methods work), and the prototype's
      // constructor is the wrapper: V8's constructor stays unreachable.
      ObjectDefineProperty(wrapper, "prototype", { __proto__: null, value: original.prototype, writable: false, enumerable: false, configurable: false });
      ObjectDefineProperty(original.prototype, "constructor", { __proto__: null, value: wrapper, writable: true, enumerable: false, configurable: true });
      const statics = ObjectGetOwnPropertyNames(original);
      for (let j = 0; j < statics.length; j++) {
        const name = statics[j];
        if (name === "prototype" || name === "length" || name === "name") continue;
        const d = ReflectGetOwnPropertyDescriptor(original, name);
        ObjectDefineProperty(wrapper, name, d);
      }
    }

    const out = ObjectCreate(I("Object.prototype"));
    const names = ["Module", "Instance", "Memory", "Table", "Global", "Tag", "Exception", "JSTag",
      "CompileError", "LinkError", "RuntimeError", "compile", "instantiate", "validate", "compileStreaming", "instantiateStreaming"];
    for (let i = 0; i < names.length; i++) {
      const d = ReflectGetOwnPropertyDescriptor(ns, names[i]);
      if (d !== undefined) ObjectDefineProperty(out, names[i], d);
    }
    const method = (name, fn) =>
      ObjectDefineProperty(out, name, { __proto__: null, value: fn, writable: true, enumerable: false, configurable: true });
    method("Module", Module);
    method("Instance", Instance);
    method("Memory", Memory);
    const toModule = (source, what) => {
      const cost = source !== null && typeof source === "object" ? WeakMapGet(instanceCost, source) : undefined;
      return cost !== undefined ? source : compile(copyOf(source, what), V8Module);
    };
    // Promise-returning forms: the same synchronous work, settled as a promise.
    const later = (fn) =>
      new Promise((resolve, reject) => {
        try {
          resolve(fn());
        } catch (e) {
          reject(e);
        }
      });
    method("compile", function compile(bytes) {
      return later(() => toModule(bytes, "WebAssembly.compile"));
    });
    method("instantiate", function instantiate(source, importObject = undefined) {
      return later(() => {
        const isModule = source !== null && typeof source === "object" && WeakMapGet(instanceCost, source) !== undefined;
        const module = toModule(source, "WebAssembly.instantiate");
        const instance = instantiateModule(module, importObject, V8Instance);
        return isModule ? instance : { module, instance };
      });
    });
    method("validate", function validate(bytes) {
      return ReflectApply(ns.validate, ns, [copyOf(bytes, "WebAssembly.validate")]);
    });
    const bytesOfResponse = (source) => settle(source, (response) => web.__http.wasmBytes(response), (e) => PromiseReject(e));
    method("compileStreaming", function compileStreaming(source) {
      return settle(bytesOfResponse(source), (bytes) => toModule(bytes, "WebAssembly.compileStreaming"), (e) => PromiseReject(e));
    });
    method("instantiateStreaming", function instantiateStreaming(source, importObject = undefined) {
      return settle(bytesOfResponse(source), (bytes) => {
        const module = toModule(bytes, "WebAssembly.instantiateStreaming");
        return { module, instance: instantiateModule(module, importObject, V8Instance) };
      }, (e) => PromiseReject(e));
    });
    ObjectDefineProperty(out, I("Symbol.toStringTag"), { __proto__: null, value: "WebAssembly", configurable: true });
    return out;
  }

  web.__wasm = P.ObjectFreeze({ __proto__: null, install });
});
