//! The control plane refuses unsafe configuration: weak admin tokens, open
//! metrics, out-of-range limits and settings, stolen routes, loose file
//! modes, plain-text secrets at rest, interleaved deploys.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use isola_core::{Engine, EngineConfig};
use isola_server::{Server, ServerError};
use serde_json::json;

use crate::util::{config, start, start_with};

/// A file's permission bits, in octal.
fn mode(p: &Path) -> String {
    let m = std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode();
    format!("{:o}", m & 0o777)
}

/// `Server::new` on `dir`; the error text if it refuses.
fn server_new_error(c: isola_server::ServerConfig) -> String {
    let engine = Engine::new(EngineConfig::with_data_dir(&c.data_dir)).unwrap();
    match Server::new(engine, c) {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_blank_or_short_admin_tokens_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for (token, problem) in [
        ("", "is empty"),
        ("   \t", "is empty"),
        ("fifteen-bytes-x", "is too short (15 bytes)"),
        ("sixteen bytes xx", "holds whitespace"),
    ] {
        let mut c = config(dir.path());
        c.admin_token = Some(token.into());
        let err = server_new_error(c);
        assert!(err.contains(problem), "{token:?}: {err}");
        assert!(err.contains("at least 16"), "{err}");
    }
    // The same from the token file.
    let data = dir.path().join("file");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("admin-token"), "\n").unwrap();
    let mut c = config(&data);
    c.admin_token = None;
    let err = server_new_error(c);
    assert!(err.contains("admin-token is empty"), "{err}");
    // Exactly 16 bytes is enough.
    let mut c = config(dir.path());
    c.admin_token = Some("sixteen-bytes-xx".into());
    let s = start_with(c);
    let r = ureq::get(&format!("http://{}/v1/tenants", s.server.admin_addr))
        .set("Authorization", "Bearer sixteen-bytes-xx")
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(matches!(
        ServerError::AdminToken {
            origin: "x".into(),
            problem: isola_server::TokenProblem::Empty
        },
        ServerError::AdminToken { .. }
    ));
}

#[test]
fn metrics_need_the_token_unless_served_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    assert_eq!(s.admin_with_token("GET", "/metrics", None).status, 401);
    assert_eq!(
        s.admin_with_token("GET", "/metrics", Some("wrong")).status,
        401
    );
    let m = s.admin("GET", "/metrics", None);
    assert_eq!(m.status, 200);
    assert!(m.body.contains("isola_"), "{}", m.body);
    // Health and the API description stay open.
    assert_eq!(s.admin_with_token("GET", "/healthz", None).status, 200);
    assert_eq!(
        s.admin_with_token("GET", "/v1/openapi.json", None).status,
        200
    );
    assert!(s.server.metrics_addr.is_none());
    s.server_shutdown();

    let mut c = config(dir.path());
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let s = start_with(c);
    let addr = s.server.metrics_addr.expect("metrics listener");
    let open = ureq::get(&format!("http://{addr}/metrics")).call().unwrap();
    assert_eq!(open.status(), 200);
    assert!(open.into_string().unwrap().contains("isola_"));
    // Only /metrics there: the admin API is not reachable through it.
    match ureq::get(&format!("http://{addr}/v1/tenants")).call() {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("admin API on the metrics listener: {other:?}"),
    }
    assert_eq!(s.admin_with_token("GET", "/metrics", None).status, 401);
}

const ECHO_SECRET: &str =
    "export default { fetch(req, env) { return new Response(String(env.API_KEY)); } };";

/// `isola.db` and its WAL, raw.
fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["isola.db", "isola.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn the_data_dir_is_0700_and_the_database_files_0600() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = start(&data);
    assert_eq!(s.deploy("acme", ECHO_SECRET).status, 201);
    assert_eq!(
        mode(&data),
        "700",
        "an existing loose data dir is tightened"
    );
    for f in [
        "isola.db",
        "isola.db-wal",
        "isola.db-shm",
        "secrets.key",
        "code-cache.key",
    ] {
        assert_eq!(mode(&data.join(f)), "600", "{f}");
    }
    // A fresh data dir (and its missing parents) starts private.
    let fresh = dir.path().join("new/data");
    let mut c = config(&fresh);
    c.admin_token = None;
    let s2 = start_with(c);
    assert_eq!(mode(&fresh), "700");
    assert_eq!(mode(&fresh.join("isola.db")), "600");
    assert_eq!(mode(&fresh.join("admin-token")), "600");
    drop(s2);
    drop(s);
}

