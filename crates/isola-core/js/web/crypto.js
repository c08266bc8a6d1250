// Web Cryptography: crypto.getRandomValues, crypto.randomUUID,
// crypto.subtle.digest (SHA-1, SHA-256, SHA-384, SHA-512), and HMAC keys
// (CryptoKey; subtle.importKey / exportKey in "raw" and "jwk", generateKey,
// sign, verify). Random bytes come from the kernel (ops.randomFill), digests
// and HMAC from the `sha1`/`sha2`/`hmac` crates (ops.digest, ops.hmacSign,
// ops.hmacVerify, which compares in constant time); results are allocated
// through the tenant's counted ArrayBuffer allocator.
//
// Evaluated once in the snapshot creator, called as (ops, P, web) after
// events.js (DOMException). Built-ins are captured below.
//
// Divergences: of the key algorithms only HMAC is there so far (no ECDSA,
// Ed25519, AES, RSA, PBKDF2, HKDF; no wrapKey/deriveBits); a digest's or
// signature's input is at most 32 MiB (hashed at once, on the tenant's CPU
// budget).
(function crypto(ops, P, web) {
  "use strict";
  const { ObjectDefineProperty, PromiseReject, PromiseResolve, String, TypeError, Uint8Array } = P;
  const { TypedArrayPrototypeGetByteLength, TypedArrayPrototypeGetSymbolToStringTag, ArrayBufferIsView, TypedArrayPrototypeGetBuffer } = P;
  const { toBytes, newArray, append, ArrayIsArray, ArrayPrototypeIndexOf, ObjectFreeze } = P;
  const { bind, call } = Function.prototype;
  const uncurryThis = bind.bind(call);
  const StringFromCharCode = String.fromCharCode;
  const StringPrototypeCharCodeAt = uncurryThis(String.prototype.charCodeAt);
  const StringPrototypeToUpperCase = uncurryThis(String.prototype.toUpperCase);
  const NumberPrototypeToString = uncurryThis(Number.prototype.toString);
  const DOMException = web.DOMException;
  const SymbolToStringTag = Symbol.toStringTag;
  const kCreate = { __proto__: null };

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

  const DIGESTS = { __proto__: null, "SHA-1": 1, "SHA-256": 256, "SHA-384": 384, "SHA-512": 512 };

  // ---------- keys ----------
  const kKey = { __proto__: null };
  const HASH_BITS = { __proto__: null, 1: 512, 256: 512, 384: 1024, 512: 1024 };
  const HASH_NAME = { __proto__: null, 1: "SHA-1", 256: "SHA-256", 384: "SHA-384", 512: "SHA-512" };
  const JWK_ALG = { __proto__: null, 1: "HS1", 256: "HS256", 384: "HS384", 512: "HS512" };
  const HMAC_USAGES = ["sign", "verify"];
  let keyState; // (k) => its record, or undefined

  class CryptoKey {
    #s;
    constructor(key = undefined, state = undefined) {
      if (key !== kKey) throw new TypeError("Illegal constructor");
      this.#s = state;
    }
    get type() {
      return this.#s.type;
    }
    get extractable() {
      return this.#s.extractable;
    }
    get algorithm() {
      const s = this.#s;
      return { name: "HMAC", hash: { name: HASH_NAME[s.hash] }, length: s.bytes.length * 8 };
    }
    get usages() {
      const out = newArray();
      for (let i = 0; i < this.#s.usages.length; i++) append(out, this.#s.usages[i]);
      return out;
    }
    static {
      keyState = (k) => (k !== null && typeof k === "object" && #s in k ? k.#s : undefined);
    }
  }
  ObjectDefineProperty(CryptoKey.prototype, SymbolToStringTag, { __proto__: null, value: "CryptoKey", configurable: true });

  const algName = (algorithm, what) => {
    const name = typeof algorithm === "string" ? algorithm : algorithm !== null && typeof algorithm === "object" ? algorithm.name : undefined;
    if (name === undefined) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': Algorithm: name is missing.`);
    return StringPrototypeToUpperCase(String(name));
  };
  const hashOf = (h, what) => {
    const alg = DIGESTS[algName(h, what)];
    if (alg === undefined) throw new DOMException(`Unrecognized hash: ${typeof h === "string" ? h : String(h && h.name)}`, "NotSupportedError");
    return alg;
  };
  const hmacParams = (algorithm, what) => {
    if (algName(algorithm, what) !== "HMAC") throw new DOMException(`Unrecognized algorithm name: ${typeof algorithm === "string" ? algorithm : String(algorithm && algorithm.name)}`, "NotSupportedError");
    if (typeof algorithm !== "object" || algorithm === null || algorithm.hash === undefined) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': HmacImportParams: hash is missing.`);
    const hash = hashOf(algorithm.hash, what);
    const length = algorithm.length === undefined ? undefined : +algorithm.length;
    return { hash, length };
  };
  const usagesOf = (usages, what) => {
    if (!ArrayIsArray(usages)) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': usages is not a sequence.`);
    const out = newArray();
    for (let i = 0; i < usages.length; i++) {
      const u = String(usages[i]);
      if (ArrayPrototypeIndexOf(HMAC_USAGES, u) < 0) throw new DOMException(`Cannot create a key with usage '${u}' for HMAC`, "SyntaxError");
      if (ArrayPrototypeIndexOf(out, u) < 0) append(out, u);
    }
    if (out.length === 0) throw new DOMException("Usages cannot be empty when creating a key.", "SyntaxError");
    return out;
  };
  const copyBytes = (u8) => {
    const c = new Uint8Array(TypedArrayPrototypeGetByteLength(u8));
    for (let i = 0; i < c.length; i++) c[i] = u8[i];
    return c;
  };
  const newKey = (bytes, hash, extractable, usages) =>
    new CryptoKey(kKey, ObjectFreeze({ __proto__: null, type: "secret", bytes, hash, extractable: !!extractable, usages }));

  // base64url <-> bytes (JWK "k"), character by character (String.prototype
  // .replace would look up RegExp.prototype[Symbol.replace], which a tenant
  // can patch).
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
  const fromBase64url = (s) => {
    const bin = ops.atob(translate(String(s), 0x2d, "+", 0x5f, "/", false));
    if (bin === null) throw new DOMException('The JWK member "k" is not valid base64url.', "DataError");
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = StringPrototypeCharCodeAt(bin, i);
    return u8;
  };

  const keyFor = (key, usage, what) => {
    const s = keyState(key);
    if (s === undefined) throw new TypeError(`Failed to execute '${what}' on 'SubtleCrypto': parameter 2 is not of type 'CryptoKey'.`);
    if (ArrayPrototypeIndexOf(s.usages, usage) < 0) throw new DOMException(`The key does not allow '${usage}'.`, "InvalidAccessError");
    return s;
  };
  const asyncly = (f) => {
    try {
      return PromiseResolve(f());
    } catch (e) {
      return PromiseReject(e);
    }
  };

  class SubtleCrypto {
    constructor(key = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
    }
    importKey(format, keyData, algorithm, extractable, usages) {
      return asyncly(() => {
        if (arguments.length < 5) throw new TypeError(`Failed to execute 'importKey' on 'SubtleCrypto': 5 arguments required, but only ${arguments.length} present.`);
        const { hash, length } = hmacParams(algorithm, "importKey");
        const u = usagesOf(usages, "importKey");
        let bytes;
        if (format === "raw") {
          const b = toBytes(keyData);
          if (b === undefined) throw new TypeError("Failed to execute 'importKey' on 'SubtleCrypto': raw key data must be an ArrayBuffer or ArrayBufferView.");
          bytes = copyBytes(b);
        } else if (format === "jwk") {
          if (keyData === null || typeof keyData !== "object") throw new TypeError("Failed to execute 'importKey' on 'SubtleCrypto': a JWK must be an object.");
          if (keyData.kty !== "oct") throw new DOMException("The JWK \"kty\" member was not \"oct\".", "DataError");
          if (typeof keyData.k !== "string") throw new DOMException("The JWK member \"k\" is missing.", "DataError");
          if (keyData.alg !== undefined && keyData.alg !== JWK_ALG[hash]) throw new DOMException(`The JWK "alg" member was inconsistent with that specified by the Web Crypto call (${JWK_ALG[hash]}).`, "DataError");
          if (keyData.ext === false && extractable) throw new DOMException("The JWK \"ext\" member was false but the key is extractable.", "DataError");
          bytes = fromBase64url(keyData.k);
        } else {
          throw new DOMException(`Unsupported key format for HMAC: ${String(format)}`, "NotSupportedError");
        }
        if (bytes.length === 0) throw new DOMException("HMAC key data must not be empty.", "DataError");
        if (length !== undefined && (length > bytes.length * 8 || length <= (bytes.length - 1) * 8)) {
          throw new DOMException("The length does not match the key data.", "DataError");
        }
        return newKey(bytes, hash, extractable, u);
      });
    }
    exportKey(format, key) {
      return asyncly(() => {
        const s = keyState(key);
        if (s === undefined) throw new TypeError("Failed to execute 'exportKey' on 'SubtleCrypto': parameter 2 is not of type 'CryptoKey'.");
        if (!s.extractable) throw new DOMException("The key is not extractable.", "InvalidAccessError");
        if (format === "raw") return TypedArrayPrototypeGetBuffer(copyBytes(s.bytes));
        if (format === "jwk") {
          return { kty: "oct", k: toBase64url(s.bytes), alg: JWK_ALG[s.hash], key_ops: key.usages, ext: true };
        }
        throw new DOMException(`Unsupported key format for HMAC: ${String(format)}`, "NotSupportedError");
      });
    }
    generateKey(algorithm, extractable, usages) {
      return asyncly(() => {
        if (arguments.length < 3) throw new TypeError(`Failed to execute 'generateKey' on 'SubtleCrypto': 3 arguments required, but only ${arguments.length} present.`);
        const { hash, length } = hmacParams(algorithm, "generateKey");
        const u = usagesOf(usages, "generateKey");
        const bits = length === undefined ? HASH_BITS[hash] : length;
        if (!(bits > 0) || bits > 8192 || bits % 8 !== 0) throw new DOMException("HMAC key length must be a positive multiple of 8, at most 8192.", "OperationError");
        const bytes = new Uint8Array(bits / 8);
        ops.randomFill(bytes);
        return newKey(bytes, hash, extractable, u);
      });
    }
    sign(algorithm, key, data) {
      return asyncly(() => {
        if (arguments.length < 3) throw new TypeError(`Failed to execute 'sign' on 'SubtleCrypto': 3 arguments required, but only ${arguments.length} present.`);
        if (algName(algorithm, "sign") !== "HMAC") throw new DOMException("Unrecognized algorithm name", "NotSupportedError");
        const s = keyFor(key, "sign", "sign");
        const bytes = toBytes(data);
        if (bytes === undefined) throw new TypeError("Failed to execute 'sign' on 'SubtleCrypto': data is not a BufferSource.");
        return ops.hmacSign(s.hash, s.bytes, bytes);
      });
    }
    verify(algorithm, key, signature, data) {
      return asyncly(() => {
        if (arguments.length < 4) throw new TypeError(`Failed to execute 'verify' on 'SubtleCrypto': 4 arguments required, but only ${arguments.length} present.`);
        if (algName(algorithm, "verify") !== "HMAC") throw new DOMException("Unrecognized algorithm name", "NotSupportedError");
        const s = keyFor(key, "verify", "verify");
        const sig = toBytes(signature);
        const bytes = toBytes(data);
        if (sig === undefined || bytes === undefined) throw new TypeError("Failed to execute 'verify' on 'SubtleCrypto': signature and data must be BufferSources.");
        return ops.hmacVerify(s.hash, s.bytes, bytes, sig);
      });
    }
    digest(algorithm, data) {
      try {
        if (arguments.length < 2) throw new TypeError(`Failed to execute 'digest' on 'SubtleCrypto': 2 arguments required, but only ${arguments.length} present.`);
        const name = typeof algorithm === "string" ? algorithm : algorithm !== null && typeof algorithm === "object" ? algorithm.name : undefined;
        if (name === undefined) throw new TypeError("Failed to execute 'digest' on 'SubtleCrypto': Algorithm: name is missing.");
        const alg = DIGESTS[StringPrototypeToUpperCase(String(name))];
        if (alg === undefined) throw new DOMException(`Unrecognized algorithm name: ${String(name)}`, "NotSupportedError");
        const bytes = toBytes(data);
        if (bytes === undefined) throw new TypeError("Failed to execute 'digest' on 'SubtleCrypto': The provided value is not of type '(ArrayBuffer or ArrayBufferView)'.");
        return PromiseResolve(ops.digest(alg, bytes));
      } catch (e) {
        return PromiseReject(e);
      }
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

  web.Crypto = Crypto;
  web.CryptoKey = CryptoKey;
  web.__isCryptoKey = (v) => keyState(v) !== undefined;
  web.SubtleCrypto = SubtleCrypto;
  web.crypto = new Crypto(kCreate);
});
