//! crypto.subtle with key pairs: ECDSA (P-256, P-384) and Ed25519. Known
//! answers from RFC 6979 (its signatures verify here; ours are hedged, so
//! two differ) and RFC 8032, round trips through every format, and the
//! spec's errors for misuse.

use serde_json::json;

use super::run_with_cpu;

/// ECDSA is slow in unoptimized test builds: a generous CPU budget.
fn run(body: &str) -> serde_json::Value {
    run_with_cpu(body, 20_000)
}

/// JS helpers: hex <-> bytes, base64url of hex, a rejection's [name, message].
pub const HELPERS: &str = r#"
const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s) => new Uint8Array(s.match(/../g).map((h) => parseInt(h, 16)));
const b64u = (h) => btoa(String.fromCharCode(...unhex(h))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const enc = (s) => new TextEncoder().encode(s);
const why = (p) => p.then((x) => ["no error", String(x)], (e) => [e.name, e.message]);
const S = crypto.subtle;
"#;

// RFC 6979 A.2.5 (P-256) and A.2.6 (P-384): private key and public point.
const P256_D: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
const P256_X: &str = "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6";
const P256_Y: &str = "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
const P384_D: &str = "6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5";
const P384_X: &str = "ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254515480bc13";
const P384_Y: &str = "8015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4fe7344fd2533264720";

#[test]
fn ecdsa_verifies_the_rfc_6979_vectors_and_signs_with_fresh_nonces() {
    let v = run(&format!(
        r#"{HELPERS}
        const jwk = (d, x, y, crv) => ({{ kty: "EC", crv, d: d && b64u(d), x: b64u(x), y: b64u(y) }});
        const priv256 = await S.importKey("jwk", jwk("{P256_D}", "{P256_X}", "{P256_Y}", "P-256"), {{ name: "ECDSA", namedCurve: "P-256" }}, true, ["sign"]);
        const pub256 = await S.importKey("raw", unhex("04{P256_X}{P256_Y}"), {{ name: "ECDSA", namedCurve: "P-256" }}, true, ["verify"]);
        // P-384's private key as PKCS #8 without its public key, built by hand.
        const pkcs8 = unhex("304e020100301006072a8648ce3d020106052b81040022043730350201010430{P384_D}");
        const priv384 = await S.importKey("pkcs8", pkcs8, {{ name: "ECDSA", namedCurve: "P-384" }}, true, ["sign"]);
        const jwk384 = await S.exportKey("jwk", priv384);
        const pub384 = await S.importKey("jwk", {{ kty: "EC", crv: "P-384", x: jwk384.x, y: jwk384.y }}, {{ name: "ECDSA", namedCurve: "P-384" }}, true, ["verify"]);
        const sample = enc("sample");
        const rfc = (r, s) => unhex(r + s);
        const rfc256 = rfc("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716", "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8");
        const rfc384 = rfc("94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c81a648152e44acf96e36dd1e80fabe46",
                           "99ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94fa329c145786e679e7b82c71a38628ac8");
        // RFC 6979's P-256 signature with SHA-384.
        const rfc256sha384 = rfc("0eafea039b20e9b42309fb1d89e213057cbf973dc0cfc8f129edddc800ef7719", "4861f0491e6998b9455193e34e7b0d284ddd7149a74b95b9261f13abde940954");
        const sig256 = await S.sign({{ name: "ECDSA", hash: "SHA-256" }}, priv256, sample);
        const again256 = await S.sign({{ name: "ECDSA", hash: "SHA-256" }}, priv256, sample);
        const sig384 = await S.sign({{ name: "ECDSA", hash: "SHA-384" }}, priv384, sample);
        const flipped = rfc256.slice(); flipped[5] ^= 1;
        return {{
          x384: jwk384.x, y384: jwk384.y, d384: jwk384.d, differ: hex(sig256) !== hex(again256), len: [sig256.byteLength, sig384.byteLength],
          rfc256: await S.verify({{ name: "ECDSA", hash: "SHA-256" }}, pub256, rfc256, sample),
          rfc384: await S.verify({{ name: "ECDSA", hash: "SHA-384" }}, pub384, rfc384, sample),
          ok256: await S.verify({{ name: "ECDSA", hash: "SHA-256" }}, pub256, sig256, sample),
          again256: await S.verify({{ name: "ECDSA", hash: "SHA-256" }}, pub256, again256, sample),
          ok384: await S.verify({{ name: "ECDSA", hash: "SHA-384" }}, pub384, sig384, sample),
          okSha384: await S.verify({{ name: "ECDSA", hash: "SHA-384" }}, pub256, rfc256sha384, sample),
          wrongHash: await S.verify({{ name: "ECDSA", hash: "SHA-512" }}, pub256, rfc256sha384, sample),
          flipped: await S.verify({{ name: "ECDSA", hash: "SHA-256" }}, pub256, flipped, sample),
          otherData: await S.verify({{ name: "ECDSA", hash: "SHA-256" }}, pub256, rfc256, enc("test")),
          shortSig: await S.verify({{ name: "ECDSA", hash: "SHA-256" }}, pub256, new Uint8Array(63), sample),
          alg: priv256.algorithm, type: [priv256.type, pub256.type], usages: priv256.usages,
          spki: hex(await S.exportKey("spki", pub256)),
          raw: hex(await S.exportKey("raw", pub256)),
        }};"#
    ));
    // Two signatures of one message differ (hedged nonces), and are 64/96 bytes.
    assert_eq!(v["differ"], true);
    assert_eq!(v["len"], json!([64, 96]));
    // The public point computed from the PKCS #8 private key is the RFC's.
    let b64u = |h: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex_bytes(h))
    };
    assert_eq!(v["x384"], b64u(P384_X));
    assert_eq!(v["y384"], b64u(P384_Y));
    assert_eq!(v["d384"], b64u(P384_D));
    for k in ["rfc256", "rfc384", "ok256", "again256", "ok384", "okSha384"] {
        assert_eq!(v[k], true, "{k}: {v}");
    }
    for k in ["wrongHash", "flipped", "otherData", "shortSig"] {
        assert_eq!(v[k], false, "{k}: {v}");
    }
    assert_eq!(v["alg"], json!({"name": "ECDSA", "namedCurve": "P-256"}));
    assert_eq!(v["type"], json!(["private", "public"]));
    assert_eq!(v["usages"], json!(["sign"]));
    // SPKI: id-ecPublicKey, prime256v1, the uncompressed point.
    assert_eq!(
        v["spki"],
        format!("3059301306072a8648ce3d020106082a8648ce3d03010703420004{P256_X}{P256_Y}")
    );
    assert_eq!(v["raw"], format!("04{P256_X}{P256_Y}"));
}

