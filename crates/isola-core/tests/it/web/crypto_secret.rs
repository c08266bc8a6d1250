//! crypto.subtle with secret keys: AES-GCM (the GCM specification's test
//! cases, IVs of 8, 12 and 60 bytes, tag lengths), PBKDF2 (RFC 6070) in
//! native steps the CPU limit stops between, HKDF (RFC 5869) and deriveKey.

use serde_json::json;

use super::crypto_keys::HELPERS;
use super::run_with_cpu;

/// PBKDF2-HMAC-SHA1("password", "salt", 45,000 iterations, 40 bytes), from
/// Python's hashlib.
const PBKDF2_45000: &str =
    "885f5bd521ad180e81348ee7c39271ab060d56979b8f6ad490bb5589cf2d2f60c04d1c1291c8dec5";

fn run(body: &str) -> serde_json::Value {
    run_with_cpu(body, 20_000)
}

// The GCM specification's (McGrew and Viega) test cases 3 to 6.
const K: &str = "feffe9928665731c6d6a8f9467308308";
const P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const A: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

#[test]
fn aes_gcm_matches_the_gcm_test_vectors() {
    let v = run(&format!(
        r#"{HELPERS}
        const key = await S.importKey("raw", unhex("{K}"), "AES-GCM", true, ["encrypt", "decrypt"]);
        const gcm = async (iv, aad, p) => hex(await S.encrypt({{ name: "AES-GCM", iv: unhex(iv), additionalData: aad && unhex(aad) }}, key, unhex(p)));
        const tc4 = await gcm("cafebabefacedbaddecaf888", "{A}", "{P}");
        const back = hex(await S.decrypt({{ name: "aes-gcm", iv: unhex("cafebabefacedbaddecaf888"), additionalData: unhex("{A}") }}, key, unhex(tc4)));
        const tamper = unhex(tc4); tamper[3] ^= 1;
        const tagTamper = unhex(tc4); tagTamper[tagTamper.length - 1] ^= 1;
        const dec = (data, aad, tagLength) => why(S.decrypt({{ name: "AES-GCM", iv: unhex("cafebabefacedbaddecaf888"), additionalData: aad, tagLength }}, key, data));
        const short = await S.encrypt({{ name: "AES-GCM", iv: unhex("cafebabefacedbaddecaf888"), additionalData: unhex("{A}"), tagLength: 96 }}, key, unhex("{P}"));
        return {{
          tc3: await gcm("cafebabefacedbaddecaf888", undefined, "{P}1aafd255"),
          tc4, back,
          tc5: await gcm("cafebabefacedbad", "{A}", "{P}"),
          tc6: await gcm("9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b", "{A}", "{P}"),
          tamper: await dec(tamper, unhex("{A}")),
          tagTamper: await dec(tagTamper, unhex("{A}")),
          otherAad: await dec(unhex(tc4), new Uint8Array(1)),
          tooShort: await dec(new Uint8Array(15), undefined),
          short: hex(short),
          shortBack: hex(await S.decrypt({{ name: "AES-GCM", iv: unhex("cafebabefacedbaddecaf888"), additionalData: unhex("{A}"), tagLength: 96 }}, key, short)),
          badTag: await why(S.encrypt({{ name: "AES-GCM", iv: new Uint8Array(12), tagLength: 100 }}, key, new Uint8Array(1))),
          emptyIv: await why(S.encrypt({{ name: "AES-GCM", iv: new Uint8Array(0) }}, key, new Uint8Array(1))),
          noIv: await why(S.encrypt({{ name: "AES-GCM" }}, key, new Uint8Array(1))),
        }};"#
    ));
    let ct = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091";
    assert_eq!(v["tc4"], format!("{ct}5bc94fbc3221a5db94fae95ae7121a47"));
    assert_eq!(v["back"], P);
    assert_eq!(v["tc5"], "61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f45983612d2e79e3b0785561be14aaca2fccb");
    assert_eq!(v["tc6"], "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5619cc5aefffe0bfa462af43c1699d050");
    for k in [
        "tamper",
        "tagTamper",
        "otherAad",
        "tooShort",
        "badTag",
        "emptyIv",
    ] {
        assert_eq!(v[k][0], "OperationError", "{k}: {v}");
    }
    assert_eq!(v["noIv"][0], "TypeError");
    // A 96-bit tag is the 128-bit one cut short.
    assert_eq!(v["short"], format!("{ct}5bc94fbc3221a5db94fae95a"));
    assert_eq!(v["shortBack"], P);
    assert_eq!(
        v["tc3"],
        format!("{ct}473f59854d5c2af327cd64a62cf35abd2ba6fab4")
    );
}

