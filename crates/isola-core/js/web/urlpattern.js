// URLPattern (WHATWG URL Pattern Standard): the constructor (a pattern
// string with an optional base URL, or a URLPatternInit dictionary; the
// `ignoreCase` option), test, exec, the component getters and
// hasRegExpGroups.
//
// The pattern is parsed natively (ops.urlpatternParse, the `urlpattern`
// crate, see runtime/ops_urlpattern.rs) into each component's pattern
// string, regular expression source and group names; the regular
// expressions are compiled here with the realm's own RegExp (flags "v", or
// "vi" with ignoreCase, as the spec says) and run here, so matching counts
// in the tenant's CPU budget and a pathological regexp group is stopped by
// the CPU limit like any other tenant regexp. The URL to match is split
// into its components natively too (ops.urlpatternMatchInput).
//
// A lazy area (snapshot.rs LAZY_SOURCES): called as (ops, P, web) on the
// first use of URLPattern, after tenant code ran, so every built-in comes
// from the primordials and nothing here calls a method a tenant can patch.
//
// Divergences: a pattern (all its strings together) is at most 16384
// characters with at most 256 of the characters `*`, `:`, `(`, `{` (the
// parser's work grows with the square of the parts), and the input of
// test/exec at most 1 MiB (past those: a TypeError); the members of the interface are not enumerable; there is no
// URLPattern.compareComponent (not in ECMA-429's list).
(function urlpattern(ops, P, web) {
  "use strict";
  const { ObjectDefineProperty, ReflectConstruct, String, TypeError, append, newArray } = P;
  const I = P.intrinsic;
  const RegExpCtor = I("RegExp");
  const RegExpPrototypeExec = I("RegExp.prototype.exec");
  const SymbolToStringTag = I("Symbol.toStringTag");
  const toWellFormed = I("String.prototype.toWellFormed");

  const COMPONENTS = ["protocol", "username", "password", "hostname", "port", "pathname", "search", "hash"];
  // URLPatternInit members in WebIDL (lexicographic) conversion order, and
  // where each goes in the native record (protocol ... hash, baseURL).
  const INIT_ORDER = ["baseURL", "hash", "hostname", "password", "pathname", "port", "protocol", "search", "username"];
  const INIT_SLOT = [8, 7, 3, 2, 5, 4, 0, 6, 1];

  // WebIDL USVString.
  const usv = (v) => {
    if (typeof v === "symbol") throw new TypeError("Cannot convert a Symbol value to a string");
    return toWellFormed(String(v));
  };
  const isObject = (v) => v !== null && (typeof v === "object" || typeof v === "function");

  // (URLPatternInit or USVString) as the ops take it: a string, or
  // { record: [protocol, ..., hash, baseURL], dict: the members given }.
  function convertInput(v) {
    if (v === undefined || v === null || isObject(v)) {
      const record = newArray();
      for (let i = 0; i < 9; i++) append(record, undefined);
      const dict = {};
      if (v !== undefined && v !== null) {
        for (let i = 0; i < INIT_ORDER.length; i++) {
          const m = v[INIT_ORDER[i]];
          if (m === undefined) continue;
          const s = usv(m);
          record[INIT_SLOT[i]] = s;
          ObjectDefineProperty(dict, INIT_ORDER[i], { __proto__: null, value: s, writable: true, enumerable: true, configurable: true });
        }
      }
      return { __proto__: null, native: record, given: dict };
    }
    const s = usv(v);
    return { __proto__: null, native: s, given: s };
  }

  let isURLPattern;
  class URLPattern {
    #patterns; // the eight pattern strings
    #regexps; // the eight compiled regular expressions
    #names; // the eight group name lists
    #hasRegExpGroups;
    constructor(input = undefined, baseURL = undefined, options = undefined) {
      // Overloads: (input, baseURL, options) and (input, options).
      let base;
      let opts;
      if (arguments.length >= 3 || (baseURL !== undefined && baseURL !== null && !isObject(baseURL))) {
        base = usv(baseURL);
        opts = options;
      } else {
        opts = baseURL;
      }
      if (opts !== undefined && opts !== null && !isObject(opts)) {
        throw new TypeError("Failed to construct 'URLPattern': The provided options are not an object.");
      }
      const ignoreCase = opts === undefined || opts === null ? false : !!opts.ignoreCase;
      const parsed = ops.urlpatternParse(convertInput(input).native, base, ignoreCase);
      const flags = ignoreCase ? "vi" : "v";
      this.#patterns = newArray();
      this.#regexps = newArray();
      this.#names = newArray();
      for (let i = 0; i < 8; i++) {
        append(this.#patterns, parsed[i * 3]);
        let re;
        try {
          re = ReflectConstruct(RegExpCtor, [parsed[i * 3 + 1], flags]);
        } catch (e) {
          const why = isObject(e) ? String(e.message) : String(e);
          throw new TypeError(`Failed to construct 'URLPattern': the ${COMPONENTS[i]} component is not a valid regular expression: ${why}`);
        }
        append(this.#regexps, re);
        append(this.#names, parsed[i * 3 + 2]);
      }
      this.#hasRegExpGroups = parsed[24] === true;
    }
    get protocol() { return this.#patterns[0]; }
    get username() { return this.#patterns[1]; }
    get password() { return this.#patterns[2]; }
    get hostname() { return this.#patterns[3]; }
    get port() { return this.#patterns[4]; }
    get pathname() { return this.#patterns[5]; }
    get search() { return this.#patterns[6]; }
    get hash() { return this.#patterns[7]; }
    get hasRegExpGroups() { return this.#hasRegExpGroups; }
    static {
      isURLPattern = (v) => isObject(v) && #patterns in v;
    }

    test(input = undefined, baseURL = undefined) {
      return this.#match(input, baseURL, arguments.length >= 2, false) !== null;
    }
    exec(input = undefined, baseURL = undefined) {
      return this.#match(input, baseURL, arguments.length >= 2, true);
    }
    // The spec's "match": null when the input does not parse or a component
    // does not match; else the result (built only when `build`).
    #match(input, baseURL, hasBase, build) {
      const inp = convertInput(input);
      const base = hasBase && baseURL !== undefined ? usv(baseURL) : undefined;
      const values = ops.urlpatternMatchInput(inp.native, base);
      if (values === null) return null;
      const found = newArray();
      for (let i = 0; i < 8; i++) {
        const m = RegExpPrototypeExec(this.#regexps[i], values[i]);
        if (m === null) return null;
        append(found, m);
      }
      if (!build) return true;
      const result = {};
      const inputs = newArray();
      append(inputs, inp.given);
      if (base !== undefined) append(inputs, base);
      define(result, "inputs", inputs);
      for (let i = 0; i < 8; i++) {
        const groups = {};
        const names = this.#names[i];
        for (let g = 0; g < names.length; g++) define(groups, names[g], found[i][g + 1]);
        const component = {};
        define(component, "input", values[i]);
        define(component, "groups", groups);
        define(result, COMPONENTS[i], component);
      }
      return result;
    }
  }
  const define = (o, k, value) =>
    ObjectDefineProperty(o, k, { __proto__: null, value, writable: true, enumerable: true, configurable: true });
  ObjectDefineProperty(URLPattern.prototype, SymbolToStringTag, { __proto__: null, value: "URLPattern", configurable: true });
  web.__addPlatformCheck(isURLPattern);
  web.URLPattern = URLPattern;
});
