//! The control plane refuses unsafe configuration: weak admin tokens, open
//! metrics, out-of-range limits and settings, stolen routes, loose file
//! modes, plain-text secrets at rest, interleaved deploys.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use isola_core::{Engine, EngineConfig};
use isola_server::{Server, ServerError, TokenProblem};
use serde_json::json;

use crate::util::{config, start, start_with, TOKEN};

/// A file's permission bits, in octal.
fn mode(p: &Path) -> String {
    let m = std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode();
    format!("{:o}", m & 0o777)
}

/// `Server::new` with `c`; the error if it refuses.
fn server_new_error(c: isola_server::ServerConfig) -> ServerError {
    let engine = Engine::new(EngineConfig::with_data_dir(&c.data_dir)).unwrap();
    match Server::new(engine, c) {
        Ok(_) => panic!("the server started"),
        Err(e) => e,
    }
}

#[test]
fn empty_blank_or_short_admin_tokens_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for (token, expected) in [
        ("", TokenProblem::Empty),
        ("   \t", TokenProblem::Empty),
        ("fifteen-bytes-x", TokenProblem::TooShort(15)),
        ("sixteen bytes xx", TokenProblem::BadCharacters),
        (&"x".repeat(1025), TokenProblem::TooLong(1025)),
    ] {
        let mut c = config(dir.path());
        c.admin_token = Some(token.into());
        match server_new_error(c) {
            ServerError::AdminToken { problem, .. } => assert_eq!(problem, expected, "{token:?}"),
            other => panic!("{token:?}: {other}"),
        }
    }
    let mut c = config(dir.path());
    c.admin_token = Some(String::new());
    let text = server_new_error(c).to_string();
    assert!(
        text.contains("--admin-token / ISOLA_ADMIN_TOKEN is empty") && text.contains("at least 16"),
        "{text}"
    );
    // The same from the token file.
    let data = dir.path().join("file");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("admin-token"), "\n").unwrap();
    let mut c = config(&data);
    c.admin_token = None;
    let text = server_new_error(c).to_string();
    assert!(text.contains("admin-token is empty"), "{text}");
    // Exactly 16 bytes is enough.
    let mut c = config(dir.path());
    c.admin_token = Some("sixteen-bytes-xx".into());
    let s = start_with(c);
    let r = ureq::get(&format!("http://{}/v1/tenants", s.server.admin_addr))
        .set("Authorization", "Bearer sixteen-bytes-xx")
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
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

