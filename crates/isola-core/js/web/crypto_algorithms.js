// The algorithms of crypto.subtle (W3C WebCrypto): SHA-1/256/384/512,
// HMAC, ECDSA (P-256, P-384), Ed25519, AES-GCM, PBKDF2 and HKDF. Each is an
// object with the name, the parameter readers per operation (`params`,
// which fill the normalized record from the tenant's dictionary) and the
// algorithm-specific steps of the spec (generateKey, importKey, exportKey,
// sign, verify, encrypt, decrypt, deriveBits, getKeyLength), registered
// with crypto.js, which runs the generic steps. The byte work is native
// (runtime/ops_crypto.rs); a key's material is in its private record.
//
// A lazy area with no globals of its own: crypto.js loads it (with the
// helpers in web.__cryptoKit) when crypto is first used, after tenant code,
// so every built-in comes from the primordials.
(function cryptoAlgorithms(ops, P, web) {
  "use strict";
  const { String, TypeError, TypedArrayPrototypeSet, Uint8Array } = P;
  const I = P.intrinsic;
  const TypedArrayPrototypeSubarray = I("TypedArray.prototype.subarray");
  const MathCeil = I("Math.ceil");
  const K = web.__cryptoKit;
  const { error, copyBytes, bufferOf, sameBytes, enforceRange, bufferMember, toBase64url, fromBase64url } = K;
  const { intersect, checkUsages, checkJwk, jwkOut, newKey, register, hashMember, has } = K;

  // Native key formats and curve numbers (ops_crypto.rs).
  const RAW_PUBLIC = 0;
  const SPKI = 1;
  const PKCS8 = 2;
  const PRIVATE_SCALAR = 3;
  const PBKDF2_STEP = 20000; // iterations per native call (runtime/ops_pbkdf2.rs)
  const MAX_KDF_INPUT = 16384;
  const MAX_DERIVED_BYTES = 16320;

  const slice = (u8, from, to) => copyBytes(TypedArrayPrototypeSubarray(u8, from, to));
  const bytesOrNull = (ab) => (ab === null ? null : new Uint8Array(ab));
  const notSupportedFormat = (format, name) => error("NotSupportedError", `Unsupported key format for ${name}: ${format}`);

  // ---------- digests ----------
  const sha = (name, id, blockBits, length) => ({ __proto__: null, name, id, blockBits, length, digest: true });
  const SHA1 = sha("SHA-1", 1, 512, 20);
  const HASHES = [SHA1, sha("SHA-256", 256, 512, 32), sha("SHA-384", 384, 1024, 48), sha("SHA-512", 512, 1024, 64)];
  for (let i = 0; i < HASHES.length; i++) register(HASHES[i]);

  // ---------- HMAC ----------
  const HMAC_JWK_ALG = { __proto__: null, 1: "HS1", 256: "HS256", 384: "HS384", 512: "HS512" };
  const hmacKeyParams = (dict, rec) => {
    rec.hash = hashMember(dict, "HmacKeyParams");
    const length = dict.length;
    rec.length = length === undefined ? undefined : enforceRange(length, 4294967295, "HmacKeyParams: length");
  };
  const hmacKey = (bytes, hash, extractable, usages) =>
    newKey("secret", { __proto__: null, name: "HMAC", hash, length: bytes.length * 8 }, extractable, usages, bytes);
  register({
    __proto__: null,
    name: "HMAC",
    params: { __proto__: null, generateKey: hmacKeyParams, importKey: hmacKeyParams, getKeyLength: hmacKeyParams },
    generateKey(norm, extractable, usages) {
      checkUsages(usages, ["sign", "verify"], "HMAC");
      const bits = norm.length === undefined ? norm.hash.blockBits : norm.length;
      if (!(bits > 0) || bits > 8192 || bits % 8 !== 0) throw error("OperationError", "HMAC key length must be a positive multiple of 8, at most 8192.");
      const bytes = new Uint8Array(bits / 8);
      ops.randomFill(bytes);
      return hmacKey(bytes, norm.hash, extractable, intersect(usages, ["sign", "verify"]));
    },
    importKey(format, data, norm, extractable, usages) {
      checkUsages(usages, ["sign", "verify"], "HMAC");
      let bytes;
      if (format === "raw") bytes = data;
      else if (format === "jwk") {
        checkJwk(data, "oct", "sig", usages, extractable);
        bytes = fromBase64url(data.k, "k");
        const alg = HMAC_JWK_ALG[norm.hash.id];
        if (data.alg !== undefined && data.alg !== alg) throw error("DataError", `The JWK "alg" member was inconsistent with that specified by the Web Crypto call (${alg}).`);
      } else throw notSupportedFormat(format, "HMAC");
      if (bytes.length === 0) throw error("DataError", "HMAC key data must not be empty.");
      if (norm.length !== undefined && (norm.length > bytes.length * 8 || norm.length <= (bytes.length - 1) * 8)) {
        throw error("DataError", "The length does not match the key data.");
      }
      return hmacKey(bytes, norm.hash, extractable, intersect(usages, ["sign", "verify"]));
    },
    exportKey(format, s) {
      if (format === "raw") return bufferOf(s.material);
      if (format === "jwk") {
        return jwkOut({ __proto__: null, kty: "oct", k: toBase64url(s.material), alg: HMAC_JWK_ALG[s.algorithm.hash.id], key_ops: intersect(s.usages, s.usages), ext: s.extractable });
      }
      throw notSupportedFormat(format, "HMAC");
    },
    sign: (norm, s, data) => ops.hmacSign(s.algorithm.hash.id, s.material, data),
    verify: (norm, s, sig, data) => ops.hmacVerify(s.algorithm.hash.id, s.material, data, sig),
    getKeyLength(norm) {
      if (norm.length === undefined) return norm.hash.blockBits;
      if (norm.length === 0) throw new TypeError("HmacImportParams: length must not be 0.");
      return norm.length;
    },
  });

  // ---------- ECDSA and Ed25519 ----------
  // namedCurve -> [native curve number, field bytes, JWK "alg"].
  const CURVES = { __proto__: null, "P-256": [256, 32, "ES256"], "P-384": [384, 48, "ES384"] };
  const curveOf = (dict, rec, dictName) => {
    const c = dict.namedCurve;
    if (c === undefined) throw new TypeError(`${dictName}: required member namedCurve is undefined.`);
    rec.namedCurve = String(c);
    if (CURVES[rec.namedCurve] === undefined) throw error("NotSupportedError", `Unsupported namedCurve: ${rec.namedCurve}`);
  };
  // A pair (or one key) of `name` from `d || public` bytes of `dLen`.
  // (A CryptoKeyPair is an ordinary object.)
  const signingPair = (algorithm, bytes, dLen, extractable, usages) => ({
    publicKey: newKey("public", algorithm, true, intersect(usages, ["verify"]), slice(bytes, dLen, bytes.length)),
    privateKey: newKey("private", algorithm, extractable, intersect(usages, ["sign"]), slice(bytes, 0, dLen), slice(bytes, dLen, bytes.length)),
  });
  // Key data longer than the natives take (16 KiB) is no valid key.
  const keyData = (data, what) => {
    if (data.length > MAX_KDF_INPUT) throw error("DataError", `Invalid ${what} key data: longer than ${MAX_KDF_INPUT} bytes.`);
    return data;
  };
  const imported = (bytes, what) => {
    if (bytes === null) throw error("DataError", `Invalid ${what} key data.`);
    return new Uint8Array(bytes);
  };

  // The steps ECDSA and Ed25519 share: `curve` the native curve number,
  // `dLen` the private key length, `kty`/`crv` the JWK's.
  const signatureAlgorithm = (name, params, algorithmOf, curveInfo, checkJwkAlg) => ({
    __proto__: null,
    name,
    params,
    generateKey(norm, extractable, usages) {
      checkUsages(usages, ["sign", "verify"], name);
      const curve = curveInfo(norm)[0];
      const dLen = curveInfo(norm)[1];
      const bytes = ops.keyGenerate(curve);
      if (bytes === null) throw error("OperationError", "The system's random source failed.");
      return signingPair(algorithmOf(norm), new Uint8Array(bytes), dLen, extractable, usages);
    },
    importKey(format, data, norm, extractable, usages) {
      const curve = curveInfo(norm)[0];
      const dLen = curveInfo(norm)[1];
      const algorithm = algorithmOf(norm);
      const publicKey = (bytes) => newKey("public", algorithm, extractable, intersect(usages, ["verify"]), bytes);
      const privateKey = (bytes) =>
        newKey("private", algorithm, extractable, intersect(usages, ["sign"]), slice(bytes, 0, dLen), slice(bytes, dLen, bytes.length));
      if (format === "spki" || format === "raw") {
        checkUsages(usages, ["verify"], name);
        return publicKey(imported(ops.keyImport(curve, format === "raw" ? RAW_PUBLIC : SPKI, keyData(data, name)), `${name} ${format}`));
      }
      if (format === "pkcs8") {
        checkUsages(usages, ["sign"], name);
        return privateKey(imported(ops.keyImport(curve, PKCS8, keyData(data, name)), `${name} pkcs8`));
      }
      if (format !== "jwk") throw notSupportedFormat(format, name);
      checkUsages(usages, data.d !== undefined ? ["sign"] : ["verify"], name);
      const kty = curve === 25519 ? "OKP" : "EC";
      checkJwk(data, kty, "sig", usages, extractable);
      const crv = curve === 25519 ? "Ed25519" : norm.namedCurve;
      if (data.crv !== crv) throw error("DataError", `The JWK "crv" member was not "${crv}".`);
      checkJwkAlg(data.alg, norm);
      const x = fromBase64url(data.x, "x");
      let pub;
      if (curve === 25519) {
        if (x.length !== 32) throw error("DataError", 'The JWK "x" member is not 32 bytes.');
        pub = x;
      } else {
        const y = fromBase64url(data.y, "y");
        if (x.length !== dLen || y.length !== dLen) throw error("DataError", `The JWK "x" and "y" members must be ${dLen} bytes.`);
        const point = new Uint8Array(1 + 2 * dLen);
        point[0] = 4;
        for (let i = 0; i < dLen; i++) {
          point[1 + i] = x[i];
          point[1 + dLen + i] = y[i];
        }
        pub = imported(ops.keyImport(curve, RAW_PUBLIC, point), `${name} JWK public`);
      }
      if (data.d === undefined) return publicKey(pub);
      const d = fromBase64url(data.d, "d");
      if (d.length !== dLen) throw error("DataError", `The JWK "d" member must be ${dLen} bytes.`);
      const pair = imported(ops.keyImport(curve, PRIVATE_SCALAR, d), `${name} JWK private`);
      if (!sameBytes(slice(pair, dLen, pair.length), pub)) throw error("DataError", 'The JWK "d" member does not match its public key.');
      return privateKey(pair);
    },
    exportKey(format, s) {
      const curve = curveInfo(s.algorithm)[0];
      const dLen = curveInfo(s.algorithm)[1];
      const isPublic = s.type === "public";
      if (format === "spki" || format === "raw") {
        if (!isPublic) throw error("InvalidAccessError", `Only a public key can be exported as ${format}.`);
        return format === "raw" ? bufferOf(s.material) : ops.keyExport(curve, SPKI, s.material);
      }
      if (format === "pkcs8") {
        if (isPublic) throw error("InvalidAccessError", "Only a private key can be exported as pkcs8.");
        return ops.keyExport(curve, PKCS8, s.material);
      }
      if (format !== "jwk") throw notSupportedFormat(format, name);
      const pub = isPublic ? s.material : s.pub;
      const jwk = { __proto__: null, key_ops: intersect(s.usages, s.usages), ext: s.extractable };
      if (!isPublic) jwk.d = toBase64url(s.material);
      if (curve === 25519) {
        jwk.kty = "OKP";
        jwk.crv = "Ed25519";
        jwk.x = toBase64url(pub);
      } else {
        jwk.kty = "EC";
        jwk.crv = s.algorithm.namedCurve;
        jwk.x = toBase64url(slice(pub, 1, 1 + dLen));
        jwk.y = toBase64url(slice(pub, 1 + dLen, 1 + 2 * dLen));
      }
      return jwkOut(jwk);
    },
    sign(norm, s, data) {
      if (s.type !== "private") throw error("InvalidAccessError", "Signing needs a private key.");
      return ops.keySign(curveInfo(s.algorithm)[0], norm.hash === undefined ? 0 : norm.hash.id, s.material, data);
    },
    verify(norm, s, sig, data) {
      if (s.type !== "public") throw error("InvalidAccessError", "Verifying needs a public key.");
      return ops.keyVerify(curveInfo(s.algorithm)[0], norm.hash === undefined ? 0 : norm.hash.id, s.material, data, sig);
    },
  });

  const ecdsaHash = (dict, rec) => {
    rec.hash = hashMember(dict, "EcdsaParams");
  };
  register(
    signatureAlgorithm(
      "ECDSA",
      {
        __proto__: null,
        generateKey: (dict, rec) => curveOf(dict, rec, "EcKeyGenParams"),
        importKey: (dict, rec) => curveOf(dict, rec, "EcKeyImportParams"),
        sign: ecdsaHash,
        verify: ecdsaHash,
      },
      (norm) => ({ __proto__: null, name: "ECDSA", namedCurve: norm.namedCurve }),
      (norm) => CURVES[norm.namedCurve],
      (alg, norm) => {
        const want = CURVES[norm.namedCurve][2];
        if (alg !== undefined && (alg === "ES256" || alg === "ES384" || alg === "ES512") && alg !== want) {
          throw error("DataError", `The JWK "alg" member was inconsistent with namedCurve ${norm.namedCurve}.`);
        }
      },
    ),
  );

  const ED25519 = [25519, 32];
  register(
    signatureAlgorithm(
      "Ed25519",
      undefined,
      () => ({ __proto__: null, name: "Ed25519" }),
      () => ED25519,
      (alg) => {
        if (alg !== undefined && alg !== "Ed25519" && alg !== "EdDSA") throw error("DataError", 'The JWK "alg" member was not "Ed25519" or "EdDSA".');
      },
    ),
  );

  // ---------- AES-GCM ----------
  const AES_USAGES = ["encrypt", "decrypt", "wrapKey", "unwrapKey"];
  const TAG_LENGTHS = [32, 64, 96, 104, 112, 120, 128];
  const aesLength = (dict, rec, dictName) => {
    if (dict.length === undefined) throw new TypeError(`${dictName}: required member length is undefined.`);
    rec.length = enforceRange(dict.length, 65535, `${dictName}: length`);
  };
  // generateKey checks the length when it reads the parameters (as the
  // browsers and WPT do), so a bad one rejects at once.
  const aesGenLength = (dict, rec) => {
    aesLength(dict, rec, "AesKeyGenParams");
    if (rec.length !== 128 && rec.length !== 192 && rec.length !== 256) throw error("OperationError", "AES key length must be 128, 192 or 256 bits.");
  };
  const gcmParams = (dict, rec) => {
    rec.additionalData = bufferMember(dict, "additionalData", "AesGcmParams", false);
    rec.iv = bufferMember(dict, "iv", "AesGcmParams", true);
    rec.tagLength = dict.tagLength === undefined ? 128 : enforceRange(dict.tagLength, 255, "AesGcmParams: tagLength");
  };
  const aesKey = (bytes, extractable, usages) =>
    newKey("secret", { __proto__: null, name: "AES-GCM", length: bytes.length * 8 }, extractable, intersect(usages, AES_USAGES), bytes);
  const gcm = (encrypt, norm, s, data) => {
    if (!has(TAG_LENGTHS, norm.tagLength)) throw error("OperationError", `AES-GCM tagLength must be one of 32, 64, 96, 104, 112, 120 or 128, not ${norm.tagLength}.`);
    if (norm.iv.length === 0) throw error("OperationError", "AES-GCM needs an iv of at least one byte.");
    const aad = norm.additionalData === undefined ? new Uint8Array(0) : norm.additionalData;
    if (!encrypt && data.length < norm.tagLength / 8) throw error("OperationError", "The data is shorter than the AES-GCM tag.");
    const out = ops.aesGcm(encrypt ? 1 : 0, s.material, norm.iv, aad, data, norm.tagLength / 8);
    if (out === null) throw error("OperationError", "AES-GCM decryption failed: the data or its tag is not authentic.");
    return out;
  };
  register({
    __proto__: null,
    name: "AES-GCM",
    params: {
      __proto__: null,
      generateKey: aesGenLength,
      getKeyLength: (dict, rec) => aesLength(dict, rec, "AesDerivedKeyParams"),
      encrypt: gcmParams,
      decrypt: gcmParams,
    },
    generateKey(norm, extractable, usages) {
      checkUsages(usages, AES_USAGES, "AES-GCM");
      if (norm.length !== 128 && norm.length !== 192 && norm.length !== 256) throw error("OperationError", "AES key length must be 128, 192 or 256 bits.");
      const bytes = new Uint8Array(norm.length / 8);
      ops.randomFill(bytes);
      return aesKey(bytes, extractable, usages);
    },
    importKey(format, data, norm, extractable, usages) {
      checkUsages(usages, AES_USAGES, "AES-GCM");
      let bytes;
      if (format === "raw") bytes = data;
      else if (format === "jwk") {
        checkJwk(data, "oct", "enc", usages, extractable);
        bytes = fromBase64url(data.k, "k");
        const alg = `A${bytes.length * 8}GCM`;
        if (data.alg !== undefined && data.alg !== alg) throw error("DataError", `The JWK "alg" member was not "${alg}".`);
      } else throw notSupportedFormat(format, "AES-GCM");
      if (bytes.length !== 16 && bytes.length !== 24 && bytes.length !== 32) throw error("DataError", "AES key data must be 128, 192 or 256 bits.");
      return aesKey(bytes, extractable, usages);
    },
    exportKey(format, s) {
      if (format === "raw") return bufferOf(s.material);
      if (format === "jwk") {
        return jwkOut({ __proto__: null, kty: "oct", k: toBase64url(s.material), alg: `A${s.material.length * 8}GCM`, key_ops: intersect(s.usages, s.usages), ext: s.extractable });
      }
      throw notSupportedFormat(format, "AES-GCM");
    },
    encrypt: (norm, s, data) => gcm(true, norm, s, data),
    decrypt: (norm, s, data) => gcm(false, norm, s, data),
    getKeyLength(norm) {
      if (norm.length !== 128 && norm.length !== 192 && norm.length !== 256) throw error("OperationError", "AES key length must be 128, 192 or 256 bits.");
      return norm.length;
    },
  });

  // ---------- PBKDF2 and HKDF ----------
  const KDF_USAGES = ["deriveKey", "deriveBits"];
  const kdfInput = (bytes, what) => {
    if (bytes.length > MAX_KDF_INPUT) throw error("OperationError", `${what} is larger than isola's cap of ${MAX_KDF_INPUT} bytes.`);
    return bytes;
  };
  const bitsLength = (length, name) => {
    if (length === null) throw error("OperationError", `${name} needs a length.`);
    if (length % 8 !== 0) throw error("OperationError", `${name} length must be a multiple of 8.`);
    if (length / 8 > MAX_DERIVED_BYTES) throw error("OperationError", `${name} derives at most ${MAX_DERIVED_BYTES * 8} bits here.`);
    return length / 8;
  };
  const kdf = (name, params, deriveBits) => ({
    __proto__: null,
    name,
    params,
    importKey(format, data, norm, extractable, usages) {
      checkUsages(usages, KDF_USAGES, name);
      if (format !== "raw") throw notSupportedFormat(format, name);
      if (extractable) throw error("SyntaxError", `${name} keys cannot be extractable.`);
      kdfInput(data, `${name} key material`);
      return newKey("secret", { __proto__: null, name }, false, intersect(usages, KDF_USAGES), data);
    },
    deriveBits,
    getKeyLength: () => null,
  });
  register(
    kdf(
      "PBKDF2",
      {
        __proto__: null,
        deriveBits(dict, rec) {
          rec.hash = hashMember(dict, "Pbkdf2Params");
          if (dict.iterations === undefined) throw new TypeError("Pbkdf2Params: required member iterations is undefined.");
          rec.iterations = enforceRange(dict.iterations, 4294967295, "Pbkdf2Params: iterations");
          rec.salt = bufferMember(dict, "salt", "Pbkdf2Params", true);
        },
      },
      (norm, s, length) => {
        const bytes = bitsLength(length, "PBKDF2");
        if (norm.iterations === 0) throw error("OperationError", "PBKDF2 iterations must not be 0.");
        if (bytes === 0) return bufferOf(new Uint8Array(0));
        // Native steps of at most PBKDF2_STEP iterations, so the tenant's
        // CPU limit (not a cap on iterations) bounds the work.
        const salt = kdfInput(norm.salt, "PBKDF2 salt");
        const hlen = norm.hash.length;
        const blocks = MathCeil(bytes / hlen);
        const out = new Uint8Array(blocks * hlen);
        const empty = new Uint8Array(0);
        for (let b = 1; b <= blocks; b++) {
          let u = empty;
          let t = empty;
          for (let left = norm.iterations; left > 0; ) {
            const n = left < PBKDF2_STEP ? left : PBKDF2_STEP;
            const state = new Uint8Array(ops.pbkdf2Step(norm.hash.id, s.material, salt, b, u, t, n));
            u = TypedArrayPrototypeSubarray(state, 0, hlen);
            t = TypedArrayPrototypeSubarray(state, hlen, 2 * hlen);
            left -= n;
          }
          TypedArrayPrototypeSet(out, t, (b - 1) * hlen);
        }
        return bufferOf(TypedArrayPrototypeSubarray(out, 0, bytes));
      },
    ),
  );
  register(
    kdf(
      "HKDF",
      {
        __proto__: null,
        deriveBits(dict, rec) {
          rec.hash = hashMember(dict, "HkdfParams");
          rec.info = bufferMember(dict, "info", "HkdfParams", true);
          rec.salt = bufferMember(dict, "salt", "HkdfParams", true);
        },
      },
      (norm, s, length) => {
        const bytes = bitsLength(length, "HKDF");
        if (bytes > 255 * norm.hash.length) throw error("OperationError", `HKDF with ${norm.hash.name} derives at most ${255 * norm.hash.length * 8} bits.`);
        const out = ops.hkdf(norm.hash.id, s.material, kdfInput(norm.salt, "HKDF salt"), kdfInput(norm.info, "HKDF info"), bytes);
        if (out === null) throw error("OperationError", "HKDF failed.");
        return out;
      },
    ),
  );
});
