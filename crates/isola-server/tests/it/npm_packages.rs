//! Popular npm packages that target web APIs run unchanged as tenants: each
//! is deployed with its published files (fetched by
//! `scripts/fetch-npm-packages.sh` into `target/npm-packages/`, not
//! committed; `./x.sh test` runs it first) next to a small `index.js`, and
//! asserted on real HTTP responses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::util::{start, TestServer};

fn packages_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/npm-packages")
}

/// Every `.js`/`.mjs` file of `package/<sub>` of npm package `name`, keyed
/// `name/<path below package>`.
fn package_files(name: &str, sub: &str) -> BTreeMap<String, String> {
    let root = packages_dir().join(name).join("package");
    assert!(
        root.is_dir(),
        "npm package {name} is missing: run scripts/fetch-npm-packages.sh (./x.sh test does)"
    );
    let mut out = BTreeMap::new();
    let mut stack = vec![root.join(sub)];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "js" || x == "mjs") {
                let rel = p.strip_prefix(&root).unwrap().to_string_lossy().to_string();
                out.insert(
                    format!("{name}/{rel}"),
                    std::fs::read_to_string(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn deploy_with(s: &TestServer, tenant: &str, index: &str, packages: &[(&str, &str)]) {
    let mut files = BTreeMap::new();
    for (name, sub) in packages {
        files.extend(package_files(name, sub));
    }
    files.insert("index.js".to_string(), index.to_string());
    let r = s.admin(
        "PUT",
        &format!("/v1/tenants/{tenant}/code"),
        Some(json!({ "files": files })),
    );
    assert!(
        r.status < 300,
        "deploying {tenant}: {} {}",
        r.status,
        r.body
    );
}

#[test]
fn hono_routes_requests_with_params_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    deploy_with(
        &s,
        "hono",
        "import { Hono } from './hono/dist/index.js';
         const app = new Hono();
         app.get('/hello/:name', (c) => c.json({ hi: c.req.param('name'), q: c.req.query('x') ?? null }));
         app.post('/echo', async (c) => c.text('got ' + (await c.req.text())));
         app.notFound((c) => c.text('nothing at ' + new URL(c.req.url).pathname, 404));
         export default app;",
        &[("hono", "dist")],
    );
    let r = s.data("hono.localhost", "/hello/bob?x=1");
    assert_eq!((r.status, r.json()), (200, json!({"hi": "bob", "q": "1"})));
    let r = s.post("hono.localhost", "/echo", "ping");
    assert_eq!((r.status, r.body.as_str()), (200, "got ping"));
    let r = s.data("hono.localhost", "/nope");
    assert_eq!((r.status, r.body.as_str()), (404, "nothing at /nope"));
}

#[test]
fn zod_validates_request_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    deploy_with(
        &s,
        "zod",
        "import { z } from './zod/lib/index.mjs';
         const User = z.object({ name: z.string().min(2), age: z.number().int().positive() });
         export default { async fetch(req) {
           const r = User.safeParse(await req.json());
           if (!r.success) return Response.json({ errors: r.error.issues.map((i) => i.path.join('.') + ': ' + i.code) }, { status: 400 });
           return Response.json({ ok: r.data });
         } };",
        &[("zod", "lib")],
    );
    let r = s.post("zod.localhost", "/", r#"{"name":"Ada","age":36}"#);
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"ok": {"name": "Ada", "age": 36}}))
    );
    let r = s.post("zod.localhost", "/", r#"{"name":"A","age":-1}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"errors": ["name: too_small", "age: too_small"]})
    );
}

#[test]
fn jose_signs_and_verifies_jwts_with_crypto_subtle() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    deploy_with(
        &s,
        "jose",
        "import { SignJWT, jwtVerify } from './jose/dist/browser/index.js';
         const secret = new TextEncoder().encode('a-32-byte-long-secret-for-hs256!');
         export default { async fetch(req) {
           const url = new URL(req.url);
           if (url.pathname === '/sign') {
             const jwt = await new SignJWT({ sub: url.searchParams.get('sub') }).setProtectedHeader({ alg: 'HS256' })
               .setIssuedAt().setExpirationTime('2h').sign(secret);
             return new Response(jwt);
           }
           try {
             const { payload } = await jwtVerify(url.searchParams.get('token'), secret);
             return Response.json({ sub: payload.sub });
           } catch (e) {
             return Response.json({ error: e.code }, { status: 401 });
           }
         } };",
        &[("jose", "dist/browser")],
    );
    let r = s.data("jose.localhost", "/sign?sub=alice");
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body.clone();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let r = s.data("jose.localhost", &format!("/verify?token={token}"));
    assert_eq!((r.status, r.json()), (200, json!({"sub": "alice"})));
    // A token whose signature is not the secret's is refused (the first
    // character of the signature changed: the last one may carry only
    // padding bits).
    let sig_at = token.rfind('.').unwrap() + 1;
    let first = &token[sig_at..sig_at + 1];
    let other = if first == "A" { "B" } else { "A" };
    let forged = format!("{}{other}{}", &token[..sig_at], &token[sig_at + 1..]);
    let r = s.data("jose.localhost", &format!("/verify?token={forged}"));
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"], "ERR_JWS_SIGNATURE_VERIFICATION_FAILED");
}

