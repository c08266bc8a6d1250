//! crypto.getRandomValues, crypto.randomUUID, crypto.subtle.digest.

use serde_json::json;

use super::{run, run_with_cpu, throws, DELETE_GLOBALS, PATCH_EVERYTHING};

#[test]
fn digests_match_known_answers() {
    let v = run(r#"
        const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
        const abc = new TextEncoder().encode("abc");
        const out = {};
        for (const alg of ["SHA-1", "SHA-256", "SHA-384", "SHA-512"]) out[alg] = hex(await crypto.subtle.digest(alg, abc));
        out.obj = hex(await crypto.subtle.digest({ name: "sha-256" }, abc.buffer));
        out.view = hex(await crypto.subtle.digest("SHA-256", new DataView(abc.buffer)));
        out.empty = hex(await crypto.subtle.digest("SHA-256", new Uint8Array(0)));
        out.isBuffer = (await crypto.subtle.digest("SHA-256", abc)) instanceof ArrayBuffer;
        return out;
    "#);
    assert_eq!(v["SHA-1"], "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(
        v["SHA-256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(v["SHA-384"], "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
    assert_eq!(v["SHA-512"], "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    assert_eq!(v["obj"], v["SHA-256"]);
    assert_eq!(v["view"], v["SHA-256"]);
    assert_eq!(
        v["empty"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(v["isBuffer"], true);
}

#[test]
fn digest_rejects_bad_input_with_the_specs_errors() {
    let v = run(r#"
        const why = (p) => p.then((x) => ["no error", String(x)], (e) => [e.name, e.message]);
        return [await why(crypto.subtle.digest("MD5", new Uint8Array(1))),
                await why(crypto.subtle.digest("SHA-256", "text")),
                await why(crypto.subtle.digest("SHA-256"))];
    "#);
    assert_eq!(v[0][0], "NotSupportedError");
    assert!(v[0][1].as_str().unwrap().contains("MD5"), "{v}");
    assert_eq!(v[1][0], "TypeError");
    assert_eq!(v[2][0], "TypeError");
}

#[test]
fn random_values_and_uuids() {
    let v = run(&format!(
        "const a = crypto.getRandomValues(new Uint8Array(64)); const b = crypto.getRandomValues(new Uint32Array(16));
         const u = crypto.randomUUID();
         const uuids = new Set(Array.from({{ length: 100 }}, () => crypto.randomUUID()));
         return [a.some((x) => x !== 0), b.some((x) => x !== 0), /^[0-9a-f]{{8}}-[0-9a-f]{{4}}-4[0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}$/.test(u),
                 uuids.size, {}, {}, {}];",
        throws("crypto.getRandomValues(new Float32Array(4))"),
        throws("crypto.getRandomValues(new Uint8Array(65537))"),
        throws("new Crypto()"),
    ));
    assert_eq!(v[0], true);
    assert_eq!(v[1], true);
    assert_eq!(v[2], true, "{v}");
    assert_eq!(v[3], 100);
    assert_eq!(v[4][0], "TypeMismatchError");
    assert_eq!(v[5][0], "QuotaExceededError");
    assert!(v[5][1].as_str().unwrap().contains("65536"), "{v}");
    assert_eq!(v[6], json!(["TypeError", "Illegal constructor"]));
}

#[test]
fn crypto_works_after_the_tenant_patched_every_builtin() {
    let v = run(&format!(
        "{PATCH_EVERYTHING}
        const u = crypto.randomUUID();
        const d = new Uint8Array(await crypto.subtle.digest('SHA-1', new Uint8Array(0)));
        return [u.length, d.length, d[0]];"
    ));
    assert_eq!(v, json!([36, 20, 0xda]));
}

#[test]
fn hmac_keys_sign_verify_import_and_export() {
    let v = run(r#"
        const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
        const enc = (s) => new TextEncoder().encode(s);
        // RFC 4231 test case 2: key "Jefe".
        const key = await crypto.subtle.importKey("raw", enc("Jefe"), { name: "HMAC", hash: "SHA-256" }, true, ["sign", "verify"]);
        const sig = await crypto.subtle.sign("HMAC", key, enc("what do ya want for nothing?"));
        const ok = await crypto.subtle.verify("HMAC", key, sig, enc("what do ya want for nothing?"));
        const bad = await crypto.subtle.verify({ name: "HMAC" }, key, sig, enc("something else"));
        const jwk = await crypto.subtle.exportKey("jwk", key);
        const back = await crypto.subtle.importKey("jwk", jwk, { name: "HMAC", hash: { name: "SHA-256" } }, false, ["verify"]);
        const ok2 = await crypto.subtle.verify("HMAC", back, sig, enc("what do ya want for nothing?"));
        const gen = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-512" }, true, ["sign"]);
        const raw = await crypto.subtle.exportKey("raw", gen);
        return { sig: hex(sig), ok, bad, jwk, ok2, alg: key.algorithm, usages: back.usages, type: key.type,
                 tag: Object.prototype.toString.call(key), genLen: raw.byteLength, genAlg: gen.algorithm.hash.name };
    "#);
    assert_eq!(
        v["sig"],
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(v["ok"], true);
    assert_eq!(v["bad"], false);
    assert_eq!(
        v["jwk"],
        json!({"kty": "oct", "k": "SmVmZQ", "alg": "HS256", "key_ops": ["sign", "verify"], "ext": true})
    );
    assert_eq!(v["ok2"], true);
    assert_eq!(
        v["alg"],
        json!({"name": "HMAC", "hash": {"name": "SHA-256"}, "length": 32})
    );
    assert_eq!(v["usages"], json!(["verify"]));
    assert_eq!(v["type"], "secret");
    assert_eq!(v["tag"], "[object CryptoKey]");
    assert_eq!(v["genLen"], 128);
    assert_eq!(v["genAlg"], "SHA-512");
}

#[test]
fn hmac_misuse_is_refused_with_the_specs_errors() {
    let v = run(r#"
        const why = (p) => p.then((x) => ["no error", String(x)], (e) => [e.name, e.message]);
        const enc = (s) => new TextEncoder().encode(s);
        const verifyOnly = await crypto.subtle.importKey("raw", enc("k"), { name: "HMAC", hash: "SHA-1" }, false, ["verify"]);
        return [
          await why(crypto.subtle.sign("HMAC", verifyOnly, enc("x"))),
          await why(crypto.subtle.exportKey("raw", verifyOnly)),
          await why(crypto.subtle.importKey("raw", enc("k"), { name: "HMAC", hash: "SHA-256" }, true, [])),
          await why(crypto.subtle.importKey("raw", enc("k"), { name: "HMAC", hash: "MD5" }, true, ["sign"])),
          await why(crypto.subtle.importKey("jwk", { kty: "RSA", k: "AA" }, { name: "HMAC", hash: "SHA-256" }, true, ["sign"])),
          await why(crypto.subtle.importKey("raw", enc("k"), { name: "HMAC", hash: "SHA-256" }, true, ["encrypt"])),
          await why(crypto.subtle.sign("HMAC", {}, enc("x"))),
          (() => { try { new CryptoKey(); } catch (e) { return [e.name, e.message]; } })(),
        ];
    "#);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "InvalidAccessError",
            "InvalidAccessError",
            "SyntaxError",
            "NotSupportedError",
            "DataError",
            "SyntaxError",
            "TypeError",
            "TypeError"
        ],
        "{v}"
    );
}

#[test]
fn hmac_works_after_the_tenant_patched_every_builtin() {
    let v = run(&format!(
        "{PATCH_EVERYTHING}
        RegExp.prototype[Symbol.replace] = () => {{ throw new Error('patched replace'); }};
        const k = await crypto.subtle.importKey('jwk', {{ kty: 'oct', k: 'SmVmZQ' }}, {{ name: 'HMAC', hash: 'SHA-256' }}, true, ['sign']);
        const jwk = await crypto.subtle.exportKey('jwk', k);
        const sig = new Uint8Array(await crypto.subtle.sign('HMAC', k, new Uint8Array(3)));
        return [jwk.k, sig.length];"
    ));
    assert_eq!(v, json!(["SmVmZQ", 32]));
}

#[test]
fn crypto_loads_on_first_use_after_the_tenant_deleted_and_patched_the_builtins() {
    // crypto is a lazy area (with crypto_algorithms, which it loads): its
    // globals are accessors until first use, which runs both areas after
    // this tenant code. They must not reach for a global or a patchable
    // method, for every algorithm.
    let v = run_with_cpu(&format!(
        "const before = Object.getOwnPropertyDescriptor(globalThis, 'crypto'); const U8 = Uint8Array; const enc = new TextEncoder(); const replace = Symbol.replace;
        Object.defineProperty(Object.prototype, 'publicKey', {{ set() {{ throw new Error('setter ran'); }}, configurable: true }});
        Object.defineProperty(Object.prototype, 'kty', {{ set() {{ throw new Error('setter ran'); }}, configurable: true }});
        Object.prototype.encrypt = () => 'tenant';
        {PATCH_EVERYTHING}
        {DELETE_GLOBALS}
        RegExp.prototype[replace] = () => {{ throw new Error('patched replace'); }};
        const S = crypto.subtle;
        const after = __gopd(globalThis, 'crypto');
        const ec = await S.generateKey({{ name: 'ECDSA', namedCurve: 'P-256' }}, true, ['sign', 'verify']);
        const sig = await S.sign({{ name: 'ECDSA', hash: 'SHA-256' }}, ec.privateKey, new U8(3));
        const jwk = await S.exportKey('jwk', ec.privateKey);
        const back = await S.importKey('jwk', jwk, {{ name: 'ECDSA', namedCurve: 'P-256' }}, false, ['sign']);
        const ed = await S.generateKey('Ed25519', true, ['sign', 'verify']);
        const edSig = await S.sign('Ed25519', ed.privateKey, new U8(1));
        const aes = await S.importKey('raw', new U8(16), 'AES-GCM', true, ['encrypt', 'decrypt']);
        const ct = await S.encrypt({{ name: 'AES-GCM', iv: new U8(12) }}, aes, new U8(5));
        const pt = await S.decrypt({{ name: 'AES-GCM', iv: new U8(12) }}, aes, ct);
        const pw = await S.importKey('raw', enc.encode('pw'), 'PBKDF2', false, ['deriveKey']);
        const k = await S.deriveKey({{ name: 'PBKDF2', salt: new U8(8), iterations: 10, hash: 'SHA-256' }}, pw, {{ name: 'HMAC', hash: 'SHA-1' }}, true, ['sign']);
        const hk = await S.importKey('raw', new U8(4), 'HKDF', false, ['deriveBits']);
        const bits = await S.deriveBits({{ name: 'HKDF', hash: 'SHA-384', salt: new U8(1), info: new U8(1) }}, hk, 128);
        let hmacEncrypt;
        try {{ await S.encrypt({{ name: 'HMAC' }}, k, new U8(1)); }} catch (e) {{ hmacEncrypt = e.name; }}
        return [typeof before.get, typeof after.value, 'get' in after, sig.byteLength,
                await S.verify({{ name: 'ECDSA', hash: 'SHA-256' }}, ec.publicKey, sig, new U8(3)),
                back.type, jwk.kty, await S.verify('Ed25519', ed.publicKey, edSig, new U8(1)),
                ct.byteLength, pt.byteLength, k.algorithm.length, bits.byteLength, hmacEncrypt,
                typeof Crypto, typeof CryptoKey, typeof SubtleCrypto];"
    ), 20_000);
    assert_eq!(
        v,
        json!([
            "function",
            "object",
            false,
            64,
            true,
            "private",
            "EC",
            true,
            21,
            5,
            512,
            16,
            "NotSupportedError",
            "function",
            "function",
            "function"
        ])
    );
}

#[test]
fn crypto_keys_cannot_be_cloned_even_before_crypto_loads() {
    let v = run(r#"
        const first = structuredClone({ a: 1 });
        const k = await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, true, ["encrypt"]);
        let name;
        try { structuredClone(k); } catch (e) { name = e.name; }
        return [first.a, name];
    "#);
    assert_eq!(v, json!([1, "DataCloneError"]));
}

#[test]
fn subtle_promises_settle_as_the_spec_orders_its_two_phases() {
    // Argument and algorithm errors reject at once; the operation's result
    // or error (here: a key without the usage) settles after a microtask
    // the caller queues right after the call, as if it ran in parallel
    // (WPT checks both).
    let v = run(r#"
        let queued = false;
        const key = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
        const seen = [];
        const p1 = crypto.subtle.digest("SHA-256", new Uint8Array(1)).then(() => seen.push(["digest", queued]));
        const p2 = crypto.subtle.sign("HMAC", key, new Uint8Array(1)).then(() => seen.push(["sign", queued]));
        const p3 = crypto.subtle.verify("HMAC", key, new Uint8Array(1), new Uint8Array(1)).catch((e) => seen.push([e.name, queued]));
        const p4 = crypto.subtle.digest("MD5", new Uint8Array(1)).catch((e) => seen.push([e.name, queued]));
        Promise.resolve().then(() => { queued = true; });
        await Promise.all([p1, p2, p3, p4]);
        return seen;
    "#);
    assert_eq!(
        v,
        json!([
            ["NotSupportedError", false],
            ["digest", true],
            ["sign", true],
            ["InvalidAccessError", true]
        ])
    );
}

#[test]
fn native_results_at_the_edge_of_the_array_buffer_budget_are_a_range_error_not_an_abort() {
    // V8's ArrayBuffer::New aborts the process when its allocation fails:
    // every native that returns bytes checks the budget first.
    let e = crate::util::engine();
    let limits = isola_core::Limits {
        external_memory_bytes: 4 << 20,
        cpu: std::time::Duration::from_secs(5),
        ..Default::default()
    };
    let src = r#"export default async () => {
        const hold = [];
        for (let size = 1 << 20; size > 0; ) { try { hold.push(new Uint8Array(size)); } catch { size >>= 1; } }
        const why = (p) => p.then(() => "no error", (e) => [e.name, e.message]);
        return [await why(crypto.subtle.digest("SHA-256", new Uint8Array(0))), hold.length > 0];
    };"#;
    let mut t = crate::util::tenant_with_limits(&e.engine, "edge", src, limits);
    let v = crate::util::call_json(&mut t);
    assert_eq!(v[0][0], "RangeError", "{v}");
    assert!(
        v[0][1]
            .as_str()
            .unwrap()
            .contains("does not fit the ArrayBuffer memory limit"),
        "{v}"
    );
}
