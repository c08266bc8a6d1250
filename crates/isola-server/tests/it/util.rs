//! A server on ephemeral loopback ports, and an HTTP client for it.

use std::path::Path;

use isola_core::{Engine, EngineConfig};
use isola_server::{RunningServer, Server, ServerConfig};

/// The admin token of test servers.
pub const TOKEN: &str = "test-token-0123456789";

pub struct TestServer {
    pub server: RunningServer,
    /// The server's shared state (admission queues, connection counters).
    pub state: std::sync::Arc<isola_server::AppState>,
}

pub fn config(dir: &Path) -> ServerConfig {
    let mut c = ServerConfig::new(dir);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.admin_listen = "127.0.0.1:0".parse().unwrap();
    c.workers = 2;
    c.admin_token = Some(TOKEN.into());
    c
}

pub fn start_with(c: ServerConfig) -> TestServer {
    let engine = Engine::new(EngineConfig::with_data_dir(&c.data_dir)).unwrap();
    let server = Server::new(engine, c).unwrap();
    let state = server.state().clone();
    let server = server.start().unwrap();
    TestServer { server, state }
}

pub fn start(dir: &Path) -> TestServer {
    start_with(config(dir))
}

/// A response: status, headers we care about, body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
    pub request_id: Option<String>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn finish(r: Result<ureq::Response, ureq::Error>) -> Resp {
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    Resp {
        status: r.status(),
        retry_after: r.header("retry-after").map(str::to_string),
        request_id: r.header("x-request-id").map(str::to_string),
        body: r.into_string().unwrap_or_default(),
    }
}

impl TestServer {
    pub fn server_shutdown(self) {
        self.server.shutdown();
    }

    pub fn data(&self, host: &str, path: &str) -> Resp {
        finish(
            ureq::get(&format!("http://{}{}", self.server.data_addr, path))
                .set("Host", host)
                .call(),
        )
    }

    pub fn post(&self, host: &str, path: &str, body: &str) -> Resp {
        finish(
            ureq::post(&format!("http://{}{}", self.server.data_addr, path))
                .set("Host", host)
                .send_string(body),
        )
    }

    fn admin_req(&self, method: &str, path: &str, token: Option<&str>) -> ureq::Request {
        let r = ureq::request(
            method,
            &format!("http://{}{}", self.server.admin_addr, path),
        );
        match token {
            Some(t) => r.set("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Resp {
        let r = self.admin_req(method, path, Some(TOKEN));
        finish(match body {
            Some(b) => r.send_json(b),
            None => r.call(),
        })
    }

    pub fn admin_with_token(&self, method: &str, path: &str, token: Option<&str>) -> Resp {
        finish(self.admin_req(method, path, token).call())
    }

    /// Deploys one file; returns the response.
    pub fn deploy(&self, tenant: &str, source: &str) -> Resp {
        self.admin(
            "PUT",
            &format!("/v1/tenants/{tenant}/code"),
            Some(serde_json::json!({"files": {"index.js": source}})),
        )
    }
}

/// Runs test `name` alone in a child process of this test binary (within
/// `bound`) and asserts it passed. For tests that read process-wide state
/// (RSS, per-thread CPU clocks) that tests running in parallel would blur.
/// In the child (`is_child`), returns at once.
pub fn in_child(name: &str, bound: std::time::Duration) {
    use std::io::Read;
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
        .env("ISOLA_SERVER_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
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
    let deadline = std::time::Instant::now() + bound;
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for the child") {
            break Some(s);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let text = format!("{}\n{}", out.join().unwrap(), err.join().unwrap());
    // The child's own report (numbers it measured) shows in the parent's output.
    eprintln!("{text}");
    assert!(
        status.is_some_and(|s| s.success()) && text.contains("1 passed"),
        "child {name} failed or timed out ({status:?})"
    );
}

/// Whether this process is a child started by [`in_child`].
pub fn is_child() -> bool {
    std::env::var_os("ISOLA_SERVER_CHILD").is_some()
}

/// CPU time (user + system) used so far by this process's threads named `name`.
pub fn thread_cpu(name: &str) -> std::time::Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0u64;
    for t in std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the ")" closing the name: state is field 3; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let get = |i: usize| {
            f.get(i - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += get(14) + get(15);
    }
    std::time::Duration::from_millis(ticks * 1000 / hz)
}

/// The process's resident set size (VmRSS), in bytes.
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS in /proc/self/status")
}

/// CPU the shared worker and the penalty worker spend while `f` runs.
pub fn cpu_by_worker(f: impl FnOnce()) -> (std::time::Duration, std::time::Duration) {
    let [shared, penalty] = cpu_of_threads(["isola-worker-0", "isola-penalty"], f);
    (shared, penalty)
}

/// CPU the threads named `names` spend while `f` runs, in that order.
pub fn cpu_of_threads<const N: usize>(
    names: [&str; N],
    f: impl FnOnce(),
) -> [std::time::Duration; N] {
    let before = names.map(thread_cpu);
    f();
    let mut i = 0;
    names.map(|n| {
        let d = thread_cpu(n).saturating_sub(before[i]);
        i += 1;
        d
    })
}
