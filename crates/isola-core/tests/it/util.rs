//! Helpers shared by the integration tests.

use std::io::Read;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Runs test `name` alone in a child process of this test binary and asserts
/// it passed, so an abort fails one test (with the child's output), not the
/// whole binary. In the child (`is_child`), returns at once.
pub fn in_child(name: &str) {
    in_child_within(name, Duration::from_secs(120));
}

/// [`in_child`], killing the child (and failing) if it runs longer than
/// `bound`: a hang is a failure too, never a stuck test run.
pub fn in_child_within(name: &str, bound: Duration) {
    if is_child() {
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--test-threads=1",
            "--include-ignored",
            "--nocapture",
        ])
        .env("ISOLA_HOSTILE_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the child test process");
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!("{}\n{}", out.join().unwrap(), err.join().unwrap());
    match status {
        Some(s) => assert!(
            s.success() && text.contains("1 passed"),
            "child {name} failed ({s:?}):\n{}",
            tail(&text, 64 << 10)
        ),
        None => panic!(
            "child {name} still running after {bound:?} (killed):\n{}",
            tail(&text, 64 << 10)
        ),
    }
}

/// Whether this process is a child started by [`in_child`].
pub fn is_child() -> bool {
    std::env::var_os("ISOLA_HOSTILE_CHILD").is_some()
}

/// The last `max` bytes of `text` (at a character boundary).
pub fn tail(text: &str, max: usize) -> &str {
    let mut at = text.len().saturating_sub(max);
    while !text.is_char_boundary(at) {
        at += 1;
    }
    &text[at..]
}