#[test]
fn aes_gcm_keys_generate_import_and_export() {
    let v = run(&format!(
        r#"{HELPERS}
        const out = [];
        for (const length of [128, 192, 256]) {{
          const k = await S.generateKey({{ name: "AES-GCM", length }}, true, ["decrypt", "encrypt", "encrypt"]);
          const jwk = await S.exportKey("jwk", k);
          const k2 = await S.importKey("jwk", jwk, {{ name: "AES-GCM" }}, false, ["decrypt"]);
          const iv = crypto.getRandomValues(new Uint8Array(12));
          const c = await S.encrypt({{ name: "AES-GCM", iv }}, k, enc("hello"));
          out.push([k.algorithm, k.usages, jwk.alg, jwk.kty, (await S.exportKey("raw", k)).byteLength,
                    new TextDecoder().decode(await S.decrypt({{ name: "AES-GCM", iv }}, k2, c)), k2.extractable]);
        }}
        const k = await S.generateKey({{ name: "AES-GCM", length: 128 }}, false, ["encrypt"]);
        return [out,
          await why(S.generateKey({{ name: "AES-GCM", length: 100 }}, true, ["encrypt"])),
          await why(S.generateKey({{ name: "AES-GCM", length: 128 }}, true, ["sign"])),
          await why(S.importKey("raw", new Uint8Array(20), "AES-GCM", true, ["encrypt"])),
          await why(S.importKey("jwk", {{ kty: "oct", k: "AAAAAAAAAAAAAAAAAAAAAA", alg: "A256GCM" }}, "AES-GCM", true, ["encrypt"])),
          await why(S.decrypt({{ name: "AES-GCM", iv: new Uint8Array(12) }}, k, new Uint8Array(32))),
          await why(S.exportKey("raw", k)),
          await why(S.encrypt({{ name: "AES-CBC", iv: new Uint8Array(16) }}, k, new Uint8Array(1)))];"#
    ));
    for (i, length) in [128, 192, 256].into_iter().enumerate() {
        let r = &v[0][i];
        assert_eq!(r[0], json!({"name": "AES-GCM", "length": length}));
        assert_eq!(r[1], json!(["encrypt", "decrypt"]));
        assert_eq!(r[2], format!("A{length}GCM"));
        assert_eq!(r[3], "oct");
        assert_eq!(r[4], length / 8);
        assert_eq!(r[5], "hello");
        assert_eq!(r[6], false);
    }
    let names: Vec<&str> = v.as_array().unwrap()[1..]
        .iter()
        .map(|e| e[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "OperationError",
            "SyntaxError",
            "DataError",
            "DataError",
            "InvalidAccessError",
            "InvalidAccessError",
            "NotSupportedError"
        ],
        "{v}"
    );
}