pub fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn generated_key_pairs_round_trip_through_every_format() {
    let v = run(&format!(
        r#"{HELPERS}
        const out = {{}};
        for (const [alg, signAlg] of [[{{ name: "ECDSA", namedCurve: "P-256" }}, {{ name: "ECDSA", hash: "SHA-256" }}],
                                      [{{ name: "ECDSA", namedCurve: "P-384" }}, {{ name: "ECDSA", hash: "SHA-512" }}],
                                      [{{ name: "Ed25519" }}, "Ed25519"]]) {{
          const name = alg.namedCurve || alg.name;
          const {{ publicKey, privateKey }} = await S.generateKey(alg, true, ["sign", "verify"]);
          const data = enc("round trip " + name);
          const sig = await S.sign(signAlg, privateKey, data);
          // Export, re-import each way, and check the signature both ways.
          const pubs = [await S.importKey("spki", await S.exportKey("spki", publicKey), alg, true, ["verify"]),
                        await S.importKey("jwk", await S.exportKey("jwk", publicKey), alg, true, ["verify"]),
                        await S.importKey("raw", await S.exportKey("raw", publicKey), alg, true, ["verify"])];
          const privs = [await S.importKey("pkcs8", await S.exportKey("pkcs8", privateKey), alg, true, ["sign"]),
                         await S.importKey("jwk", await S.exportKey("jwk", privateKey), alg, true, ["sign"])];
          const checks = [];
          for (const p of pubs) checks.push(await S.verify(signAlg, p, sig, data));
          for (const k of privs) checks.push(await S.verify(signAlg, publicKey, await S.sign(signAlg, k, data), data));
          const pkcs8a = hex(await S.exportKey("pkcs8", privateKey)), pkcs8b = hex(await S.exportKey("pkcs8", privs[0]));
          const jwk = await S.exportKey("jwk", privateKey);
          out[name] = {{ checks, samePkcs8: pkcs8a === pkcs8b, sigLen: sig.byteLength, kty: jwk.kty, crv: jwk.crv,
                        keyOps: jwk.key_ops, ext: jwk.ext, pubUsages: publicKey.usages, privUsages: privateKey.usages,
                        pubExtractable: publicKey.extractable, alg: publicKey.algorithm,
                        same: publicKey.algorithm === publicKey.algorithm && privateKey.usages === privateKey.usages }};
        }}
        return out;"#
    ));
    for (name, sig_len, kty, crv) in [
        ("P-256", 64, "EC", "P-256"),
        ("P-384", 96, "EC", "P-384"),
        ("Ed25519", 64, "OKP", "Ed25519"),
    ] {
        let r = &v[name];
        assert_eq!(
            r["checks"],
            json!([true, true, true, true, true]),
            "{name}: {r}"
        );
        assert_eq!(r["samePkcs8"], true, "{name}");
        assert_eq!(r["sigLen"], sig_len, "{name}");
        assert_eq!(
            (r["kty"].as_str(), r["crv"].as_str()),
            (Some(kty), Some(crv))
        );
        assert_eq!(r["keyOps"], json!(["sign"]), "{name}");
        assert_eq!(r["ext"], true);
        assert_eq!(r["pubUsages"], json!(["verify"]));
        assert_eq!(r["privUsages"], json!(["sign"]));
        assert_eq!(r["pubExtractable"], true);
        assert_eq!(r["same"], true, "algorithm and usages are cached objects");
    }
    assert_eq!(v["Ed25519"]["alg"], json!({"name": "Ed25519"}));
}

