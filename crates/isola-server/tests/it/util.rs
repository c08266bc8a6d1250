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
