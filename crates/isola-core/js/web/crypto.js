// Web Cryptography (W3C WebCrypto): Crypto (getRandomValues, randomUUID),
// CryptoKey and SubtleCrypto. This file holds the generic steps of each
// SubtleCrypto method (argument conversion, algorithm normalization, the
// key's algorithm and usage checks, the empty-usages rule) and the shared
// helpers; the algorithms themselves (SHA-*, HMAC, ECDSA, Ed25519,
// AES-GCM, PBKDF2, HKDF) are in crypto_algorithms.js, loaded with it. Random
// bytes come from the kernel (ops.randomFill); the byte work is native
// (runtime/ops_web.rs digest, runtime/ops_crypto.rs the rest); results are
// allocated through the tenant's counted ArrayBuffer allocator.
//
// A lazy area (snapshot.rs LAZY_SOURCES): called as (ops, P, web) on the
// first use of crypto, Crypto, CryptoKey or SubtleCrypto, after tenant code
// ran, so every built-in comes from the primordials. A key's material lives
// in its private record (#s), which tenant code cannot reach.
//
// Divergences: no RSA, AES-CBC/CTR/KW, ECDH, X25519 or P-521; no
// wrapKey/unwrapKey; the newer "raw-public"/"raw-secret"/"raw-seed"
// formats are not recognized. A digest's or signature's input is at most
// 32 MiB (hashed at once); PBKDF2 runs in native steps of 20,000
// iterations, so the tenant's CPU limit bounds it; PBKDF2/HKDF key
// material, salt and info are at most 16 KiB, derived bits at most 16320
// bytes (beyond, an OperationError names the cap); HMAC keys generated without a length are the hash's block size and
// lengths must be multiples of 8, at most 8192 bits; AES-GCM refuses an
// empty IV (OperationError); an AES-GCM generateKey length other than
// 128/192/256 rejects at once (with the parameters, as browsers do, not
// after a microtask); the curve of ECDSA parameters is checked with them
// too (NotSupportedError). ECDSA signatures are RFC 6979 nonces hedged
// with fresh randomness. Signatures and key generation run on the calling
// thread, within the tenant's CPU budget; only the settling is deferred.
(function crypto(ops, P, web) {
  "use strict";
  const { ObjectDefineProperty, ObjectFreeze, PromiseReject, PromiseResolve, String, TypeError, Uint8Array } = P;
  const { TypedArrayPrototypeGetByteLength, TypedArrayPrototypeGetSymbolToStringTag, ArrayBufferIsView, TypedArrayPrototypeGetBuffer } = P;
  const { toBytes, newArray, append, ArrayPrototypeIndexOf, sequence } = P;
  const I = P.intrinsic;
  const StringFromCharCode = I("String.fromCharCode");
  const StringPrototypeCharCodeAt = I("String.prototype.charCodeAt");
  const NumberPrototypeToString = I("Number.prototype.toString");
  const NumberIsFinite = I("Number.isFinite");
  const MathTrunc = I("Math.trunc");
  const SymbolToStringTag = I("Symbol.toStringTag");
  const DOMException = web.DOMException;
  const kCreate = { __proto__: null };
  const kKey = { __proto__: null };

  const INTEGER_ARRAYS = {
    __proto__: null,
    Int8Array: true,
    Uint8Array: true,
    Uint8ClampedArray: true,
    Int16Array: true,
    Uint16Array: true,
    Int32Array: true,
    Uint32Array: true,
    BigInt64Array: true,
    BigUint64Array: true,
  };
  const MAX_RANDOM = 65536;

  // "00".."ff", built once.
  const HEX = newArray();
  for (let i = 0; i < 256; i++) append(HEX, (i < 16 ? "0" : "") + NumberPrototypeToString(i, 16));

  // ---------- shared helpers (also for crypto_algorithms.js) ----------
  // (Members are defined, not assigned: a tenant's setter on
  // Object.prototype must not see them.)
  const dataProp = (o, k, v) => ObjectDefineProperty(o, k, { __proto__: null, value: v, writable: true, enumerable: true, configurable: true });
  const error = (name, message) => new DOMException(message, name);
  const copyBytes = (u8) => {
    const c = new Uint8Array(TypedArrayPrototypeGetByteLength(u8));
    for (let i = 0; i < c.length; i++) c[i] = u8[i];
    return c;
  };
  const bufferOf = (u8) => TypedArrayPrototypeGetBuffer(copyBytes(u8));
  const sameBytes = (a, b) => {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  };
  // ASCII upper case (the spec matches algorithm names ASCII
  // case-insensitively: no "ſ" matching "S").
  const asciiUpper = (s) => {
    let out = "";
    for (let i = 0; i < s.length; i++) {
      const c = StringPrototypeCharCodeAt(s, i);
      out += StringFromCharCode(c >= 0x61 && c <= 0x7a ? c - 32 : c);
    }
    return out;
  };
  // A WebIDL integer with [EnforceRange] (TypeError outside 0..max).
  const enforceRange = (v, max, what) => {
    const n = +v;
    if (!NumberIsFinite(n)) throw new TypeError(`${what} is not a finite number.`);
    const t = MathTrunc(n);
    if (t < 0 || t > max) throw new TypeError(`${what} is outside the range 0..${max}.`);
    return t;
  };
  // A required BufferSource member of an algorithm dictionary, copied.
  const bufferMember = (dict, key, dictName, required) => {
    const v = dict[key];
    if (v === undefined) {
      if (required) throw new TypeError(`${dictName}: required member ${key} is undefined.`);
      return undefined;
    }
    const b = toBytes(v);
    if (b === undefined) throw new TypeError(`${dictName}: ${key} is not a BufferSource.`);
    return copyBytes(b);
  };

  // base64url <-> bytes (JWK members), character by character
  // (String.prototype.replace would look up RegExp.prototype[Symbol.replace],
  // which a tenant can patch).
  const translate = (s, from1, to1, from2, to2, dropPad) => {
    let out = "";
    for (let i = 0; i < s.length; i++) {
      const c = StringPrototypeCharCodeAt(s, i);
      if (dropPad && c === 0x3d) break;
      out += c === from1 ? to1 : c === from2 ? to2 : StringFromCharCode(c);
    }
    return out;
  };
  const toBase64url = (u8) => {
    let bin = "";
    for (let i = 0; i < u8.length; i++) bin += StringFromCharCode(u8[i]);
    return translate(ops.btoa(bin), 0x2b, "-", 0x2f, "_", true);
  };
  const fromBase64url = (s, member) => {
    if (typeof s !== "string") throw error("DataError", `The JWK member "${member}" is missing.`);
    for (let i = 0; i < s.length; i++) {
      // base64url only: "+", "/" and "=" are not in its alphabet.
      const c = StringPrototypeCharCodeAt(s, i);
      if (c === 0x2b || c === 0x2f || c === 0x3d) throw error("DataError", `The JWK member "${member}" is not valid base64url.`);
    }
    const bin = ops.atob(translate(s, 0x2d, "+", 0x5f, "/", false));
    if (bin === null) throw error("DataError", `The JWK member "${member}" is not valid base64url.`);
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = StringPrototypeCharCodeAt(bin, i);
    return u8;
  };

  // ---------- usages ----------
  const KEY_USAGES = ["encrypt", "decrypt", "sign", "verify", "deriveKey", "deriveBits", "wrapKey", "unwrapKey"];
  const has = (list, v) => ArrayPrototypeIndexOf(list, v) >= 0;
  // WebIDL sequence<KeyUsage>: an unknown string is a TypeError.
  const usagesOf = (usages, what) => {
    const list = sequence(usages, `Failed to execute '${what}' on 'SubtleCrypto': keyUsages`);
    const out = newArray();
    for (let i = 0; i < list.length; i++) {
      const u = String(list[i]);
      if (!has(KEY_USAGES, u)) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': '${u}' is not a valid KeyUsage.`);
      append(out, u);
    }
    return out;
  };
  // The usages of `usages` also in `allowed`, in KeyUsage order, once each.
  const intersect = (usages, allowed) => {
    const out = newArray();
    for (let i = 0; i < KEY_USAGES.length; i++) if (has(usages, KEY_USAGES[i]) && has(allowed, KEY_USAGES[i])) append(out, KEY_USAGES[i]);
    return out;
  };
  const checkUsages = (usages, allowed, algName) => {
    for (let i = 0; i < usages.length; i++) {
      if (!has(allowed, usages[i])) throw error("SyntaxError", `Cannot create a key with usage '${usages[i]}' for ${algName}.`);
    }
  };

  // ---------- JWK ----------
  // The JsonWebKey dictionary members, in the order WebIDL reads and writes them.
  const JWK_STRINGS = ["alg", "crv", "d", "dp", "dq", "e", "k", "kty", "n", "p", "q", "qi", "use", "x", "y"];
  const JWK_ORDER = ["alg", "crv", "d", "dp", "dq", "e", "ext", "k", "key_ops", "kty", "n", "p", "q", "qi", "use", "x", "y"];
  // Reads a tenant's JsonWebKey once (getters run once, in order).
  const readJwk = (v) => {
    if (v === null || typeof v !== "object") throw new TypeError("Failed to execute 'importKey' on 'SubtleCrypto': a JWK must be an object.");
    const out = { __proto__: null };
    for (let i = 0; i < JWK_ORDER.length; i++) {
      const m = JWK_ORDER[i];
      const x = v[m];
      if (x === undefined) continue;
      if (m === "ext") out.ext = !!x;
      else if (m === "key_ops") {
        const list = sequence(x, "JsonWebKey: key_ops");
        const ops2 = newArray();
        for (let j = 0; j < list.length; j++) append(ops2, String(list[j]));
        out.key_ops = ops2;
      } else if (has(JWK_STRINGS, m)) out[m] = String(x);
    }
    return out;
  };
  // The checks every JWK import makes (kty, use, key_ops, ext).
  const checkJwk = (jwk, kty, use, usages, extractable) => {
    if (jwk.kty !== kty) throw error("DataError", `The JWK "kty" member was not "${kty}".`);
    if (usages.length > 0 && jwk.use !== undefined && jwk.use !== use) throw error("DataError", `The JWK "use" member was not "${use}".`);
    if (jwk.key_ops !== undefined) {
      const k = jwk.key_ops;
      for (let i = 0; i < k.length; i++) {
        if (ArrayPrototypeIndexOf(k, k[i]) !== i) throw error("DataError", `The JWK "key_ops" member has '${k[i]}' twice.`);
      }
      for (let i = 0; i < usages.length; i++) {
        if (!has(k, usages[i])) throw error("DataError", `The JWK "key_ops" member does not allow '${usages[i]}'.`);
      }
    }
    if (jwk.ext === false && extractable) throw error("DataError", 'The JWK "ext" member was false but the key is extractable.');
  };
  // An exported JWK: an ordinary object with the members in WebIDL order.
  const jwkOut = (rec) => {
    const o = {};
    for (let i = 0; i < JWK_ORDER.length; i++) {
      const m = JWK_ORDER[i];
      if (rec[m] !== undefined) dataProp(o, m, rec[m]);
    }
    return o;
  };

  // ---------- CryptoKey ----------
  let keyState; // (k) => its record, or undefined
  // The algorithm record as the ordinary object `key.algorithm` returns.
  const algorithmObject = (a) => {
    const o = { name: a.name };
    if (a.namedCurve !== undefined) dataProp(o, "namedCurve", a.namedCurve);
    if (a.length !== undefined) dataProp(o, "length", a.length);
    if (a.hash !== undefined) dataProp(o, "hash", { name: a.hash.name });
    return o;
  };

  class CryptoKey {
    #s;
    #algorithm;
    #usages;
    constructor(key = undefined, state = undefined) {
      if (key !== kKey) throw new TypeError("Illegal constructor");
      this.#s = state;
      this.#algorithm = algorithmObject(state.algorithm);
      const u = newArray();
      for (let i = 0; i < state.usages.length; i++) append(u, state.usages[i]);
      this.#usages = u;
    }
    get type() {
      return this.#s.type;
    }
    get extractable() {
      return this.#s.extractable;
    }
    get algorithm() {
      return this.#algorithm;
    }
    get usages() {
      return this.#usages;
    }
    static {
      keyState = (k) => (k !== null && typeof k === "object" && #s in k ? k.#s : undefined);
    }
  }
  ObjectDefineProperty(CryptoKey.prototype, SymbolToStringTag, { __proto__: null, value: "CryptoKey", configurable: true });

  // A new key. `material` is the key's bytes (secret, private scalar or
  // seed, public point); `pub` a private key's public part.
  const newKey = (type, algorithm, extractable, usages, material, pub = undefined) =>
    new CryptoKey(kKey, ObjectFreeze({ __proto__: null, type, algorithm, extractable: !!extractable, usages, material, pub }));

  // ---------- algorithm normalization ----------
  // op -> ASCII-upper-cased name -> algorithm (filled by crypto_algorithms.js).
  const REGISTERED = { __proto__: null };
  const OPS = ["digest", "sign", "verify", "generateKey", "importKey", "exportKey", "encrypt", "decrypt", "deriveBits", "getKeyLength"];
  for (let i = 0; i < OPS.length; i++) REGISTERED[OPS[i]] = { __proto__: null };
  const register = (alg) => {
    for (let i = 0; i < OPS.length; i++) {
      if (alg[OPS[i]] !== undefined) REGISTERED[OPS[i]][asciiUpper(alg.name)] = alg;
    }
  };
  // WebCrypto "normalize an algorithm": the algorithm for `op` and its
  // parameters, read once from the tenant's dictionary.
  const normalize = (op, algorithm, what) => {
    let dict;
    let name;
    if (algorithm !== null && (typeof algorithm === "object" || typeof algorithm === "function")) {
      dict = algorithm;
      const n = algorithm.name;
      if (n === undefined) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': Algorithm: name is missing.`);
      name = String(n);
    } else {
      dict = { __proto__: null };
      name = String(algorithm);
    }
    const alg = REGISTERED[op][asciiUpper(name)];
    if (alg === undefined) throw error("NotSupportedError", `Unrecognized algorithm name '${name}' for ${what}.`);
    const rec = { __proto__: null, name: alg.name, alg };
    const params = alg.params === undefined ? undefined : alg.params[op];
    if (params !== undefined) params(dict, rec);
    return rec;
  };
  const hashMember = (dict, dictName) => {
    const h = dict.hash;
    if (h === undefined) throw new TypeError(`${dictName}: required member hash is undefined.`);
    return normalize("digest", h, "digest").alg;
  };

  // ---------- SubtleCrypto ----------
  // A method's two phases, as in the spec: `prepare` converts the
  // arguments and normalizes the algorithm (its errors reject the promise
  // at once) and returns the operation, which the spec runs in parallel:
  // it runs now too (the inputs are already copied, the natives are
  // bounded), but its result or error settles the promise one microtask
  // later, after any reaction the caller queued right after the call.
  const PromisePrototypeThen = I("Promise.prototype.then");
  const asyncly = (prepare) => {
    let operation;
    try {
      operation = prepare();
    } catch (e) {
      return PromiseReject(e);
    }
    let result;
    try {
      result = operation();
    } catch (e) {
      return PromisePrototypeThen(PromiseResolve(undefined), () => {
        throw e;
      });
    }
    return PromisePrototypeThen(PromiseResolve(undefined), () => result);
  };
  const need = (args, n, what) => {
    if (args.length < n) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': ${n} arguments required, but only ${args.length} present.`);
  };
  const keyArg = (key, what) => {
    const s = keyState(key);
    if (s === undefined) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': parameter is not of type 'CryptoKey'.`);
    return s;
  };
  const dataArg = (data, what) => {
    const b = toBytes(data);
    if (b === undefined) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': The provided value is not of type '(ArrayBuffer or ArrayBufferView)'.`);
    return copyBytes(b);
  };
  // The key may do `usage` with the normalized algorithm `norm`.
  const checkKey = (s, norm, usage) => {
    if (s.algorithm.name !== norm.name) throw error("InvalidAccessError", `The key is a ${s.algorithm.name} key, not ${norm.name}.`);
    if (!has(s.usages, usage)) throw error("InvalidAccessError", `The key does not allow '${usage}'.`);
  };
  const FORMATS = ["raw", "spki", "pkcs8", "jwk"];
  const formatArg = (format, what) => {
    const f = String(format);
    if (!has(FORMATS, f)) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': '${f}' is not a valid KeyFormat.`);
    return f;
  };
  const lengthArg = (length) => {
    if (length === undefined || length === null) return null;
    const n = +length;
    return NumberIsFinite(n) ? MathTrunc(n) % 4294967296 >>> 0 : 0;
  };
  const importKey = (format, keyData, norm, extractable, usages) => {
    const key = norm.alg.importKey(format, keyData, norm, !!extractable, usages);
    const s = keyState(key);
    if ((s.type === "secret" || s.type === "private") && s.usages.length === 0) {
      throw error("SyntaxError", "Usages cannot be empty when creating a key.");
    }
    return key;
  };

  class SubtleCrypto {
    constructor(key = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
    }
    encrypt(algorithm, key, data) {
      return asyncly(() => {
        need(arguments, 3, "encrypt");
        const s = keyArg(key, "encrypt");
        const bytes = dataArg(data, "encrypt");
        const norm = normalize("encrypt", algorithm, "encrypt");
        return () => {
          checkKey(s, norm, "encrypt");
          return norm.alg.encrypt(norm, s, bytes);
        };
      });
    }
    decrypt(algorithm, key, data) {
      return asyncly(() => {
        need(arguments, 3, "decrypt");
        const s = keyArg(key, "decrypt");
        const bytes = dataArg(data, "decrypt");
        const norm = normalize("decrypt", algorithm, "decrypt");
        return () => {
          checkKey(s, norm, "decrypt");
          return norm.alg.decrypt(norm, s, bytes);
        };
      });
    }
    sign(algorithm, key, data) {
      return asyncly(() => {
        need(arguments, 3, "sign");
        const s = keyArg(key, "sign");
        const bytes = dataArg(data, "sign");
        const norm = normalize("sign", algorithm, "sign");
        return () => {
          checkKey(s, norm, "sign");
          return norm.alg.sign(norm, s, bytes);
        };
      });
    }
    verify(algorithm, key, signature, data) {
      return asyncly(() => {
        need(arguments, 4, "verify");
        const s = keyArg(key, "verify");
        const sig = dataArg(signature, "verify");
        const bytes = dataArg(data, "verify");
        const norm = normalize("verify", algorithm, "verify");
        return () => {
          checkKey(s, norm, "verify");
          return norm.alg.verify(norm, s, sig, bytes);
        };
      });
    }
    digest(algorithm, data) {
      return asyncly(() => {
        need(arguments, 2, "digest");
        const bytes = toBytes(data);
        if (bytes === undefined) throw new TypeError("Failed to execute 'digest' on 'SubtleCrypto': The provided value is not of type '(ArrayBuffer or ArrayBufferView)'.");
        const norm = normalize("digest", algorithm, "digest");
        const copy = copyBytes(bytes);
        return () => ops.digest(norm.alg.id, copy);
      });
    }
    generateKey(algorithm, extractable, keyUsages) {
      return asyncly(() => {
        need(arguments, 3, "generateKey");
        const usages = usagesOf(keyUsages, "generateKey");
        const norm = normalize("generateKey", algorithm, "generateKey");
        return () => {
          const result = norm.alg.generateKey(norm, !!extractable, usages);
          const s = keyState(result);
          const priv = s === undefined ? keyState(result.privateKey) : s.type === "secret" ? s : undefined;
          if (priv !== undefined && priv.usages.length === 0) throw error("SyntaxError", "Usages cannot be empty when creating a key.");
          return result;
        };
      });
    }
    importKey(format, keyData, algorithm, extractable, keyUsages) {
      return asyncly(() => {
        need(arguments, 5, "importKey");
        const f = formatArg(format, "importKey");
        const usages = usagesOf(keyUsages, "importKey");
        const norm = normalize("importKey", algorithm, "importKey");
        let data;
        if (f === "jwk") data = readJwk(keyData);
        else {
          const b = toBytes(keyData);
          if (b === undefined) throw new TypeError(`Failed to execute 'importKey' on 'SubtleCrypto': ${f} key data must be an ArrayBuffer or ArrayBufferView.`);
          data = copyBytes(b);
        }
        return () => importKey(f, data, norm, extractable, usages);
      });
    }
    exportKey(format, key) {
      return asyncly(() => {
        need(arguments, 2, "exportKey");
        const f = formatArg(format, "exportKey");
        const s = keyArg(key, "exportKey");
        return () => {
          const alg = REGISTERED.exportKey[asciiUpper(s.algorithm.name)];
          if (alg === undefined) throw error("NotSupportedError", `${s.algorithm.name} keys cannot be exported.`);
          if (!s.extractable) throw error("InvalidAccessError", "The key is not extractable.");
          return alg.exportKey(f, s);
        };
      });
    }
    deriveBits(algorithm, baseKey, length = null) {
      return asyncly(() => {
        need(arguments, 2, "deriveBits");
        const s = keyArg(baseKey, "deriveBits");
        const n = lengthArg(length);
        const norm = normalize("deriveBits", algorithm, "deriveBits");
        return () => {
          checkKey(s, norm, "deriveBits");
          return norm.alg.deriveBits(norm, s, n);
        };
      });
    }
    deriveKey(algorithm, baseKey, derivedKeyType, extractable, keyUsages) {
      return asyncly(() => {
        need(arguments, 5, "deriveKey");
        const s = keyArg(baseKey, "deriveKey");
        const usages = usagesOf(keyUsages, "deriveKey");
        const norm = normalize("deriveBits", algorithm, "deriveKey");
        const importNorm = normalize("importKey", derivedKeyType, "deriveKey");
        const lengthNorm = normalize("getKeyLength", derivedKeyType, "deriveKey");
        return () => {
          checkKey(s, norm, "deriveKey");
          const length = lengthNorm.alg.getKeyLength(lengthNorm);
          const secret = norm.alg.deriveBits(norm, s, length);
          return importKey("raw", new Uint8Array(secret), importNorm, extractable, usages);
        };
      });
    }
  }
  ObjectDefineProperty(SubtleCrypto.prototype, SymbolToStringTag, { __proto__: null, value: "SubtleCrypto", configurable: true });
  const subtle = new SubtleCrypto(kCreate);

  class Crypto {
    constructor(key = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
    }
    get subtle() {
      return subtle;
    }
    getRandomValues(array) {
      if (arguments.length < 1) throw new TypeError("Failed to execute 'getRandomValues' on 'Crypto': 1 argument required, but only 0 present.");
      const tag = ArrayBufferIsView(array) ? TypedArrayPrototypeGetSymbolToStringTag(array) : undefined;
      if (tag === undefined || INTEGER_ARRAYS[tag] !== true) {
        throw new DOMException("Failed to execute 'getRandomValues' on 'Crypto': The provided ArrayBufferView is not an integer array type.", "TypeMismatchError");
      }
      const n = TypedArrayPrototypeGetByteLength(array);
      if (n > MAX_RANDOM) {
        throw new DOMException(`Failed to execute 'getRandomValues' on 'Crypto': The ArrayBufferView's byte length (${n}) exceeds the number of bytes of entropy available via this API (${MAX_RANDOM}).`, "QuotaExceededError");
      }
      ops.randomFill(array);
      return array;
    }
    randomUUID() {
      const b = new Uint8Array(16);
      ops.randomFill(b);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      let s = "";
      for (let i = 0; i < 16; i++) {
        if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
        s += HEX[b[i]];
      }
      return s;
    }
  }
  ObjectDefineProperty(Crypto.prototype, SymbolToStringTag, { __proto__: null, value: "Crypto", configurable: true });

  // The algorithms, given the helpers above.
  web.__cryptoKit = ObjectFreeze({
    __proto__: null,
    error, copyBytes, bufferOf, sameBytes, enforceRange, bufferMember, toBase64url, fromBase64url,
    intersect, checkUsages, checkJwk, jwkOut, newKey, register, hashMember, has,
  });
  web.__load("crypto_algorithms");

  web.Crypto = Crypto;
  web.CryptoKey = CryptoKey;
  web.__isCryptoKey = (v) => keyState(v) !== undefined;
  web.SubtleCrypto = SubtleCrypto;
  web.crypto = new Crypto(kCreate);
});
