//! Bad tenant code gives clear, structured errors, never a panic.

use isola_core::{Error, Tenant, TenantCode};

use crate::util::{config, engine, tenant};

#[test]
fn syntax_errors_name_file_line_and_column() {
    let e = engine();
    let code = TenantCode::single(
        "broken.js",
        "export default {\n  fetch() {\n    return 1 +;\n  }\n}\n",
    );
    let err = Tenant::new(&e.engine, config("s"), code).unwrap_err();
    let Error::Syntax { location, message } = &err else {
        panic!("expected a syntax error, got {err:?}")
    };
    assert_eq!(location.file, "broken.js");
    assert_eq!(location.line, 3);
    assert_eq!(location.column, 15);
    assert!(message.starts_with("SyntaxError"), "{message}");
    assert!(
        err.to_string().starts_with("broken.js:3:15: SyntaxError"),
        "{err}"
    );
}

#[test]
fn uncaught_exceptions_come_back_as_data_with_the_tenant_stack() {
    let e = engine();
    let mut t = tenant(
        &e.engine,
        "thrower",
        "function inner() { throw new TypeError('nope'); }\nexport default () => inner();",
    );
    let Error::Js(js) = t.call(vec![]).unwrap_err() else {
        panic!("expected a JS error")
    };
    assert_eq!(js.name, "TypeError");
    assert_eq!(js.message, "nope");
    assert!(js.stack.contains("thrower.js:1:"), "{}", js.stack);
    assert!(js.stack.contains("at inner"), "{}", js.stack);
    // The isolate survives an exception.
    assert!(t.is_warm());
}

#[test]
fn thrown_non_errors_and_hostile_error_objects_are_described_safely() {
    let e = engine();
    // (source, name, message): a hostile thrown value is described by what
    // could be read safely, or by a fixed text when nothing could.
    let cases = [
        ("export default () => { throw 42; }", "Uncaught", "42"),
        ("export default () => { throw null; }", "Uncaught", "null"),
        ("export default async () => { throw 'str'; }", "Uncaught", "str"),
        (
            "export default () => { const e = new Error('x'); Object.defineProperty(e, 'message', { get() { throw new Error('getter'); } }); throw e; }",
            "Error",
            "[exception could not be described]",
        ),
        (
            "export default () => { throw { toString() { throw new Error('no'); }, get name() { throw 1; } }; }",
            "Uncaught",
            "{ toString: [Function: toString], name: [Getter threw] }",
        ),
        (
            "export default () => { throw new Proxy({}, { get() { throw new Error('trap'); } }); }",
            "Uncaught",
            "[exception could not be described]",
        ),
    ];
    for (src, name, message) in cases {
        let mut t = tenant(&e.engine, "weird", src);
        let err = t.call(vec![]).unwrap_err();
        let Error::Js(js) = &err else {
            panic!("{src}: expected a JS error, got {err:?}")
        };
        assert_eq!(
            (js.name.as_str(), js.message.as_str()),
            (name, message),
            "{src}"
        );
        // Still usable afterwards.
        assert!(matches!(t.call(vec![]), Err(Error::Js(_))));
    }
}

#[test]
fn a_handler_promise_that_can_never_settle_is_reported_at_once() {
    let e = engine();
    let mut t = tenant(
        &e.engine,
        "stuck",
        "export default () => new Promise(() => {});",
    );
    let start = std::time::Instant::now();
    assert!(matches!(t.call(vec![]), Err(Error::NeverSettled)));
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn a_fetch_handler_returning_a_non_response_is_a_type_error() {
    let e = engine();
    let mut t = tenant(
        &e.engine,
        "bad",
        "export default { fetch() { return 'text'; } };",
    );
    let err = t.fetch(isola_core::HttpRequest::default()).unwrap_err();
    let Error::Js(js) = err else { panic!() };
    assert_eq!(js.name, "TypeError");
    assert!(
        js.message.contains("must return a Response"),
        "{}",
        js.message
    );
}
