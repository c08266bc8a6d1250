//! `isola serve` as a real process: the CLI deploy/tenants/logs commands, and
//! a server killed (SIGKILL) in the middle of deploys.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{isola, stderr, stdout, write};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Serve {
    child: Child,
    data: u16,
    admin: u16,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path) -> Serve {
    serve_with(data_dir, &[])
}

fn serve_with(data_dir: &Path, extra: &[&str]) -> Serve {
    let (data, admin) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_isola"))
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{data}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .args(["--workers", "1"])
        .args(extra)
        .env_remove("ISOLA_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(&format!("http://127.0.0.1:{admin}/healthz"))
        .call()
        .is_err()
    {
        assert!(Instant::now() < deadline, "isola serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    Serve { child, data, admin }
}

fn get(port: u16, host: &str) -> Result<String, String> {
    match ureq::get(&format!("http://127.0.0.1:{port}/"))
        .set("Host", host)
        .call()
    {
        Ok(r) => Ok(r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => {
            Err(format!("{code}: {}", r.into_string().unwrap_or_default()))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn the_cli_deploys_lists_and_shows_logs_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = serve(&data);
    let file = write(dir.path(), "w.js", "export default { fetch(req) { console.log('served', req.url); return new Response('from cli'); } };");
    let admin = format!("http://127.0.0.1:{}", s.admin);
    let out = isola(
        &data,
        &[
            "deploy",
            "--tenant",
            "cli-app",
            file.to_str().unwrap(),
            "--admin",
            &admin,
            "--smoke",
            "/health",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "deployed cli-app version 1");
    assert_eq!(get(s.data, "cli-app.localhost").unwrap(), "from cli");
    let ls = isola(&data, &["tenants", "ls", "--admin", &admin]);
    assert!(
        stdout(&ls).contains("cli-app") && stdout(&ls).contains(" 1"),
        "{}",
        stdout(&ls)
    );
    let logs = isola(&data, &["logs", "cli-app", "--admin", &admin]);
    assert!(
        stdout(&logs).contains("served http://cli-app.localhost/"),
        "{}",
        stdout(&logs)
    );
    let bad = isola(
        &data,
        &[
            "deploy",
            "--tenant",
            "cli-app",
            file.to_str().unwrap(),
            "--admin",
            &admin,
            "--token",
            "wrong",
        ],
    );
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("401"), "{}", stderr(&bad));
}

#[test]
fn a_server_killed_during_deploys_restarts_with_each_tenant_on_one_whole_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = || std::fs::read_to_string(data.join("admin-token")).unwrap();
    let mut checked = 0;
    let mut deploys = 0;
    for round in 0..3 {
        let s = serve(&data);
        let admin = s.admin;
        let tok = token();
        // Deploy versions in a loop on another thread; kill the server in the middle.
        let deployer = std::thread::spawn(move || {
            let mut last_ok = 0;
            for v in 0..200 {
                let src = format!("export default {{ fetch() {{ return new Response('round {round} v{v} ' + 'x'.repeat({v})); }} }};");
                let r = ureq::put(&format!("http://127.0.0.1:{admin}/v1/tenants/crashy/code"))
                    .set("Authorization", &format!("Bearer {tok}"))
                    .send_json(serde_json::json!({"files": {"index.js": src}}));
                match r {
                    Ok(_) => last_ok = v,
                    Err(_) => break, // the server is gone
                }
            }
            last_ok
        });
        std::thread::sleep(Duration::from_millis(150 + 100 * round as u64));
        drop(s); // SIGKILL
        deploys += deployer.join().unwrap();
        // After a restart the tenant serves one complete version, the one the store says is current.
        let s = serve(&data);
        let body = get(s.data, "crashy.localhost");
        let info: serde_json::Value =
            ureq::get(&format!("http://127.0.0.1:{}/v1/tenants/crashy", s.admin))
                .set("Authorization", &format!("Bearer {}", token()))
                .call()
                .map(|r| r.into_json().unwrap())
                .unwrap_or(serde_json::Value::Null);
        if info.is_null() {
            // Killed before the first deploy of this round landed in a fresh store.
            assert!(body.is_err());
            continue;
        }
        let body = body
            .unwrap_or_else(|e| panic!("round {round}: tenant does not serve after restart: {e}"));
        let version = info["version"].as_u64().unwrap();
        let versions = info["versions"].as_array().unwrap();
        assert_eq!(
            versions.last().unwrap()["version"].as_u64().unwrap(),
            version,
            "current is the newest stored version"
        );
        let (head, pad) = body.rsplit_once(' ').unwrap();
        let v: usize = head.rsplit('v').next().unwrap().parse().unwrap();
        assert_eq!(pad.len(), v, "the served code is one whole version: {body}");
        checked += 1;
    }
    assert!(
        checked >= 2 && deploys > 5,
        "the kills must land among deploys ({checked} rounds checked, {deploys} deploys)"
    );
}

/// Starts `isola serve` with `args` and `env`; waits (at most 30 s) for it to exit.
fn serve_exits(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_isola"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--workers", "1"])
        .args(args)
        .env_remove("ISOLA_ADMIN_TOKEN")
        .env_remove("ISOLA_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("isola serve started instead of refusing: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_empty_admin_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (args, env, problem) in [
        (vec![], vec![("ISOLA_ADMIN_TOKEN", "")], "is empty"),
        (vec![], vec![("ISOLA_ADMIN_TOKEN", "   ")], "is empty"),
        (vec!["--admin-token", ""], vec![], "is empty"),
        (
            vec!["--admin-token", "short-token"],
            vec![],
            "is too short (11 bytes)",
        ),
    ] {
        let out = serve_exits(&data, &args, &env);
        assert!(!out.status.success(), "{args:?} {env:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "admin token from --admin-token / ISOLA_ADMIN_TOKEN {problem}"
            )),
            "{err}"
        );
        assert!(err.contains("at least 16"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // An empty token file is refused too (not silently replaced).
    std::fs::write(data.join("admin-token"), "  \n").unwrap();
    let out = serve_exits(&data, &[], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("admin-token is empty"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn metrics_listen_serves_metrics_without_the_token_and_the_admin_port_wants_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let metrics = free_port();
    let s = serve_with(
        &data,
        &["--metrics-listen", &format!("127.0.0.1:{metrics}")],
    );
    let body = ureq::get(&format!("http://127.0.0.1:{metrics}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(body.contains("isola_"), "{body}");
    match ureq::get(&format!("http://127.0.0.1:{}/metrics", s.admin)).call() {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("/metrics on the admin port without the token: {other:?}"),
    }
}

/// The `isola` binary itself as supervisor and as its own sandboxed workers.
#[test]
fn the_isola_binary_serves_in_process_mode_with_sandboxed_workers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = serve_with(&data, &["--isolation", "process"]);
    let file = write(
        dir.path(),
        "w.js",
        "export default { fetch() { return new Response('from a worker process'); } };",
    );
    let admin = format!("http://127.0.0.1:{}", s.admin);
    let out = isola(
        &data,
        &[
            "deploy",
            "--tenant",
            "proc-app",
            file.to_str().unwrap(),
            "--admin",
            &admin,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        get(s.data, "proc-app.localhost").unwrap(),
        "from a worker process"
    );
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    let workers: serde_json::Value = ureq::get(&format!("{admin}/v1/workers"))
        .set("Authorization", &format!("Bearer {}", token.trim()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(workers["isolation"], "process", "{workers}");
    let w = &workers["workers"][0];
    assert_eq!(w["running"], true, "{workers}");
    assert_eq!(w["sandboxed"], true, "{workers}");
    let pid = w["pid"].as_u64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["Seccomp:", "2"])),
        "{status}"
    );
    // The worker is a child of this `isola serve`, started from the same binary.
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(|v| v.trim().parse::<u32>().unwrap())
        .unwrap();
    assert_eq!(ppid, s.child.id());
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(
        exe.canonicalize().unwrap(),
        std::path::Path::new(env!("CARGO_BIN_EXE_isola"))
            .canonicalize()
            .unwrap()
    );
}
