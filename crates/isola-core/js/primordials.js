// isola's primordials: the built-ins the runtime's own JavaScript uses,
// captured once, inside the snapshot creator, before any tenant code exists.
// Tenant code shares the realm and may replace `Array.prototype.push`,
// `Map.prototype.get`, `String.prototype.toLowerCase`, the array iterator and
// so on; the runtime never looks those up at call time. It calls the captured
// copies below, "uncurried" (`ArrayPrototypePush(arr, x)` instead of
// `arr.push(x)`) through bound natives, which a tenant cannot reach or patch.
//
// Rules for the bootstrap: no method calls on values a tenant can touch, no
// `for...of`, spread or destructuring over arrays, maps or tenant objects
// (they run the patchable iterator protocol); index loops and the captured
// functions instead. Objects that cross to Rust have a null prototype.
(function primordials() {
  "use strict";
  const { bind, call } = Function.prototype;
  // uncurryThis(fn)(self, ...args) === fn.call(self, ...args), with no
  // property lookups at call time.
  const uncurryThis = bind.bind(call);
  const Uint8ArrayCtor = Uint8Array;
  const P = { __proto__: null };
  P.FunctionPrototypeBind = uncurryThis(bind);

  P.ReflectApply = Reflect.apply;
  P.ReflectConstruct = Reflect.construct;

  P.ObjectDefineProperty = Object.defineProperty;
  P.ObjectFreeze = Object.freeze;
  P.ObjectKeys = Object.keys;
  P.ObjectPrototypeToString = uncurryThis(Object.prototype.toString);
  P.ObjectPrototypeHasOwnProperty = uncurryThis(Object.prototype.hasOwnProperty);

  P.ArrayIsArray = Array.isArray;
  P.ArrayPrototypeJoin = uncurryThis(Array.prototype.join);
  P.ArrayPrototypeSort = uncurryThis(Array.prototype.sort);
  P.ArrayPrototypeIndexOf = uncurryThis(Array.prototype.indexOf);

  P.NumberIsInteger = Number.isInteger;
  P.MathMax = Math.max;
  P.MathMin = Math.min;
  P.DateNow = Date.now;
  P.String = String;
  P.StringPrototypeToLowerCase = uncurryThis(String.prototype.toLowerCase);
  P.StringPrototypeToUpperCase = uncurryThis(String.prototype.toUpperCase);
  P.StringPrototypeTrim = uncurryThis(String.prototype.trim);
  P.StringPrototypeSlice = uncurryThis(String.prototype.slice);
  P.RegExpPrototypeExec = uncurryThis(RegExp.prototype.exec);
  P.JSONStringify = JSON.stringify;
  P.JSONParse = JSON.parse;

  P.Map = Map;
  P.MapPrototypeGet = uncurryThis(Map.prototype.get);
  P.MapPrototypeSet = uncurryThis(Map.prototype.set);
  P.MapPrototypeHas = uncurryThis(Map.prototype.has);
  P.MapPrototypeDelete = uncurryThis(Map.prototype.delete);
  P.MapPrototypeForEach = uncurryThis(Map.prototype.forEach);
  P.MapPrototypeGetSize = uncurryThis(Object.getOwnPropertyDescriptor(Map.prototype, "size").get);
  P.Set = Set;
  P.SetPrototypeGetSize = uncurryThis(Object.getOwnPropertyDescriptor(Set.prototype, "size").get);

  P.Promise = Promise;
  P.PromiseResolve = P.FunctionPrototypeBind(Promise.resolve, Promise);
  P.PromiseReject = P.FunctionPrototypeBind(Promise.reject, Promise);

  P.ArrayBufferIsView = ArrayBuffer.isView;
  const TypedArray = Object.getPrototypeOf(Uint8Array);
  P.TypedArrayPrototypeGetBuffer = uncurryThis(Object.getOwnPropertyDescriptor(TypedArray.prototype, "buffer").get);
  P.TypedArrayPrototypeGetByteOffset = uncurryThis(Object.getOwnPropertyDescriptor(TypedArray.prototype, "byteOffset").get);
  P.TypedArrayPrototypeGetByteLength = uncurryThis(Object.getOwnPropertyDescriptor(TypedArray.prototype, "byteLength").get);
  P.TypedArrayPrototypeGetLength = uncurryThis(Object.getOwnPropertyDescriptor(TypedArray.prototype, "length").get);
  P.TypedArrayPrototypeGetSymbolToStringTag = uncurryThis(
    Object.getOwnPropertyDescriptor(TypedArray.prototype, Symbol.toStringTag).get,
  );
  P.TypedArrayPrototypeSet = uncurryThis(TypedArray.prototype.set);
  P.DataViewPrototypeGetBuffer = uncurryThis(Object.getOwnPropertyDescriptor(DataView.prototype, "buffer").get);
  P.DataViewPrototypeGetByteOffset = uncurryThis(Object.getOwnPropertyDescriptor(DataView.prototype, "byteOffset").get);
  P.DataViewPrototypeGetByteLength = uncurryThis(Object.getOwnPropertyDescriptor(DataView.prototype, "byteLength").get);
  P.ArrayBufferPrototypeGetByteLength = uncurryThis(Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get);
  P.Uint8Array = Uint8Array;
  P.Error = Error;
  P.ErrorCaptureStackTrace = Error.captureStackTrace;
  P.TypeError = TypeError;
  P.RangeError = RangeError;
  P.SymbolIterator = Symbol.iterator;
  P.SymbolAsyncIterator = Symbol.asyncIterator;
  P.globalThis = globalThis;

  // An array built without Array.prototype lookups: own data properties only.
  P.newArray = () => [];
  P.append = (arr, v) => {
    P.ObjectDefineProperty(arr, arr.length, { __proto__: null, value: v, writable: true, enumerable: true, configurable: true });
  };
  // WebIDL's sequence<T> conversion, into a dense array built without
  // Array.prototype lookups: an array is read by index (its iterator may be
  // a tenant's), any other object through its own iterator, as the spec
  // says; anything else is a TypeError whose message starts with `where`.
  const TypeErrorCtor = TypeError;
  P.sequence = (v, where) => {
    const out = P.newArray();
    if (P.ArrayIsArray(v)) {
      for (let i = 0; i < v.length; i++) P.append(out, v[i]);
      return out;
    }
    const method = v !== null && (typeof v === "object" || typeof v === "function") ? v[P.SymbolIterator] : undefined;
    if (typeof method !== "function") throw new TypeErrorCtor(`${where}: The provided value cannot be converted to a sequence.`);
    const it = P.ReflectApply(method, v, []);
    if (it === null || (typeof it !== "object" && typeof it !== "function")) throw new TypeErrorCtor(`${where}: bad iterator.`);
    const next = it.next;
    for (;;) {
      const r = P.ReflectApply(next, it, []);
      if (r === null || (typeof r !== "object" && typeof r !== "function")) throw new TypeErrorCtor(`${where}: bad iterator result.`);
      if (r.done) return out;
      P.append(out, r.value);
    }
  };
  // ok(value) or fail(error) once `p` settles, returning what they return;
  // through await, not Promise.prototype.then (which a tenant may replace).
  P.settle = async (p, ok, fail) => {
    let v;
    try {
      v = await p;
    } catch (e) {
      return fail(e);
    }
    return ok(v);
  };
  // One new Uint8Array holding the Uint8Arrays of `list` one after another.
  P.concatBytes = (list) => {
    let n = 0;
    for (let i = 0; i < list.length; i++) n += P.TypedArrayPrototypeGetByteLength(list[i]);
    const out = new Uint8ArrayCtor(n);
    let at = 0;
    for (let i = 0; i < list.length; i++) {
      P.TypedArrayPrototypeSet(out, list[i], at);
      at += P.TypedArrayPrototypeGetByteLength(list[i]);
    }
    return out;
  };
  // The bytes of a BufferSource as a Uint8Array view, or undefined.
  P.toBytes = (v) => {
    if (P.ArrayBufferIsView(v)) {
      if (P.TypedArrayPrototypeGetSymbolToStringTag(v) !== undefined) {
        if (P.TypedArrayPrototypeGetSymbolToStringTag(v) === "Uint8Array") return v;
        return new Uint8ArrayCtor(P.TypedArrayPrototypeGetBuffer(v), P.TypedArrayPrototypeGetByteOffset(v), P.TypedArrayPrototypeGetByteLength(v));
      }
      return new Uint8ArrayCtor(P.DataViewPrototypeGetBuffer(v), P.DataViewPrototypeGetByteOffset(v), P.DataViewPrototypeGetByteLength(v));
    }
    if (isArrayBuffer(v)) return new Uint8ArrayCtor(v);
    return undefined;
  };
  function isArrayBuffer(v) {
    try {
      P.ArrayBufferPrototypeGetByteLength(v);
      return true;
    } catch {
      return false;
    }
  }
  // Every built-in by name, captured here, for code that runs after tenant
  // code (the lazily installed web areas): P.intrinsic("Object.defineProperty")
  // is the static function, P.intrinsic("Array.prototype.push") the method
  // uncurried, P.intrinsic("get Map.prototype.size") the getter uncurried,
  // P.intrinsic("Uint8Array") the constructor. Unknown names throw, so a typo
  // fails when the area loads.
  // Per root: its own properties, kept in null-prototype objects keyed by
  // the built-ins' own (already interned) names: no new strings and few
  // objects in every tenant's context.
  const tables = { __proto__: null };
  const ownKeys = Reflect.ownKeys;
  const getOwn = Object.getOwnPropertyDescriptor;
  const TypedArrayCtor = Object.getPrototypeOf(Uint8Array);
  const capture = (o) => {
    const t = { __proto__: null, values: { __proto__: null }, getters: { __proto__: null }, setters: { __proto__: null } };
    const keys = ownKeys(o);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (typeof k !== "string") continue;
      const d = getOwn(o, k);
      if (d.get) t.getters[k] = d.get;
      if (d.set) t.setters[k] = d.set;
      if ("value" in d) t.values[k] = d.value;
    }
    return t;
  };
  const roots = [
    ["Object", Object], ["Function", Function], ["Array", Array], ["ArrayBuffer", ArrayBuffer], ["DataView", DataView],
    ["Map", Map], ["Set", Set], ["WeakMap", WeakMap], ["WeakSet", WeakSet], ["WeakRef", WeakRef],
    ["FinalizationRegistry", FinalizationRegistry], ["Promise", Promise], ["RegExp", RegExp], ["String", String],
    ["Symbol", Symbol], ["Number", Number], ["Boolean", Boolean], ["BigInt", BigInt], ["Math", Math], ["JSON", JSON],
    ["Reflect", Reflect], ["Date", Date], ["Error", Error], ["TypeError", TypeError], ["RangeError", RangeError],
    ["SyntaxError", SyntaxError], ["AggregateError", AggregateError], ["TypedArray", TypedArrayCtor],
    ["Uint8Array", Uint8Array], ["Int8Array", Int8Array], ["Uint8ClampedArray", Uint8ClampedArray],
    ["Uint16Array", Uint16Array], ["Int16Array", Int16Array], ["Uint32Array", Uint32Array], ["Int32Array", Int32Array],
    ["Float32Array", Float32Array], ["Float64Array", Float64Array], ["BigInt64Array", BigInt64Array],
    ["BigUint64Array", BigUint64Array], ["Proxy", Proxy],
    ["%IteratorPrototype%", Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()))],
    ["%ArrayIteratorPrototype%", Object.getPrototypeOf([][Symbol.iterator]())],
    ["%AsyncIteratorPrototype%", Object.getPrototypeOf(Object.getPrototypeOf(async function* () {}).prototype)],
  ];
  for (let i = 0; i < roots.length; i++) {
    const name = roots[i][0];
    const root = roots[i][1];
    const t = capture(root);
    t.self = root;
    if (typeof root === "function" && root.prototype) t.proto = capture(root.prototype);
    tables[name] = t;
  }
  const ErrorCtor = Error;
  const StringIndexOf = uncurryThis(String.prototype.indexOf);
  const StringSlice = uncurryThis(String.prototype.slice);
  const missing = (name) => {
    throw new ErrorCtor(`isola: no intrinsic ${name}`);
  };
  P.uncurryThis = uncurryThis;
  P.intrinsic = (name) => {
    let kind = "values";
    let path = name;
    if (StringSlice(name, 0, 4) === "get ") (kind = "getters"), (path = StringSlice(name, 4));
    else if (StringSlice(name, 0, 4) === "set ") (kind = "setters"), (path = StringSlice(name, 4));
    if (path === "globalThis") return globalThis;
    const dot = StringIndexOf(path, ".");
    const t = tables[dot < 0 ? path : StringSlice(path, 0, dot)];
    if (t === undefined) return missing(name);
    if (dot < 0) return kind === "values" ? t.self : missing(name);
    let rest = StringSlice(path, dot + 1);
    let from = t;
    let method = path[0] === "%";
    if (StringSlice(rest, 0, 10) === "prototype.") {
      from = t.proto;
      rest = StringSlice(rest, 10);
      method = true;
    } else if (rest === "prototype" && kind === "values") {
      return t.self.prototype;
    }
    if (from === undefined) return missing(name);
    const table = from[kind];
    if (!(rest in table)) return missing(name);
    const v = table[rest];
    return (method || kind !== "values") && typeof v === "function" ? uncurryThis(v) : v;
  };
  return P.ObjectFreeze(P);
});
