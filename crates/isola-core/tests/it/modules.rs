//! Multi-file bundles: relative imports inside the bundle only.

use std::collections::BTreeMap;

use isola_core::{Error, Tenant, TenantCode};
use serde_json::json;

use crate::util::{call_json, config, engine};

fn bundle(files: &[(&str, &str)]) -> TenantCode {
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TenantCode::bundle("index.js", files).unwrap()
}

#[test]
fn relative_imports_across_files_of_a_bundle_work() {
    let e = engine();
    let code = bundle(&[
        ("index.js", "import { add } from './lib/math.js'; import greet from './lib/greet.js'; export default () => [add(2, 3), greet('x')];"),
        ("lib/math.js", "export const add = (a, b) => a + b;"),
        ("lib/greet.js", "import { add } from './math.js'; export default (n) => `hi ${n} ${add(1, 1)}`;"),
    ]);
    let mut t = Tenant::new(&e.engine, config("multi"), code).unwrap();
    assert_eq!(call_json(&mut t), json!([5, "hi x 2"]));
}

#[test]
fn imports_outside_the_bundle_are_refused_with_the_importing_file_named() {
    let e = engine();
    for spec in [
        "fs",
        "/etc/passwd",
        "https://example.com/x.js",
        "../outside.js",
        "./missing.js",
    ] {
        let code = bundle(&[(
            "index.js",
            &format!("import x from '{spec}'; export default x;"),
        )]);
        match Tenant::new(&e.engine, config("imp"), code) {
            Err(Error::Resolve {
                referrer,
                specifier,
                ..
            }) => {
                assert_eq!(referrer, "index.js");
                assert_eq!(specifier, spec);
            }
            other => panic!("{spec}: expected a resolve error, got {other:?}"),
        }
    }
}

#[test]
fn top_level_await_is_awaited_at_load() {
    let e = engine();
    let code = bundle(&[(
        "index.js",
        "const v = await new Promise(r => setTimeout(() => r(7), 5)); export default () => v * 6;",
    )]);
    let mut t = Tenant::new(&e.engine, config("tla"), code).unwrap();
    assert_eq!(call_json(&mut t), json!(42));
}