#[test]
fn jose_signs_and_verifies_es256_and_eddsa_jwts_and_encrypts_with_a256gcm() {
    // crypto.subtle's key pairs (ECDSA P-256, Ed25519) and AES-GCM through
    // jose: keys generated, exported and imported again (PKCS #8, SPKI,
    // JWK), a JWT signed and verified, a forged one refused, and a JWE.
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    // One request generates P-256, P-384 and Ed25519 keys and loads jose and
    // the crypto areas cold: a functional test, so a CPU budget well above
    // the 50 ms default (which a loaded test machine can pass).
    let r = s.admin(
        "PUT",
        "/v1/tenants/josekeys",
        Some(json!({ "limits": { "cpu": 1000 } })),
    );
    assert!(r.status < 300, "{}", r.body);
    deploy_with(
        &s,
        "josekeys",
        "import { SignJWT, jwtVerify, generateKeyPair, exportJWK, importJWK, exportSPKI, importSPKI,
                  exportPKCS8, importPKCS8, CompactEncrypt, compactDecrypt } from './jose/dist/browser/index.js';
         export default { async fetch(req) {
           const alg = new URL(req.url).searchParams.get('alg');
           if (alg === 'A256GCM') {
             const k = crypto.getRandomValues(new Uint8Array(32));
             const jwe = await new CompactEncrypt(new TextEncoder().encode('secret'))
               .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(k);
             return Response.json({ plain: new TextDecoder().decode((await compactDecrypt(jwe, k)).plaintext) });
           }
           const kp = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
           const priv = await importPKCS8(await exportPKCS8(kp.privateKey), alg);
           const pubJwk = await importJWK(await exportJWK(kp.publicKey), alg);
           const pubSpki = await importSPKI(await exportSPKI(kp.publicKey), alg);
           const jwt = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg }).setIssuedAt().sign(priv);
           const a = await jwtVerify(jwt, pubJwk);
           const b = await jwtVerify(jwt, pubSpki);
           const [h, p, sig] = jwt.split('.');
           const forged = `${h}.${p}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
           let error = null;
           try { await jwtVerify(forged, pubJwk); } catch (e) { error = e.code; }
           return Response.json({ subs: [a.payload.sub, b.payload.sub], crv: (await exportJWK(kp.publicKey)).crv, error });
         } };",
        &[("jose", "dist/browser")],
    );
    for (alg, crv) in [("ES256", "P-256"), ("ES384", "P-384"), ("EdDSA", "Ed25519")] {
        let r = s.data("josekeys.localhost", &format!("/?alg={alg}"));
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        assert_eq!(
            r.json(),
            json!({"subs": ["alice", "alice"], "crv": crv, "error": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"}),
            "{alg}"
        );
    }
    let r = s.data("josekeys.localhost", "/?alg=A256GCM");
    assert_eq!((r.status, r.json()), (200, json!({"plain": "secret"})));
}

#[test]
fn marked_renders_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    deploy_with(
        &s,
        "marked",
        "import { marked } from './marked/lib/marked.esm.js';
         export default { async fetch(req) {
           return new Response(marked.parse(await req.text()), { headers: { 'content-type': 'text/html' } });
         } };",
        &[("marked", "lib")],
    );
    let r = s.post(
        "marked.localhost",
        "/",
        "# Title\n\nSome *emphasis* and [a link](https://example.com).",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        "<h1>Title</h1>\n<p>Some <em>emphasis</em> and <a href=\"https://example.com\">a link</a>.</p>\n"
    );
}

#[test]
fn nanoid_makes_ids_from_crypto_random_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    deploy_with(
        &s,
        "nanoid",
        "import { nanoid, customAlphabet } from './nanoid/index.browser.js';
         const hex = customAlphabet('0123456789abcdef', 8);
         export default { fetch() { return Response.json({ ids: Array.from({ length: 50 }, () => nanoid()), hex: hex() }); } };",
        &[("nanoid", "")],
    );
    let v = s.data("nanoid.localhost", "/").json();
    let ids: Vec<&str> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| i.len() == 21
            && i.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')),
        "{ids:?}"
    );
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 50);
    let hex = v["hex"].as_str().unwrap();
    assert!(
        hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{hex}"
    );
}

/// Lets `tenant` fetch from `up` (settings before the code).
fn allow_fetch(s: &TestServer, tenant: &str, up: &crate::fetch::Upstream) {
    let r = s.admin(
        "PUT",
        &format!("/v1/tenants/{tenant}"),
        Some(json!({ "fetch": { "allow": [format!("127.0.0.1:{}", up.port)] }, "expose_errors": true })),
    );
    assert!(r.status < 300, "{}", r.body);
}

#[test]
fn ky_makes_http_requests_with_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let up = crate::fetch::Upstream::start();
    allow_fetch(&s, "ky", &up);
    let base = up.url("");
    deploy_with(
        &s,
        "ky",
        &format!(
            "import ky from './ky/distribution/index.js';
             const api = ky.create({{ prefixUrl: '{base}', headers: {{ 'x-token': 'k1' }} }});
             export default {{ async fetch() {{
               const hello = await api.get('hello').text();
               const echo = await api.post('echo', {{ json: {{ a: 1 }} }}).json();
               let missing;
               try {{ await api.get('missing'); }} catch (e) {{ missing = [e.name, e.response.status]; }}
               return Response.json({{ hello, echo, missing }});
             }} }};"
        ),
        &[("ky", "distribution")],
    );
    let r = s.data("ky.localhost", "/");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["hello"], "hi");
    assert_eq!(v["echo"]["method"], "POST");
    assert_eq!(v["echo"]["token"], "k1");
    assert_eq!(v["echo"]["body"], "{\"a\":1}");
    assert_eq!(v["missing"], json!(["HTTPError", 404]));
}

#[test]
fn aws4fetch_signs_s3_requests_with_crypto_subtle_and_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let up = crate::fetch::Upstream::start();
    allow_fetch(&s, "s3", &up);
    deploy_with(
        &s,
        "s3",
        &format!(
            "import {{ AwsClient }} from './aws4fetch/dist/aws4fetch.esm.mjs';
             const aws = new AwsClient({{ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', service: 's3', region: 'us-east-1' }});
             export default {{ async fetch() {{
               const at = {{ aws: {{ datetime: '20150830T123600Z' }} }};
               const a = await aws.sign('{echo}', {{ method: 'PUT', body: 'object bytes', ...at }});
               const b = await aws.sign('{echo}', {{ method: 'PUT', body: 'object bytes', ...at }});
               const fixed = await aws.sign('https://examplebucket.s3.amazonaws.com/test.txt', {{ method: 'GET', ...at }});
               const sent = await (await aws.fetch('{echo}', {{ method: 'PUT', body: 'object bytes' }})).json();
               return Response.json({{ a: a.headers.get('authorization'), same: a.headers.get('authorization') === b.headers.get('authorization'),
                                       fixed: fixed.headers.get('authorization'), sha: fixed.headers.get('x-amz-content-sha256'), sent }});
             }} }};",
            echo = up.url("/echo")
        ),
        &[("aws4fetch", "dist")],
    );
    let r = s.data("s3.localhost", "/");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let auth = v["a"].as_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, SignedHeaders="),
        "{auth}"
    );
    let sig = auth.rsplit("Signature=").next().unwrap();
    assert_eq!(sig.len(), 64, "{auth}");
    assert!(sig.bytes().all(|c| c.is_ascii_hexdigit()), "{auth}");
    assert_eq!(v["same"], true);
    assert_eq!(v["sha"], "UNSIGNED-PAYLOAD");
    // The same signature as an independent SigV4 implementation (Python's
    // hashlib/hmac) computes for this request, key and time.
    assert_eq!(
        v["fixed"],
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, \
         SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
         Signature=7514ed216b6a6b467fb8829182f8229335db730ee078fdf25f96c072ff9203fa"
    );
    assert_eq!(v["sent"]["method"], "PUT");
    assert_eq!(v["sent"]["body"], "object bytes");
    assert!(v["sent"]["authorization"]
        .as_str()
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256 "));
}