#[test]
fn unknown_or_out_of_range_settings_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let big = "x".repeat(64 << 10);
    let cases = [
        (json!({"limits": {"cpu_ms": 20}}), "limits.cpu_ms"),
        (json!({"limtis": {}}), "limtis"),
        (json!({"limits": {"cpu": "fast"}}), "limits.cpu"),
        (json!({"routes": "a.example.com"}), "routes"),
        (
            json!({"limits": {"heap_bytes": 5u64 << 30}}),
            "limits.heap_bytes",
        ),
        (
            json!({"limits": {"heap_bytes": 1 << 20}}),
            "limits.heap_bytes",
        ),
        (json!({"limits": {"cpu": 0}}), "limits.cpu"),
        (json!({"limits": {"cpu": 600_001}}), "limits.cpu"),
        (json!({"limits": {"wall": 3_600_001}}), "limits.wall"),
        (
            json!({"limits": {"startup_cpu": 600_001}}),
            "limits.startup_cpu",
        ),
        (
            json!({"limits": {"max_concurrency": 10_001}}),
            "limits.max_concurrency",
        ),
        (
            json!({"limits": {"max_concurrency": 0}}),
            "limits.max_concurrency",
        ),
        (
            json!({"limits": {"code_size_bytes": (64 << 20) + 1}}),
            "limits.code_size_bytes",
        ),
        (
            json!({"limits": {"termination_grace": 9}}),
            "limits.termination_grace",
        ),
        (
            json!({"limits": {"termination_grace": 10_001}}),
            "limits.termination_grace",
        ),
        (
            json!({"limits": {"external_memory_bytes": (4u64 << 30) + 1}}),
            "limits.external_memory_bytes",
        ),
        (
            json!({"max_body_bytes": (1u64 << 30) + 1}),
            "max_body_bytes",
        ),
        (
            json!({"routes": (0..33).map(|i| format!("r{i}.example.com")).collect::<Vec<_>>()}),
            "routes",
        ),
        (json!({"env": {"BAD-NAME": "x"}}), "env.BAD-NAME"),
        (json!({"env": {"BIG": format!("{big}x")}}), "env.BIG"),
        (json!({"secrets": {"K": format!("{big}x")}}), "secrets.K"),
        (
            json!({"env": {"K": "a"}, "secrets": {"K": "b"}}),
            "secrets.K",
        ),
        (
            json!({"env": (0..129).map(|i| (format!("V{i}"), json!("x"))).collect::<serde_json::Map<_, _>>()}),
            "env",
        ),
        (
            json!({"env": (0..17).map(|i| (format!("V{i}"), json!(big))).collect::<serde_json::Map<_, _>>()}),
            "env",
        ),
    ];
    let short = |t: String| t.chars().take(200).collect::<String>();
    for (body, field) in cases {
        let r = s.admin("PUT", "/v1/tenants/acme", Some(body.clone()));
        let what = format!("{}: {}", short(body.to_string()), short(r.body.clone()));
        assert_eq!(r.status, 422, "{what}");
        assert_eq!(r.json()["field"], field, "{what}");
        assert_eq!(r.json()["error"], "invalid");
    }
    // Nothing of it was stored.
    assert_eq!(s.admin("GET", "/v1/tenants/acme", None).status, 404);
    // Malformed JSON stays a 400.
    let r = finish_raw(&s, "{\"limits\": ");
    assert_eq!(r, 400);
    // The bounds themselves are accepted.
    let max = json!({"limits": {"heap_bytes": 4u64 << 30, "cpu": 600_000, "wall": 3_600_000,
        "startup_cpu": 600_000, "max_concurrency": 10_000, "code_size_bytes": 64 << 20,
        "termination_grace": 10_000, "external_memory_bytes": 0}, "max_body_bytes": 1u64 << 30});
    let r = s.admin("PUT", "/v1/tenants/acme", Some(max));
    assert_eq!(r.status, 200, "{}", r.body);
}

