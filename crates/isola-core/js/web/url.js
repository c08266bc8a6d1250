// URL and URLSearchParams (WHATWG URL Standard). Parsing, setters and the
// application/x-www-form-urlencoded format are native (the `url` crate, via
// ops.urlParse / urlSet / urlencodedParse / urlencodedSerialize); this file
// keeps the spec's shapes, the link between a URL and its searchParams, and
// the errors.
//
// Loaded once in the snapshot creator with (ops, P, web); puts URL and
// URLSearchParams on `web`. Built-ins are captured below, before any tenant
// code exists; nothing here calls a method a tenant can patch.
//
// Divergences: inputs longer than 1 MiB characters throw a RangeError; the
// `url` crate's IDNA handling is what it is (UTS 46 without the
// transitional mapping); a sequence of pairs given as arrays is read by
// index (P.sequence), not through a possibly patched array iterator.
(function url(ops, P, web) {
  "use strict";
  const { ObjectDefineProperty, ReflectApply, String, TypeError, SymbolIterator, newArray, append, sequence } = P;
  const { bind, call } = Function.prototype;
  const uncurryThis = bind.bind(call);
  const ArrayPrototypeSort = uncurryThis(Array.prototype.sort);
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectSetPrototypeOf = Object.setPrototypeOf;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const ReflectOwnKeys = Reflect.ownKeys;
  const SymbolToStringTag = Symbol.toStringTag;
  const IteratorPrototype = ObjectGetPrototypeOf(ObjectGetPrototypeOf([][SymbolIterator]()));
  const StringPrototypeCharCodeAt = uncurryThis(String.prototype.charCodeAt);
  const StringPrototypeSlice = uncurryThis(String.prototype.slice);
  const StringPrototypeToWellFormed = uncurryThis(String.prototype.toWellFormed);

  // Parts of the native record, in ops_web.rs `url_record` order.
  const HREF = 0, ORIGIN = 1, PROTOCOL = 2, USERNAME = 3, PASSWORD = 4, HOST = 5;
  const HOSTNAME = 6, PORT = 7, PATHNAME = 8, SEARCH = 9, HASH = 10;

  const usv = (v) => StringPrototypeToWellFormed(String(v));
  const required = (n, have, what) => {
    if (have < n) throw new TypeError(`Failed to ${what}: ${n} argument${n > 1 ? "s" : ""} required, but only ${have} present.`);
  };

  // ---------- URLSearchParams ----------
  // The list is a flat array [name0, value0, name1, value1, ...].
  let paramsFor; // (url, list) => URLSearchParams tied to `url`
  let setList; // (params, list) => void, used when the URL's query changes
  let updateURL; // (url, serialized) => void
  let listOf; // (params) => its list (a brand check: throws on anything else)
  let isURL; // (v) => whether v is a URL
  let isParams; // (v) => whether v is a URLSearchParams

  class URLSearchParams {
    #list = newArray();
    #url = null;

    constructor(init = "") {
      if ((typeof init === "object" && init !== null) || typeof init === "function") {
        if (#list in init) {
          const src = init.#list;
          for (let i = 0; i < src.length; i++) append(this.#list, src[i]);
          return;
        }
        const method = init[SymbolIterator];
        if (method !== undefined && method !== null) {
          // The tenant's own iterable: its iteration protocol is the spec's.
          const where = "Failed to construct 'URLSearchParams'";
          const pairs = sequence(init, where);
          for (let i = 0; i < pairs.length; i++) {
            const pair = sequence(pairs[i], where);
            if (pair.length !== 2) throw new TypeError(`${where}: Sequence initializer must only contain pair elements`);
            append(this.#list, usv(pair[0]));
            append(this.#list, usv(pair[1]));
          }
          return;
        }
        // A record: own enumerable string keys, in order.
        const keys = ReflectOwnKeys(init);
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i];
          if (typeof k !== "string") continue;
          const d = ObjectGetOwnPropertyDescriptor(init, k);
          if (d === undefined || !d.enumerable) continue;
          append(this.#list, usv(k));
          append(this.#list, usv(init[k]));
        }
        return;
      }
      let s = usv(init);
      if (s.length > 0 && StringPrototypeCharCodeAt(s, 0) === 0x3f) s = StringPrototypeSlice(s, 1);
      this.#list = ops.urlencodedParse(s);
    }

    #update() {
      if (this.#url !== null) updateURL(this.#url, ops.urlencodedSerialize(this.#list));
    }

    get size() {
      return this.#list.length / 2;
    }
    append(name, value) {
      required(2, arguments.length, "execute 'append' on 'URLSearchParams'");
      append(this.#list, usv(name));
      append(this.#list, usv(value));
      this.#update();
    }
    delete(name, value = undefined) {
      required(1, arguments.length, "execute 'delete' on 'URLSearchParams'");
      const n = usv(name);
      const v = value === undefined ? undefined : usv(value);
      const kept = newArray();
      const list = this.#list;
      for (let i = 0; i < list.length; i += 2) {
        if (list[i] === n && (v === undefined || list[i + 1] === v)) continue;
        append(kept, list[i]);
        append(kept, list[i + 1]);
      }
      this.#list = kept;
      this.#update();
    }
    get(name) {
      required(1, arguments.length, "execute 'get' on 'URLSearchParams'");
      const n = usv(name);
      const list = this.#list;
      for (let i = 0; i < list.length; i += 2) if (list[i] === n) return list[i + 1];
      return null;
    }
    getAll(name) {
      required(1, arguments.length, "execute 'getAll' on 'URLSearchParams'");
      const n = usv(name);
      const out = newArray();
      const list = this.#list;
      for (let i = 0; i < list.length; i += 2) if (list[i] === n) append(out, list[i + 1]);
      return out;
    }
    has(name, value = undefined) {
      required(1, arguments.length, "execute 'has' on 'URLSearchParams'");
      const n = usv(name);
      const v = value === undefined ? undefined : usv(value);
      const list = this.#list;
      for (let i = 0; i < list.length; i += 2) {
        if (list[i] === n && (v === undefined || list[i + 1] === v)) return true;
      }
      return false;
    }
    set(name, value) {
      required(2, arguments.length, "execute 'set' on 'URLSearchParams'");
      const n = usv(name);
      const v = usv(value);
      const out = newArray();
      const list = this.#list;
      let found = false;
      for (let i = 0; i < list.length; i += 2) {
        if (list[i] !== n) {
          append(out, list[i]);
          append(out, list[i + 1]);
        } else if (!found) {
          found = true;
          append(out, n);
          append(out, v);
        }
      }
      if (!found) {
        append(out, n);
        append(out, v);
      }
      this.#list = out;
      this.#update();
    }
    sort() {
      // Stable, by the names' UTF-16 code units.
      const list = this.#list;
      const idx = newArray();
      for (let i = 0; i < list.length; i += 2) append(idx, i);
      ArrayPrototypeSort(idx, (a, b) => (list[a] < list[b] ? -1 : list[a] > list[b] ? 1 : 0));
      const out = newArray();
      for (let i = 0; i < idx.length; i++) {
        append(out, list[idx[i]]);
        append(out, list[idx[i] + 1]);
      }
      this.#list = out;
      this.#update();
    }
    forEach(callback, thisArg = undefined) {
      required(1, arguments.length, "execute 'forEach' on 'URLSearchParams'");
      if (typeof callback !== "function") throw new TypeError("Failed to execute 'forEach' on 'URLSearchParams': The callback provided as parameter 1 is not a function.");
      for (let i = 0; i < this.#list.length; i += 2) {
        ReflectApply(callback, thisArg, [this.#list[i + 1], this.#list[i], this]);
      }
    }
    keys() {
      return iterator(this, 0);
    }
    values() {
      return iterator(this, 1);
    }
    entries() {
      return iterator(this, 2);
    }
    toString() {
      return ops.urlencodedSerialize(this.#list);
    }

    static {
      paramsFor = (url, list) => {
        const p = new URLSearchParams();
        p.#list = list;
        p.#url = url;
        return p;
      };
      setList = (p, list) => {
        p.#list = list;
      };
      listOf = (p) => p.#list;
      isParams = (v) => v !== null && typeof v === "object" && #list in v;
    }
  }
  ObjectDefineProperty(URLSearchParams.prototype, SymbolIterator, {
    __proto__: null,
    value: URLSearchParams.prototype.entries,
    writable: true,
    configurable: true,
  });
  ObjectDefineProperty(URLSearchParams.prototype, SymbolToStringTag, { __proto__: null, value: "URLSearchParams", configurable: true });

  // Live iterators over a URLSearchParams (they see later changes).
  class URLSearchParamsIterator {
    #params;
    #kind;
    #index = 0;
    constructor(params, kind) {
      this.#params = params;
      this.#kind = kind;
    }
    next() {
      const list = listOf(this.#params);
      if (this.#index >= list.length) return { value: undefined, done: true };
      const i = this.#index;
      this.#index += 2;
      const k = this.#kind;
      const value = k === 0 ? list[i] : k === 1 ? list[i + 1] : [list[i], list[i + 1]];
      return { value, done: false };
    }
  }
  ObjectSetPrototypeOf(URLSearchParamsIterator.prototype, IteratorPrototype);
  ObjectDefineProperty(URLSearchParamsIterator.prototype, SymbolToStringTag, { __proto__: null, value: "URLSearchParams Iterator", configurable: true });
  const iterator = (params, kind) => {
    listOf(params); // brand check: throws on a non-URLSearchParams
    return new URLSearchParamsIterator(params, kind);
  };

  // ---------- URL ----------
  class URL {
    #r;
    #params = null;

    constructor(url, base = undefined) {
      required(1, arguments.length, "construct 'URL'");
      const input = usv(url);
      const b = base === undefined ? undefined : usv(base);
      const r = ops.urlParse(input, b);
      if (r === null) throw new TypeError(b === undefined ? `Invalid URL: '${input}'` : `Invalid URL: '${input}' against base '${b}'`);
      this.#r = r;
    }
    static canParse(url, base = undefined) {
      required(1, arguments.length, "execute 'canParse' on 'URL'");
      return ops.urlParse(usv(url), base === undefined ? undefined : usv(base)) !== null;
    }
    static parse(url, base = undefined) {
      required(1, arguments.length, "execute 'parse' on 'URL'");
      const r = ops.urlParse(usv(url), base === undefined ? undefined : usv(base));
      if (r === null) return null;
      const u = new URL("about:blank");
      u.#r = r;
      return u;
    }

    #set(part, value) {
      const r = ops.urlSet(this.#r[HREF], part, usv(value));
      if (r !== null) this.#r = r;
    }
    #searchChanged() {
      if (this.#params !== null) {
        const q = this.#r[SEARCH];
        setList(this.#params, ops.urlencodedParse(q.length > 0 ? StringPrototypeSlice(q, 1) : ""));
      }
    }

    get href() {
      return this.#r[HREF];
    }
    set href(v) {
      const s = usv(v);
      const r = ops.urlSet(this.#r[HREF], HREF, s);
      if (r === null) throw new TypeError(`Invalid URL: '${s}'`);
      this.#r = r;
      this.#searchChanged();
    }
    get origin() {
      return this.#r[ORIGIN];
    }
    get protocol() {
      return this.#r[PROTOCOL];
    }
    set protocol(v) {
      this.#set(PROTOCOL, v);
    }
    get username() {
      return this.#r[USERNAME];
    }
    set username(v) {
      this.#set(USERNAME, v);
    }
    get password() {
      return this.#r[PASSWORD];
    }
    set password(v) {
      this.#set(PASSWORD, v);
    }
    get host() {
      return this.#r[HOST];
    }
    set host(v) {
      this.#set(HOST, v);
    }
    get hostname() {
      return this.#r[HOSTNAME];
    }
    set hostname(v) {
      this.#set(HOSTNAME, v);
    }
    get port() {
      return this.#r[PORT];
    }
    set port(v) {
      this.#set(PORT, v);
    }
    get pathname() {
      return this.#r[PATHNAME];
    }
    set pathname(v) {
      this.#set(PATHNAME, v);
    }
    get search() {
      return this.#r[SEARCH];
    }
    set search(v) {
      this.#set(SEARCH, v);
      this.#searchChanged();
    }
    get searchParams() {
      if (this.#params === null) {
        const q = this.#r[SEARCH];
        this.#params = paramsFor(this, ops.urlencodedParse(q.length > 0 ? StringPrototypeSlice(q, 1) : ""));
      }
      return this.#params;
    }
    get hash() {
      return this.#r[HASH];
    }
    set hash(v) {
      this.#set(HASH, v);
    }
    toString() {
      return this.#r[HREF];
    }
    toJSON() {
      return this.#r[HREF];
    }

    static {
      isURL = (v) => v !== null && typeof v === "object" && #r in v;
      updateURL = (u, serialized) => {
        const r = ops.urlSet(u.#r[HREF], SEARCH, serialized);
        if (r !== null) u.#r = r;
      };
    }
  }
  ObjectDefineProperty(URL.prototype, SymbolToStringTag, { __proto__: null, value: "URL", configurable: true });

  web.URL = URL;
  web.URLSearchParams = URLSearchParams;
  web.__isURL = (v) => isURL(v) || isParams(v);
  // A URLSearchParams as a body: its serialization (not through its
  // toString, which the tenant may have replaced), or undefined.
  web.__paramsBody = (v) => (isParams(v) ? ops.urlencodedSerialize(listOf(v)) : undefined);
  // The serialization of an absolute URL string, or a TypeError (for the
  // runtime's own use: no tenant-patchable getter on the way).
  web.__urlHref = (input) => {
    const r = ops.urlParse(usv(input), undefined);
    if (r === null) throw new TypeError(`Invalid URL: '${input}'`);
    return r[0];
  };
});
