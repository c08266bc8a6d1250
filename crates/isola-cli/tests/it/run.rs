//! `isola run` and `isola cache`.

use serde_json::json;

use crate::util::{isola, stderr, stdout, write};

const WORKER: &str = r#"export default {
  async fetch(request, env) {
    console.log("handling", request.method, request.url);
    return Response.json({ path: new String(request.url).slice(request.url.indexOf("/", 8)), who: env.who ?? "nobody" });
  }
};
"#;

#[test]
fn second_run_in_a_new_process_hits_the_code_cache_with_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write(dir.path(), "worker.js", WORKER);
    let file = file.to_str().unwrap();
    let req = r#"{"url":"http://acme.test/hello"}"#;

    let first = isola(
        &data,
        &[
            "run",
            file,
            "--request",
            req,
            "--verbose",
            "--env",
            r#"{"who":"acme"}"#,
        ],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("code cache worker.js: miss"),
        "{}",
        stderr(&first)
    );
    assert!(
        stderr(&first).contains("[default] handling GET http://acme.test/hello"),
        "{}",
        stderr(&first)
    );

    let second = isola(
        &data,
        &[
            "run",
            file,
            "--request",
            req,
            "--verbose",
            "--env",
            r#"{"who":"acme"}"#,
        ],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("code cache worker.js: hit"),
        "{}",
        stderr(&second)
    );
    assert!(
        stderr(&second).contains("snapshot") && stderr(&second).contains("loaded"),
        "{}",
        stderr(&second)
    );
    assert_eq!(stdout(&first), stdout(&second));
    let out: serde_json::Value = serde_json::from_str(&stdout(&second)).unwrap();
    assert_eq!(out["status"], json!(200));
    let body: serde_json::Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"path": "/hello", "who": "acme"}));

    let stats = isola(&data, &["cache", "stats", "--json"]);
    assert!(stats.status.success());
    let stats: serde_json::Value = serde_json::from_str(&stdout(&stats)).unwrap();
    assert_eq!(stats["hits"], json!(1));
    assert_eq!(stats["misses"], json!(1));
    assert_eq!(stats["entries"], json!(1));

    let purge = isola(&data, &["cache", "purge"]);
    assert!(stdout(&purge).contains("purged 1"), "{}", stdout(&purge));
    let third = isola(&data, &["run", file, "--request", req, "--verbose"]);
    assert!(
        stderr(&third).contains("code cache worker.js: miss"),
        "{}",
        stderr(&third)
    );
}

#[test]
fn a_same_length_edit_between_runs_runs_the_new_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = "export default () => ({ answer: 'AAAA' });";
    let b = "export default () => ({ answer: 'BBBB' });";
    assert_eq!(a.len(), b.len());
    let file = write(dir.path(), "f.js", a);
    let out = isola(&data, &["run", file.to_str().unwrap()]);
    assert_eq!(stdout(&out).trim(), r#"{"answer":"AAAA"}"#);
    write(dir.path(), "f.js", b);
    let out = isola(&data, &["run", file.to_str().unwrap()]);
    assert_eq!(stdout(&out).trim(), r#"{"answer":"BBBB"}"#);
}

#[test]
fn arguments_are_passed_to_a_default_exported_function() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "add.js",
        "export default (a, b, c) => ({ sum: a + b, c });",
    );
    let out = isola(
        &dir.path().join("d"),
        &[
            "run",
            file.to_str().unwrap(),
            "--arg",
            "2",
            "--arg",
            "40",
            "--arg",
            "text",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#"{"c":"text","sum":42}"#);
}

#[test]
fn a_bundle_folder_runs_from_its_index() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "app/index.js",
        "import { v } from './lib/v.js'; export default () => v;",
    );
    write(
        dir.path(),
        "app/lib/v.js",
        "export const v = 'from the bundle';",
    );
    let out = isola(
        &dir.path().join("d"),
        &["run", dir.path().join("app").to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#""from the bundle""#);
}

#[test]
fn a_syntax_error_prints_file_line_column_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.js",
        "export default () => {\n  let x = ;\n};\n",
    );
    let out = isola(&dir.path().join("d"), &["run", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("bad.js:2:11: SyntaxError: Unexpected token ';'"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_uncaught_exception_prints_the_js_stack_with_tenant_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "throws.js",
        "function deep() { throw new RangeError('too far'); }\nexport default () => deep();\n",
    );
    let out = isola(&dir.path().join("d"), &["run", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("RangeError: too far"), "{err}");
    assert!(err.contains("at deep (throws.js:1:"), "{err}");
}

#[test]
fn a_missing_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = isola(&dir.path().join("d"), &["run", "/nonexistent/worker.js"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/worker.js: no such file"),
        "{err}"
    );
}

#[test]
fn an_unusable_store_is_a_one_line_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("isola.db")).unwrap(); // a folder where the file should be
    let file = write(dir.path(), "ok.js", "export default () => 1;");
    let out = isola(&data, &["run", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("isola.db"), "{err}");
    assert!(err.contains("--data-dir"), "names the fix: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_corrupt_store_is_kept_aside_and_a_new_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("isola.db"), vec![0x42u8; 8192]).unwrap();
    let file = write(dir.path(), "ok.js", "export default () => 'fine';");
    let out = isola(&data, &["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#""fine""#);
    assert!(stderr(&out).contains("corrupt"), "{}", stderr(&out));
    let kept = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("isola.db.corrupt-")
        });
    assert!(kept, "the bad file is kept aside");
}

#[test]
fn help_describes_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["cache", "--help"],
        vec!["cache", "stats", "--help"],
    ] {
        let out = isola(dir.path(), &args);
        assert!(out.status.success());
        assert!(stdout(&out).contains("Usage:"), "{args:?}");
    }
    let out = isola(dir.path(), &["run", "--help"]);
    for flag in ["--tenant", "--request", "--arg", "--data-dir", "--verbose"] {
        assert!(stdout(&out).contains(flag), "run --help lists {flag}");
    }
}