#[test]
fn pbkdf2_matches_rfc_6070_in_native_steps() {
    let v = run_with_cpu(
        &format!(
            r#"{HELPERS}
        const bits = async (pw, salt, iterations, hash, length) => {{
          const k = await S.importKey("raw", enc(pw), "PBKDF2", false, ["deriveBits"]);
          return hex(await S.deriveBits({{ name: "PBKDF2", salt: enc(salt), iterations, hash }}, k, length));
        }};
        const k = await S.importKey("raw", enc("password"), {{ name: "PBKDF2" }}, false, ["deriveBits", "deriveKey"]);
        const p = (iterations, length = 160) => why(S.deriveBits({{ name: "PBKDF2", salt: enc("salt"), iterations, hash: "SHA-1" }}, k, length));
        return {{
          c1: await bits("password", "salt", 1, "SHA-1", 160),
          c2: await bits("password", "salt", 2, "SHA-1", 160),
          c4096: await bits("password", "salt", 4096, "SHA-1", 160),
          long: await bits("passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, "SHA-1", 200),
          sha256: await bits("password", "salt", 1, "SHA-256", 256),
          // More iterations than one native step (20,000), over two blocks.
          steps: await bits("password", "salt", 45000, "SHA-1", 320),
          zero: await p(0),
          odd: await p(1, 7),
          noLength: await p(1, null),
          empty: await p(1, 0),
          extractable: await why(S.importKey("raw", enc("pw"), "PBKDF2", true, ["deriveBits"])),
          jwk: await why(S.importKey("jwk", {{ kty: "oct", k: "AA" }}, "PBKDF2", false, ["deriveBits"])),
          exportIt: await why(S.exportKey("raw", k)),
          usage: await why(S.importKey("raw", enc("pw"), "PBKDF2", false, ["sign"])),
          noIterations: await why(S.deriveBits({{ name: "PBKDF2", salt: enc("salt"), hash: "SHA-1" }}, k, 160)),
          key: [k.type, k.extractable, k.algorithm, k.usages],
        }};"#
        ),
        10_000,
    );
    assert_eq!(v["c1"], "0c60c80f961f0e71f3a9b524af6012062fe037a6");
    assert_eq!(v["c2"], "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    assert_eq!(v["c4096"], "4b007901b765489abead49d926f721d065a429c1");
    assert_eq!(
        v["long"],
        "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"
    );
    assert_eq!(
        v["sha256"],
        "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
    );
    // Python: hashlib.pbkdf2_hmac("sha1", b"password", b"salt", 45000, 40).hex()
    assert_eq!(v["steps"], PBKDF2_45000);
    for k in ["zero", "odd", "noLength"] {
        assert_eq!(v[k][0], "OperationError", "{k}: {v}");
    }
    assert_eq!(v["empty"], json!(["no error", "[object ArrayBuffer]"]));
    assert_eq!(v["extractable"][0], "SyntaxError");
    assert_eq!(v["jwk"][0], "NotSupportedError");
    assert_eq!(v["exportIt"][0], "NotSupportedError");
    assert_eq!(v["usage"][0], "SyntaxError");
    assert_eq!(v["noIterations"][0], "TypeError");
    assert_eq!(
        v["key"],
        json!(["secret", false, {"name": "PBKDF2"}, ["deriveKey", "deriveBits"]])
    );
}

#[test]
fn hkdf_matches_rfc_5869_and_derive_key_makes_usable_keys() {
    let v = run(&format!(
        r#"{HELPERS}
        const ikm = await S.importKey("raw", new Uint8Array(22).fill(0x0b), "HKDF", false, ["deriveBits", "deriveKey"]);
        const tc1 = {{ name: "HKDF", hash: "SHA-256", salt: unhex("000102030405060708090a0b0c"), info: unhex("f0f1f2f3f4f5f6f7f8f9") }};
        const tc3 = {{ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new Uint8Array(0) }};
        // deriveKey: PBKDF2 -> AES-GCM and HKDF -> HMAC, checked against deriveBits.
        const pw = await S.importKey("raw", enc("password"), "PBKDF2", false, ["deriveKey", "deriveBits"]);
        const pb = {{ name: "PBKDF2", salt: enc("salt"), iterations: 2, hash: "SHA-256" }};
        const aes = await S.deriveKey(pb, pw, {{ name: "AES-GCM", length: 256 }}, true, ["encrypt", "decrypt"]);
        const mac = await S.deriveKey(tc1, ikm, {{ name: "HMAC", hash: "SHA-512" }}, true, ["sign"]);
        const bitsOnly = await S.importKey("raw", enc("k"), "HKDF", false, ["deriveBits"]);
        return {{
          tc1: hex(await S.deriveBits(tc1, ikm, 336)),
          tc3: hex(await S.deriveBits(tc3, ikm, 336)),
          aesRaw: hex(await S.exportKey("raw", aes)) === hex(await S.deriveBits(pb, pw, 256)),
          aesAlg: aes.algorithm, macAlg: mac.algorithm,
          macRaw: hex(await S.exportKey("raw", mac)) === hex(await S.deriveBits(tc1, ikm, 1024)),
          tooLong: await why(S.deriveBits(tc1, ikm, 255 * 256 + 8)),
          noInfo: await why(S.deriveBits({{ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0) }}, ikm, 256)),
          noDeriveKey: await why(S.deriveKey(tc1, bitsOnly, {{ name: "AES-GCM", length: 128 }}, true, ["encrypt"])),
          wrongKey: await why(S.deriveBits(pb, ikm, 256)),
          badLength: await why(S.deriveKey(tc1, ikm, {{ name: "AES-GCM", length: 100 }}, true, ["encrypt"])),
          noUsages: await why(S.deriveKey(tc1, ikm, {{ name: "AES-GCM", length: 128 }}, true, [])),
          toKdf: await why(S.deriveKey(tc1, ikm, "HKDF", false, ["deriveBits"])),
        }};"#
    ));
    assert_eq!(
        v["tc1"],
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
    assert_eq!(
        v["tc3"],
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    );
    assert_eq!(v["aesRaw"], true);
    assert_eq!(v["aesAlg"], json!({"name": "AES-GCM", "length": 256}));
    assert_eq!(
        v["macAlg"],
        json!({"name": "HMAC", "hash": {"name": "SHA-512"}, "length": 1024})
    );
    assert_eq!(v["macRaw"], true);
    for (k, name) in [
        ("tooLong", "OperationError"),
        ("noInfo", "TypeError"),
        ("noDeriveKey", "InvalidAccessError"),
        ("wrongKey", "InvalidAccessError"),
        ("badLength", "OperationError"),
        ("noUsages", "SyntaxError"),
        ("toKdf", "OperationError"),
    ] {
        assert_eq!(v[k][0], name, "{k}: {v}");
    }
}

#[test]
fn a_long_pbkdf2_is_stopped_by_the_cpu_limit_between_native_steps() {
    // 16 million iterations: no cap refuses them, but the tenant's 100 ms of
    // CPU runs out between two native steps and the invocation is killed.
    let e = crate::util::engine();
    let limits = isola_core::Limits {
        cpu: std::time::Duration::from_millis(100),
        ..Default::default()
    };
    let src = r#"export default async () => {
        const k = await crypto.subtle.importKey("raw", new Uint8Array(8), "PBKDF2", false, ["deriveBits"]);
        return crypto.subtle.deriveBits({ name: "PBKDF2", salt: new Uint8Array(8), iterations: 16777216, hash: "SHA-256" }, k, 256);
    };"#;
    let mut t = crate::util::tenant_with_limits(&e.engine, "kdf", src, limits);
    let t0 = std::time::Instant::now();
    match t.call(vec![]) {
        Err(isola_core::Error::Limit(l)) => assert_eq!(l.kind, isola_core::LimitKind::Cpu, "{l}"),
        other => panic!("expected a CPU limit error, got {other:?}"),
    }
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t0.elapsed()
    );
}
