//! Helpers shared by the integration tests.

use std::sync::{Arc, Mutex};

use isola_core::{
    ConsoleSink, Engine, EngineConfig, Limits, Output, Tenant, TenantCode, TenantConfig,
};

/// An engine with its own temporary data directory.
pub struct TestEngine {
    pub engine: Engine,
    /// Kept so the directory lives as long as the engine.
    pub _dir: tempfile::TempDir,
}

pub fn engine() -> TestEngine {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(EngineConfig::with_data_dir(dir.path())).unwrap();
    TestEngine { engine, _dir: dir }
}

/// Collects console lines.
#[derive(Clone, Default)]
pub struct Console(pub Arc<Mutex<Vec<String>>>);

impl Console {
    pub fn sink(&self) -> ConsoleSink {
        let lines = self.0.clone();
        Arc::new(move |_l, s| lines.lock().unwrap().push(s.to_string()))
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

pub fn config(name: &str) -> TenantConfig {
    TenantConfig::new(name).console(Console::default().sink())
}

pub fn tenant(engine: &Engine, name: &str, source: &str) -> Tenant {
    Tenant::new(
        engine,
        config(name),
        TenantCode::single(format!("{name}.js"), source),
    )
    .unwrap()
}

pub fn tenant_with_limits(engine: &Engine, name: &str, source: &str, limits: Limits) -> Tenant {
    Tenant::new(
        engine,
        config(name).limits(limits),
        TenantCode::single(format!("{name}.js"), source),
    )
    .unwrap()
}

/// Calls the tenant with no arguments and returns its JSON result.
pub fn call_json(t: &mut Tenant) -> serde_json::Value {
    match t.call(vec![]).unwrap().output {
        Output::Json(v) => v,
        other => panic!("expected JSON, got {other:?}"),
    }
}

/// Runs test `name` alone in a child process of this test binary and
/// asserts it passed; returns `true` in that child, where the test's body
/// runs. For cases that could abort the process (a regression then fails one
/// test, not the binary) and for timing checks that must not compete for
/// the CPU with the other tests.
pub fn in_child(name: &str) -> bool {
    if std::env::var_os("ISOLA_TEST_CHILD").is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--include-ignored"])
        .env("ISOLA_TEST_CHILD", "1")
        .output()
        .expect("running the child test process");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child {name} failed ({:?}):\n{text}",
        out.status
    );
    false
}
