// Web Cryptography: crypto.getRandomValues, crypto.randomUUID and
// crypto.subtle.digest (SHA-1, SHA-256, SHA-384, SHA-512). Random bytes come
// from the kernel (ops.randomFill), digests from the `sha1`/`sha2` crates
// (ops.digest); results are allocated through the tenant's counted
// ArrayBuffer allocator.
//
// Evaluated once in the snapshot creator, called as (ops, P, web) after
// events.js (DOMException). Built-ins are captured below.
//
// Divergences: SubtleCrypto has digest only so far (no keys: CryptoKey,
// sign/verify, encrypt/decrypt, import/export are not there yet); a digest's
// input is at most 32 MiB (hashed at once, on the tenant's CPU budget).
(function crypto(ops, P, web) {
  "use strict";
  const { ObjectDefineProperty, PromiseReject, PromiseResolve, String, TypeError, Uint8Array } = P;
  const { TypedArrayPrototypeGetByteLength, TypedArrayPrototypeGetSymbolToStringTag, ArrayBufferIsView } = P;
  const { toBytes, newArray, append } = P;
  const { bind, call } = Function.prototype;
  const uncurryThis = bind.bind(call);
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

  class SubtleCrypto {
    constructor(key = undefined) {
      if (key !== kCreate) throw new TypeError("Illegal constructor");
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
  web.SubtleCrypto = SubtleCrypto;
  web.crypto = new Crypto(kCreate);
});