#[test]
fn secrets_are_encrypted_at_rest_and_still_reach_the_handler() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-value-7f1c9a2e";
    {
        let s = start(dir.path());
        let r = s.admin(
            "PUT",
            "/v1/tenants/acme",
            Some(json!({"secrets": {"API_KEY": secret}})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(s.deploy("acme", ECHO_SECRET).status, 201);
        assert_eq!(s.data("acme.localhost", "/").body, secret);
        let raw = db_bytes(dir.path());
        assert!(contains(&raw, "API_KEY"), "the name is stored");
        assert!(
            !contains(&raw, secret),
            "the value is in isola.db in plain text"
        );
        s.server_shutdown();
    }
    // After a restart the handler still sees it.
    let s = start(dir.path());
    assert_eq!(s.data("acme.localhost", "/").body, secret);
    assert!(!contains(&db_bytes(dir.path()), secret));
}

/// A data dir as an older version left it: the secret inside the settings JSON.
fn old_store(dir: &Path, secret: &str) {
    let conn = rusqlite::Connection::open(dir.join("isola.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE tenants (id TEXT PRIMARY KEY, settings TEXT NOT NULL, current_version INTEGER, updated INTEGER NOT NULL);
         CREATE TABLE tenant_versions (tenant TEXT NOT NULL, version INTEGER NOT NULL, code TEXT NOT NULL,
             sha256 TEXT NOT NULL, size INTEGER NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (tenant, version));",
    )
    .unwrap();
    let mut settings = isola_server::TenantSettings::default();
    settings.secrets.insert("API_KEY".into(), secret.into());
    let code = isola_core::TenantCode::single("index.js", ECHO_SECRET);
    conn.execute(
        "INSERT INTO tenants VALUES ('old', ?1, 1, 0)",
        [serde_json::to_string(&settings).unwrap()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO tenant_versions VALUES ('old', 1, ?1, 'x', 1, 0)",
        [serde_json::to_string(&code).unwrap()],
    )
    .unwrap();
}

#[test]
fn plain_text_secrets_of_an_older_version_are_sealed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "legacy-plain-secret-0b5e";
    old_store(dir.path(), secret);
    assert!(contains(&db_bytes(dir.path()), secret));
    let s = start(dir.path());
    assert_eq!(s.data("old.localhost", "/").body, secret);
    assert!(
        !contains(&db_bytes(dir.path()), secret),
        "the plain-text value is still in isola.db or its WAL"
    );
}

#[test]
fn a_wrong_key_or_an_altered_secret_is_an_error_naming_tenant_and_secret() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = start(dir.path());
        for t in ["acme", "other"] {
            let r = s.admin(
                "PUT",
                &format!("/v1/tenants/{t}"),
                Some(json!({"secrets": {"API_KEY": format!("{t}-secret")}})),
            );
            assert_eq!(r.status, 200);
        }
        s.server_shutdown();
    }
    let db = || rusqlite::Connection::open(dir.path().join("isola.db")).unwrap();
    let expect_refusal = |what: &str| {
        let err = server_new_error(config(dir.path()));
        assert!(
            err.contains("\"API_KEY\"") && err.contains("\"acme\"") && err.contains("decrypted"),
            "{what}: {err}"
        );
    };
    // A flipped bit.
    let original: Vec<u8> = db()
        .query_row(
            "SELECT value FROM tenant_secrets WHERE tenant = 'acme'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut flipped = original.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let set = |v: &[u8]| {
        db().execute(
            "UPDATE tenant_secrets SET value = ?1 WHERE tenant = 'acme'",
            [v],
        )
        .unwrap()
    };
    set(&flipped);
    expect_refusal("tampered");
    // Another tenant's value moved over.
    let others: Vec<u8> = db()
        .query_row(
            "SELECT value FROM tenant_secrets WHERE tenant = 'other'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    set(&others);
    expect_refusal("moved");
    // The right value with the wrong key.
    set(&original);
    let key = dir.path().join("secrets.key");
    let good_key = std::fs::read(&key).unwrap();
    std::fs::write(&key, [9u8; 32]).unwrap();
    expect_refusal("wrong key");
    // With the right key, it serves again.
    std::fs::write(&key, &good_key).unwrap();
    let s = start(dir.path());
    assert_eq!(s.deploy("acme", ECHO_SECRET).status, 201);
    assert_eq!(s.data("acme.localhost", "/").body, "acme-secret");
}

#[test]
fn concurrent_deploys_of_different_tenants_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(start(dir.path()));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..15 {
                    let src = format!(
                        "export default {{ fetch() {{ return new Response('t{t} i{i}'); }} }};"
                    );
                    let r = s.deploy(&format!("tenant-{t}"), &src);
                    assert_eq!(r.status, 201, "{}", r.body);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for t in 0..6 {
        assert_eq!(
            s.data(&format!("tenant-{t}.localhost"), "/").body,
            format!("t{t} i14")
        );
    }
}