#[test]
fn ed25519_matches_rfc_8032_test_1() {
    // RFC 8032 7.1, TEST 1: an empty message.
    let v = run(&format!(
        r#"{HELPERS}
        const seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        const pub = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        const priv = await S.importKey("pkcs8", unhex("302e020100300506032b657004220420" + seed), "Ed25519", true, ["sign"]);
        const key = await S.importKey("raw", unhex(pub), {{ name: "ed25519" }}, true, ["verify"]);
        const sig = await S.sign("Ed25519", priv, new Uint8Array(0));
        const jwk = await S.exportKey("jwk", priv);
        const fromJwk = await S.importKey("jwk", {{ kty: "OKP", crv: "Ed25519", x: b64u(pub), d: b64u(seed), alg: "EdDSA" }}, "Ed25519", false, ["sign"]);
        const bad = new Uint8Array(sig).slice(); bad[40] ^= 0x10;
        return [hex(sig), await S.verify("Ed25519", key, sig, new Uint8Array(0)), await S.verify("Ed25519", key, bad, new Uint8Array(0)),
                await S.verify("Ed25519", key, sig, new Uint8Array(1)), jwk.x === b64u(pub), jwk.d === b64u(seed),
                hex(await S.exportKey("spki", key)), hex(await S.sign("Ed25519", fromJwk, new Uint8Array(0))) === hex(sig),
                hex(await S.exportKey("pkcs8", priv))];"#
    ));
    assert_eq!(v[0], "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    assert_eq!(v[1], true);
    assert_eq!(v[2], false);
    assert_eq!(v[3], false);
    assert_eq!(v[4], true);
    assert_eq!(v[5], true);
    assert_eq!(
        v[6],
        "302a300506032b6570032100d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(v[7], true);
    assert_eq!(
        v[8],
        "302e020100300506032b6570042204209d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    );
}

#[test]
fn key_pair_misuse_is_refused_with_the_specs_errors() {
    let v = run(&format!(
        r#"{HELPERS}
        const ec = {{ name: "ECDSA", namedCurve: "P-256" }};
        const {{ publicKey, privateKey }} = await S.generateKey(ec, false, ["sign", "verify"]);
        const ed = await S.generateKey("Ed25519", true, ["sign", "verify"]);
        const pubJwk = await S.exportKey("jwk", publicKey);
        return {{
          verifyOnly: await why(S.generateKey(ec, true, ["verify"])),
          badUsage: await why(S.generateKey(ec, true, ["sign", "encrypt"])),
          unknownUsage: await why(S.generateKey(ec, true, ["sign", "fly"])),
          p521: await why(S.generateKey({{ name: "ECDSA", namedCurve: "P-521" }}, true, ["sign"])),
          noCurve: await why(S.generateKey({{ name: "ECDSA" }}, true, ["sign"])),
          rsa: await why(S.generateKey({{ name: "RSA-PSS" }}, true, ["sign"])),
          exportPriv: await why(S.exportKey("pkcs8", privateKey)),
          signWithPublic: await why(S.sign({{ name: "ECDSA", hash: "SHA-256" }}, publicKey, enc("x"))),
          wrongAlg: await why(S.sign("Ed25519", privateKey, enc("x"))),
          noHash: await why(S.sign({{ name: "ECDSA" }}, privateKey, enc("x"))),
          badHash: await why(S.sign({{ name: "ECDSA", hash: "MD5" }}, privateKey, enc("x"))),
          rawPrivate: await why(S.exportKey("raw", ed.privateKey)),
          spkiOfPrivate: await why(S.exportKey("spki", ed.privateKey)),
          pkcs8OfPublic: await why(S.exportKey("pkcs8", ed.publicKey)),
          badPoint: await why(S.importKey("raw", new Uint8Array(65).fill(4), ec, true, ["verify"])),
          wrongCurve: await why(S.importKey("jwk", pubJwk, {{ name: "ECDSA", namedCurve: "P-384" }}, true, ["verify"])),
          badSpki: await why(S.importKey("spki", new Uint8Array([48, 3, 1, 1, 0]), ec, true, ["verify"])),
          hugeSpki: await why(S.importKey("spki", new Uint8Array(1 << 20), ec, true, ["verify"])),
          spkiSign: await why(S.importKey("spki", await S.exportKey("spki", publicKey), ec, true, ["sign"])),
          edShort: await why(S.importKey("raw", new Uint8Array(31), "Ed25519", true, ["verify"])),
          edPkcs8AsEc: await why(S.importKey("pkcs8", await S.exportKey("pkcs8", ed.privateKey), ec, true, ["sign"])),
          jwkMismatch: await why(S.importKey("jwk", {{ ...(await S.exportKey("jwk", ed.privateKey)), x: pubJwk.x.slice(0, 43) }}, "Ed25519", true, ["sign"])),
          jwkKty: await why(S.importKey("jwk", {{ ...pubJwk, kty: "OKP" }}, ec, true, ["verify"])),
          jwkOps: await why(S.importKey("jwk", {{ ...pubJwk, key_ops: ["sign"] }}, ec, true, ["verify"])),
          jwkExt: await why(S.importKey("jwk", {{ ...pubJwk, ext: false }}, ec, true, ["verify"])),
          jwkBase64: await why(S.importKey("jwk", {{ ...pubJwk, x: "+" + pubJwk.x.slice(1) }}, ec, true, ["verify"])),
          format: await why(S.importKey("pem", new Uint8Array(1), ec, true, ["verify"])),
          emptyPrivUsages: await why(S.importKey("pkcs8", await S.exportKey("pkcs8", ed.privateKey), "Ed25519", true, [])),
          notKey: await why(S.sign("Ed25519", {{}}, enc("x"))),
        }};"#
    ));
    let expect = [
        ("verifyOnly", "SyntaxError"),
        ("badUsage", "SyntaxError"),
        ("unknownUsage", "TypeError"),
        ("p521", "NotSupportedError"),
        ("noCurve", "TypeError"),
        ("rsa", "NotSupportedError"),
        ("exportPriv", "InvalidAccessError"),
        ("signWithPublic", "InvalidAccessError"),
        ("wrongAlg", "InvalidAccessError"),
        ("noHash", "TypeError"),
        ("badHash", "NotSupportedError"),
        ("rawPrivate", "InvalidAccessError"),
        ("spkiOfPrivate", "InvalidAccessError"),
        ("pkcs8OfPublic", "InvalidAccessError"),
        ("badPoint", "DataError"),
        ("wrongCurve", "DataError"),
        ("badSpki", "DataError"),
        ("hugeSpki", "DataError"),
        ("spkiSign", "SyntaxError"),
        ("edShort", "DataError"),
        ("edPkcs8AsEc", "DataError"),
        ("jwkMismatch", "DataError"),
        ("jwkKty", "DataError"),
        ("jwkOps", "DataError"),
        ("jwkExt", "DataError"),
        ("jwkBase64", "DataError"),
        ("format", "TypeError"),
        ("emptyPrivUsages", "SyntaxError"),
        ("notKey", "TypeError"),
    ];
    for (k, name) in expect {
        assert_eq!(v[k][0], name, "{k}: {}", v[k]);
    }
    assert!(v["p521"][1].as_str().unwrap().contains("P-521"), "{v}");
}