fn finish_raw(s: &crate::util::TestServer, body: &str) -> u16 {
    match ureq::put(&format!("http://{}/v1/tenants/raw", s.server.admin_addr))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .send_string(body)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(c, _)) => c,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_route_owned_by_one_tenant_cannot_be_claimed_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let r = s.admin(
        "PUT",
        "/v1/tenants/alice",
        Some(json!({"routes": ["Shop.Example.com"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["settings"]["routes"], json!(["shop.example.com"]));
    assert_eq!(
        s.deploy(
            "alice",
            "export default { fetch() { return new Response('alice'); } };"
        )
        .status,
        201
    );
    assert_eq!(
        s.deploy(
            "bob",
            "export default { fetch() { return new Response('bob'); } };"
        )
        .status,
        201
    );

    let r = s.admin(
        "PUT",
        "/v1/tenants/bob",
        Some(json!({"routes": ["bob.example.org", "shop.example.com"]})),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["owner"], "alice");
    assert_eq!(r.json()["field"], "routes");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("shop.example.com"));
    // Shadowing another tenant's {id}.{base_domain} name.
    let r = s.admin(
        "PUT",
        "/v1/tenants/bob",
        Some(json!({"routes": ["alice.localhost"]})),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["owner"], "alice");
    // Names under the base domain are reserved even for tenants not created yet.
    let r = s.admin(
        "PUT",
        "/v1/tenants/bob",
        Some(json!({"routes": ["carol.localhost"]})),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    // Not a host name.
    for bad in ["shop.example.com/x", "a b.com", "host:8080", "a..b"] {
        let r = s.admin("PUT", "/v1/tenants/bob", Some(json!({"routes": [bad]})));
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
        assert_eq!(r.json()["field"], "routes");
    }
    // The route still reaches its owner; its owner may set it again; its own name is fine.
    assert_eq!(s.data("shop.example.com", "/").body, "alice");
    let r = s.admin(
        "PUT",
        "/v1/tenants/alice",
        Some(json!({"routes": ["shop.example.com", "alice.localhost"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Once alice lets it go, bob may take it.
    assert_eq!(
        s.admin("PUT", "/v1/tenants/alice", Some(json!({}))).status,
        200
    );
    let r = s.admin(
        "PUT",
        "/v1/tenants/bob",
        Some(json!({"routes": ["shop.example.com"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.data("shop.example.com", "/").body, "bob");
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
        let err = server_new_error(config(dir.path())).to_string();
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
    // No key at all: refused, and no new key is made in its place.
    std::fs::remove_file(&key).unwrap();
    let err = server_new_error(config(dir.path())).to_string();
    assert!(
        err.contains("secrets.key") && err.contains("restore"),
        "{err}"
    );
    assert!(!key.exists());
    // With the right key, it serves again.
    std::fs::write(&key, &good_key).unwrap();
    let s = start(dir.path());
    assert_eq!(s.deploy("acme", ECHO_SECRET).status, 201);
    assert_eq!(s.data("acme.localhost", "/").body, "acme-secret");
}

#[test]
fn concurrent_deploys_and_rollbacks_of_a_tenant_keep_the_registry_on_the_stores_version() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(start(dir.path()));
    let state = s.server.state().clone();
    let (rounds, writers) = (150, 4);
    let mut deployed = 0u64;
    for round in 0..rounds {
        // Each round: deploys and rollbacks released together; then the
        // serving deployment must be the store's current version.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(writers));
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (s, barrier) = (s.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    if w % 2 == 1 && round > 0 {
                        let r = s.admin("POST", "/v1/tenants/race/rollback", None);
                        assert!(r.status == 200 || r.status == 404, "{}", r.body);
                        0
                    } else {
                        let src = format!(
                            "export default {{ fetch() {{ return new Response('r{round} w{w}'); }} }};"
                        );
                        let r = s.deploy("race", &src);
                        assert_eq!(r.status, 201, "{}", r.body);
                        1
                    }
                })
            })
            .collect();
        for h in handles {
            deployed += h.join().unwrap();
        }
        let stored = state.store.get("race").unwrap().unwrap().current.unwrap();
        let serving = state.registry.current("race").unwrap();
        assert_eq!(
            serving.version, stored,
            "round {round}: the registry serves another version than the store's current one"
        );
        assert_eq!(
            Some(&*serving.code),
            state.store.code("race", stored).unwrap().as_ref()
        );
    }
    let versions: Vec<u64> = state
        .store
        .versions("race")
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(
        versions,
        (1..=deployed).collect::<Vec<_>>(),
        "contiguous versions"
    );
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

#[test]
fn concurrent_deploys_and_deletes_leave_the_store_and_registry_agreeing() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(start(dir.path()));
    let state = s.server.state().clone();
    for round in 0..200 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let (s, barrier) = (s.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    if w % 2 == 0 {
                        let r = s.admin("DELETE", "/v1/tenants/gone", None);
                        assert!(r.status == 204 || r.status == 404, "{}", r.body);
                    } else {
                        let src = format!(
                            "export default {{ fetch() {{ return new Response('r{round} w{w}'); }} }};"
                        );
                        let r = s.deploy("gone", &src);
                        assert_eq!(r.status, 201, "{}", r.body);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        match state.store.get("gone").unwrap() {
            None => assert!(
                state.registry.settings("gone").is_none(),
                "round {round}: deleted from the store but still in the registry"
            ),
            Some(t) => {
                let serving = state.registry.current("gone").unwrap_or_else(|e| {
                    panic!("round {round}: stored but not served: {}", e.body())
                });
                assert_eq!(Some(serving.version), t.current, "round {round}");
            }
        }
    }
}
