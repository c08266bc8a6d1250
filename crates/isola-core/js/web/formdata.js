// FormData (WHATWG XMLHttpRequest Standard): an ordered list of entries
// whose values are strings or Files (append, set, get, getAll, has, delete,
// entries, keys, values, forEach, iteration), plus web.__formdata for the
// bootstrap's bodies: a FormData body serialised as multipart/form-data
// (HTML "multipart/form-data encoding algorithm", with a random boundary)
// and `body.formData()` parsing multipart/form-data (natively, bounded:
// runtime/ops_formdata.rs) and application/x-www-form-urlencoded.
//
// A lazy area (snapshot.rs LAZY_SOURCES): called as (ops, P, web) on the
// first use of FormData (or of body.formData(), or a FormData body), after
// tenant code ran, so every built-in comes from the primordials. Blob and
// File come from the lazy blob area (loaded with this one). The iterators
// are this file's own objects (their `next` reads the live entry list by
// index), never array iterators.
//
// Divergences: there is no HTMLFormElement, so the constructor takes no
// argument (any argument but undefined is a TypeError); a file part of a
// parsed multipart body with no Content-Type gets "text/plain"; a parsed
// body is at most 32 MiB with at most 10000 parts, 16 KiB and 32 header
// lines per part (TypeError past those), and an urlencoded one at most
// 2^20 characters.
(function formdata(ops, P, web) {
  "use strict";
  const { ObjectDefineProperty, ReflectApply, String, TypeError, Uint8Array, append, concatBytes, newArray } = P;
  const I = P.intrinsic;
  const StringPrototypeCharCodeAt = I("String.prototype.charCodeAt");
  const StringPrototypeToLowerCase = I("String.prototype.toLowerCase");
  const StringPrototypeTrim = I("String.prototype.trim");
  const StringPrototypeSlice = I("String.prototype.slice");
  const NumberPrototypeToString = I("Number.prototype.toString");
  const ArrayPrototypeJoin = I("Array.prototype.join");
  const ObjectGetPrototypeOf = I("Object.getPrototypeOf");
  const ObjectSetPrototypeOf = I("Object.setPrototypeOf");
  const ReflectDeleteProperty = I("Reflect.deleteProperty");
  const ArrayPrototypeValues = I("Array.prototype.values");
  const SymbolToStringTag = I("Symbol.toStringTag");
  const SymbolIterator = I("Symbol.iterator");
  const toWellFormed = I("String.prototype.toWellFormed");
  const IteratorPrototype = ObjectGetPrototypeOf(ObjectGetPrototypeOf(ArrayPrototypeValues(newArray())));

  web.__load("blob");
  const { File } = web;
  const blobs = web.__blob;

  const usv = (v) => {
    if (typeof v === "symbol") throw new TypeError("Cannot convert a Symbol value to a string");
    return toWellFormed(String(v));
  };
  const needArgs = (got, n, op) => {
    if (got < n) throw new TypeError(`Failed to execute '${op}' on 'FormData': ${n} arguments required, but only ${got} present.`);
  };
  const encode = (s) => {
    const out = new Uint8Array(ops.utf8Length(s));
    ops.encodeUtf8Into(s, out);
    return out;
  };

  // The spec's "create an entry": a string, or a File (a Blob becomes a
  // File named "blob"; a filename renames).
  function entryValue(value, filename, op, argc) {
    const bytes = blobs.bytesOf(value);
    if (bytes === undefined) {
      if (argc > 2) throw new TypeError(`Failed to execute '${op}' on 'FormData': parameter 2 is not of type 'Blob'.`);
      return usv(value);
    }
    const file = blobs.fileOf(value);
    if (file !== undefined && filename === undefined) return value;
    const name = filename !== undefined ? usv(filename) : "blob";
    const lastModified = file !== undefined ? file.lastModified : undefined;
    // Blobs are immutable: the new File shares the bytes.
    return blobs.makeFile(bytes, name, blobs.typeOf(value), lastModified);
  }

  let entriesOf; // (formData) => its entry list, or undefined
  class FormData {
    // Dense list of { __proto__: null, name, value }.
    #entries = newArray();
    constructor(form = undefined) {
      if (form !== undefined) {
        throw new TypeError("Failed to construct 'FormData': parameter 1 is not of type 'HTMLFormElement' (isola has no forms; omit it).");
      }
    }
    append(name, value, filename = undefined) {
      needArgs(arguments.length, 2, "append");
      const n = usv(name);
      append(this.#entries, { __proto__: null, name: n, value: entryValue(value, filename, "append", arguments.length) });
    }
    set(name, value, filename = undefined) {
      needArgs(arguments.length, 2, "set");
      const n = usv(name);
      const entry = { __proto__: null, name: n, value: entryValue(value, filename, "set", arguments.length) };
      const kept = newArray();
      let placed = false;
      const list = this.#entries;
      for (let i = 0; i < list.length; i++) {
        if (list[i].name !== n) append(kept, list[i]);
        else if (!placed) {
          append(kept, entry);
          placed = true;
        }
      }
      if (!placed) append(kept, entry);
      this.#entries = kept;
    }
    get(name) {
      needArgs(arguments.length, 1, "get");
      const n = usv(name);
      const list = this.#entries;
      for (let i = 0; i < list.length; i++) if (list[i].name === n) return list[i].value;
      return null;
    }
    getAll(name) {
      needArgs(arguments.length, 1, "getAll");
      const n = usv(name);
      const out = newArray();
      const list = this.#entries;
      for (let i = 0; i < list.length; i++) if (list[i].name === n) append(out, list[i].value);
      return out;
    }
    has(name) {
      needArgs(arguments.length, 1, "has");
      const n = usv(name);
      const list = this.#entries;
      for (let i = 0; i < list.length; i++) if (list[i].name === n) return true;
      return false;
    }
    delete(name) {
      needArgs(arguments.length, 1, "delete");
      const n = usv(name);
      const kept = newArray();
      const list = this.#entries;
      for (let i = 0; i < list.length; i++) if (list[i].name !== n) append(kept, list[i]);
      this.#entries = kept;
    }
    forEach(callback, thisArg = undefined) {
      needArgs(arguments.length, 1, "forEach");
      if (typeof callback !== "function") throw new TypeError("Failed to execute 'forEach' on 'FormData': The callback provided as parameter 1 is not a function.");
      // Live: entries added or removed by the callback are seen (WebIDL).
      for (let i = 0; i < this.#entries.length; i++) {
        const e = this.#entries[i];
        ReflectApply(callback, thisArg, [e.value, e.name, this]);
      }
    }
    entries() {
      return makeIterator(this, 0);
    }
    keys() {
      return makeIterator(this, 1);
    }
    values() {
      return makeIterator(this, 2);
    }
    static {
      entriesOf = (v) => (v !== null && typeof v === "object" && #entries in v ? v.#entries : undefined);
    }
  }
  const iteratorMethod = { __proto__: null, value: FormData.prototype.entries, writable: true, configurable: true };
  ObjectDefineProperty(FormData.prototype, SymbolIterator, iteratorMethod);
  ObjectDefineProperty(FormData.prototype, SymbolToStringTag, { __proto__: null, value: "FormData", configurable: true });

  // WebIDL's default iterator objects: %FormDataIteratorPrototype% inherits
  // from %IteratorPrototype%; `next` walks the live list by index.
  let makeIterator;
  class FormDataIterator {
    #target;
    #kind;
    #index = 0;
    next() {
      if (!(#target in this)) throw new TypeError("next method called on an object that is not a FormData iterator");
      const list = entriesOf(this.#target);
      if (this.#index >= list.length) return { value: undefined, done: true };
      const e = list[this.#index++];
      if (this.#kind === 1) return { value: e.name, done: false };
      if (this.#kind === 2) return { value: e.value, done: false };
      const pair = newArray();
      append(pair, e.name);
      append(pair, e.value);
      return { value: pair, done: false };
    }
    static {
      makeIterator = (target, kind) => {
        const it = new FormDataIterator();
        it.#target = target;
        it.#kind = kind;
        return it;
      };
    }
  }
  ObjectSetPrototypeOf(FormDataIterator.prototype, IteratorPrototype);
  ReflectDeleteProperty(FormDataIterator.prototype, "constructor");
  ObjectDefineProperty(FormDataIterator.prototype, SymbolToStringTag, { __proto__: null, value: "FormData Iterator", configurable: true });

  // ---------- multipart/form-data encoding ----------
  // Every CR not followed by LF and every LF not preceded by CR as CRLF.
  function crlf(s) {
    let out = "";
    let from = 0;
    for (let i = 0; i < s.length; i++) {
      const c = StringPrototypeCharCodeAt(s, i);
      if (c === 13 && StringPrototypeCharCodeAt(s, i + 1) !== 10) {
        out += StringPrototypeSlice(s, from, i) + "\r\n";
        from = i + 1;
      } else if (c === 10 && (i === 0 || StringPrototypeCharCodeAt(s, i - 1) !== 13)) {
        out += StringPrototypeSlice(s, from, i) + "\r\n";
        from = i + 1;
      }
    }
    return from === 0 ? s : out + StringPrototypeSlice(s, from);
  }
  // A name or filename in a Content-Disposition header: `"`, CR, LF escaped.
  function escapeName(s) {
    let out = "";
    let from = 0;
    for (let i = 0; i < s.length; i++) {
      const c = StringPrototypeCharCodeAt(s, i);
      const rep = c === 34 ? "%22" : c === 13 ? "%0D" : c === 10 ? "%0A" : null;
      if (rep !== null) {
        out += StringPrototypeSlice(s, from, i) + rep;
        from = i + 1;
      }
    }
    return from === 0 ? s : out + StringPrototypeSlice(s, from);
  }
  function newBoundary() {
    const r = new Uint8Array(16);
    ops.randomFill(r);
    const hex = newArray();
    for (let i = 0; i < 16; i++) append(hex, StringPrototypeSlice(NumberPrototypeToString(r[i] + 256, 16), 1));
    return `----isolaFormBoundary${ArrayPrototypeJoin(hex, "")}`;
  }
  // { bytes, type } of a FormData body.
  function serialize(fd) {
    const list = entriesOf(fd);
    const boundary = newBoundary();
    const chunks = newArray();
    for (let i = 0; i < list.length; i++) {
      const { name, value } = list[i];
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(crlf(name))}"`;
      if (typeof value === "string") {
        append(chunks, encode(`${head}\r\n\r\n${crlf(value)}\r\n`));
        continue;
      }
      const type = blobs.typeOf(value);
      head += `; filename="${escapeName(blobs.fileOf(value).name)}"\r\nContent-Type: ${type === "" ? "application/octet-stream" : type}\r\n\r\n`;
      append(chunks, encode(head));
      append(chunks, blobs.bytesOf(value));
      append(chunks, encode("\r\n"));
    }
    append(chunks, encode(`--${boundary}--\r\n`));
    return { __proto__: null, bytes: concatBytes(chunks), type: `multipart/form-data; boundary=${boundary}` };
  }

  // ---------- parsing a body ----------
  // The essence and the boundary parameter of a Content-Type.
  function mimeOf(contentType) {
    const s = contentType === null ? "" : contentType;
    const params = newArray();
    let quoted = false;
    let from = 0;
    for (let i = 0; i <= s.length; i++) {
      const c = i < s.length ? StringPrototypeCharCodeAt(s, i) : 59;
      if (c === 34) quoted = !quoted;
      else if (c === 59 && !quoted) {
        append(params, StringPrototypeTrim(StringPrototypeSlice(s, from, i)));
        from = i + 1;
      }
    }
    let boundary;
    for (let i = 1; i < params.length; i++) {
      const p = params[i];
      let eq = -1;
      for (let j = 0; j < p.length; j++) {
        if (StringPrototypeCharCodeAt(p, j) === 61) {
          eq = j;
          break;
        }
      }
      if (eq < 0 || StringPrototypeToLowerCase(StringPrototypeTrim(StringPrototypeSlice(p, 0, eq))) !== "boundary") continue;
      let v = StringPrototypeTrim(StringPrototypeSlice(p, eq + 1));
      if (v.length >= 2 && StringPrototypeCharCodeAt(v, 0) === 34 && StringPrototypeCharCodeAt(v, v.length - 1) === 34) {
        v = StringPrototypeSlice(v, 1, -1);
      }
      if (boundary === undefined) boundary = v;
    }
    return { __proto__: null, essence: StringPrototypeToLowerCase(params[0]), boundary };
  }
  // A FormData from a body's bytes and its Content-Type (or null).
  function parse(bytes, contentType) {
    const mime = mimeOf(contentType);
    const fd = new FormData();
    const list = entriesOf(fd);
    if (mime.essence === "multipart/form-data") {
      if (mime.boundary === undefined || mime.boundary === "") {
        throw new TypeError("Failed to parse the body as FormData: the multipart/form-data Content-Type has no boundary");
      }
      const flat = ops.multipartParse(bytes, mime.boundary);
      for (let i = 0; i + 3 < flat.length; i += 4) {
        const filename = flat[i + 1];
        let value = flat[i + 3];
        if (filename !== undefined) {
          const type = flat[i + 2];
          value = blobs.makeFile(new Uint8Array(value), filename, type === undefined ? "text/plain" : type, undefined);
        }
        append(list, { __proto__: null, name: flat[i], value });
      }
      return fd;
    }
    if (mime.essence === "application/x-www-form-urlencoded") {
      const pairs = ops.urlencodedParse(ops.decodeUtf8(bytes, false));
      for (let i = 0; i + 1 < pairs.length; i += 2) append(list, { __proto__: null, name: pairs[i], value: pairs[i + 1] });
      return fd;
    }
    throw new TypeError("Failed to parse the body as FormData: its Content-Type is neither multipart/form-data nor application/x-www-form-urlencoded");
  }

  const isFormData = (v) => entriesOf(v) !== undefined;
  web.__addPlatformCheck(isFormData);
  web.FormData = FormData;
  web.__formdata = P.ObjectFreeze({ __proto__: null, isFormData, serialize, parse });
});
