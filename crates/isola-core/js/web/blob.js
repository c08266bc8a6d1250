// Blob and File (W3C File API). A blob's bytes live in one Uint8Array made
// through the tenant's counted ArrayBuffer allocator, so the ArrayBuffer
// budget bounds them; slices copy. web.__blob lets the bootstrap use a blob
// as a request or response body (and FormData make and read files);
// structuredClone copies blobs (web.__addHostCloner), sharing the bytes.
//
// A lazy area (snapshot.rs LAZY_SOURCES): called as (ops, P, web) on the
// first use of Blob or File, after tenant code ran, so every built-in comes
// from the primordials; nothing here calls a method a tenant can patch (the
// parts of `new Blob(parts)` that are not an array are iterated with their
// own iterator, as WebIDL says).
//
// Divergences: `endings: "native"` is treated as "transparent"; `stream()`
// yields the whole blob as one chunk (of a byte stream, web.__streams).
(function blob(ops, P, web) {
  "use strict";
  const { DateNow, MathMax, MathMin, ObjectDefineProperty, ObjectFreeze, PromiseResolve } = P;
  const { String, TypeError, Uint8Array, TypedArrayPrototypeGetBuffer, TypedArrayPrototypeGetByteLength } = P;
  const { TypedArrayPrototypeSet, append, concatBytes, newArray, sequence, toBytes } = P;
  const I = P.intrinsic;
  const StringPrototypeCharCodeAt = I("String.prototype.charCodeAt");
  const StringPrototypeToLowerCase = I("String.prototype.toLowerCase");
  const TypedArrayPrototypeSubarray = I("TypedArray.prototype.subarray");
  const SymbolToStringTag = I("Symbol.toStringTag");
  const NumberIsFinite = I("Number.isFinite");
  const MathTrunc = I("Math.trunc");
  const toWellFormed = I("String.prototype.toWellFormed");

  const encode = (s) => {
    const out = new Uint8Array(ops.utf8Length(s));
    ops.encodeUtf8Into(s, out);
    return out;
  };
  // The type, lower-cased, or "" if it has a character outside U+0020..U+007E.
  const normalizeType = (t) => {
    const s = String(t);
    for (let i = 0; i < s.length; i++) {
      const c = StringPrototypeCharCodeAt(s, i);
      if (c < 0x20 || c > 0x7e) return "";
    }
    return StringPrototypeToLowerCase(s);
  };

  let bytesOf; // (blob) => its Uint8Array, or undefined for anything else
  let typeOf; // (blob) => its type
  let setBytes;
  let setType;
  let fileOf; // (file) => { name, lastModified }, or undefined for anything else

  class Blob {
    #bytes;
    #type;
    constructor(blobParts = undefined, options = undefined) {
      if (blobParts === null) throw new TypeError("Failed to construct 'Blob': The provided value cannot be converted to a sequence.");
      const parts = blobParts === undefined ? newArray() : sequence(blobParts, "Failed to construct 'Blob'");
      const type = options === undefined || options === null || options.type === undefined ? "" : normalizeType(options.type);
      // Each part as bytes, then one copy of them all.
      const chunks = newArray();
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i];
        let b = bytesOf(p);
        if (b === undefined) b = toBytes(p);
        if (b === undefined) b = encode(toWellFormed(String(p)));
        append(chunks, b);
      }
      this.#bytes = concatBytes(chunks);
      this.#type = type;
    }
    get size() {
      return TypedArrayPrototypeGetByteLength(this.#bytes);
    }
    get type() {
      return this.#type;
    }
    slice(start = undefined, end = undefined, contentType = undefined) {
      const size = TypedArrayPrototypeGetByteLength(this.#bytes);
      const rel = (v, dflt) => {
        if (v === undefined) return dflt;
        let n = +v;
        n = NumberIsFinite(n) ? MathTrunc(n) : n > 0 ? size : n < 0 ? -size : 0;
        return n < 0 ? MathMax(size + n, 0) : MathMin(n, size);
      };
      const from = rel(start, 0);
      const to = rel(end, size);
      const out = new Blob();
      const len = MathMax(to - from, 0);
      const copy = new Uint8Array(len);
      TypedArrayPrototypeSet(copy, TypedArrayPrototypeSubarray(this.#bytes, from, from + len));
      out.#bytes = copy;
      out.#type = contentType === undefined ? "" : normalizeType(contentType);
      return out;
    }
    text() {
      return PromiseResolve(ops.decodeUtf8(this.#bytes, false));
    }
    arrayBuffer() {
      const copy = concatBytes([this.#bytes]);
      return PromiseResolve(TypedArrayPrototypeGetBuffer(copy));
    }
    bytes() {
      const copy = concatBytes([this.#bytes]);
      return PromiseResolve(copy);
    }
    stream() {
      const copy = concatBytes([this.#bytes]);
      return web.__streams.fromBytes(copy); // a byte stream of one chunk
    }
    static {
      bytesOf = (v) => (v !== null && typeof v === "object" && #bytes in v ? v.#bytes : undefined);
      typeOf = (v) => v.#type;
      setBytes = (v, b) => {
        v.#bytes = b;
      };
      setType = (v, t) => {
        v.#type = t;
      };
    }
  }
  ObjectDefineProperty(Blob.prototype, SymbolToStringTag, { __proto__: null, value: "Blob", configurable: true });

  class File extends Blob {
    #name;
    #lastModified;
    constructor(fileBits, fileName, options = undefined) {
      if (arguments.length < 2) throw new TypeError(`Failed to construct 'File': 2 arguments required, but only ${arguments.length} present.`);
      super(fileBits, options);
      this.#name = toWellFormed(String(fileName));
      const lm = options === undefined || options === null ? undefined : options.lastModified;
      this.#lastModified = lm === undefined ? DateNow() : MathTrunc(+lm) || 0;
    }
    get name() {
      return this.#name;
    }
    get lastModified() {
      return this.#lastModified;
    }
    static {
      fileOf = (v) =>
        v !== null && typeof v === "object" && #name in v ? { __proto__: null, name: v.#name, lastModified: v.#lastModified } : undefined;
    }
  }
  ObjectDefineProperty(File.prototype, SymbolToStringTag, { __proto__: null, value: "File", configurable: true });

  // structuredClone copies blobs (serializable, per the File API): the
  // copy shares the bytes, which no blob ever changes.
  web.__addHostCloner((v) => {
    const bytes = bytesOf(v);
    if (bytes === undefined) return undefined;
    const file = fileOf(v);
    const copy = file === undefined ? new Blob() : new File([], file.name, { lastModified: file.lastModified });
    setBytes(copy, bytes);
    setType(copy, typeOf(v));
    return copy;
  });
  web.Blob = Blob;
  web.File = File;
  web.__blob = ObjectFreeze({
    __proto__: null,
    bytesOf,
    typeOf,
    fileOf,
    make: (bytes, type) => new Blob([bytes], { type }),
    // A File of `bytes` (not copied: the caller hands them over).
    makeFile: (bytes, name, type, lastModified) => {
      const f = new File([], name, { type, lastModified });
      setBytes(f, bytes);
      return f;
    },
  });
});
