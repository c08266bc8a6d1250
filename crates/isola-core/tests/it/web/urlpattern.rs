//! URLPattern (WHATWG URL Pattern Standard): known answers from the spec's
//! examples, wrong patterns, caps, and loading after hostile tenant code.

use serde_json::json;

use super::{run, throws, DELETE_GLOBALS, PATCH_EVERYTHING};

#[test]
fn pathname_groups_match_and_exec_returns_the_spec_result() {
    let v = run(r#"
        const p = new URLPattern({ pathname: "/books/:id" });
        const r = p.exec("https://example.com/books/123");
        return [p.pathname, p.protocol, p.hostname, p.hasRegExpGroups,
                p.test("https://example.com/books/123"), p.test("https://example.com/books"),
                p.test({ pathname: "/books/x" }),
                r.inputs, r.pathname, r.protocol, r.hostname.input, r.search,
                p.exec("https://example.com/shelves/1"), Object.prototype.toString.call(p)];
    "#);
    assert_eq!(
        v,
        json!([
            "/books/:id",
            "*",
            "*",
            false,
            true,
            false,
            true,
            ["https://example.com/books/123"],
            { "input": "/books/123", "groups": { "id": "123" } },
            { "input": "https", "groups": { "0": "https" } },
            "example.com",
            { "input": "", "groups": { "0": "" } },
            null,
            "[object URLPattern]"
        ])
    );
}

#[test]
fn strings_base_urls_wildcards_regexp_groups_and_ignore_case() {
    let v = run(r#"
        const a = new URLPattern("https://*.example.com/:kind(post|page)/:slug?");
        const r = a.exec("https://blog.example.com/post");
        const b = new URLPattern("/api/*", "https://example.com");
        const c = new URLPattern({ pathname: "/CaSe" }, { ignoreCase: true });
        const d = new URLPattern({ pathname: "/x" });
        const e = new URLPattern({ pathname: "/items/:n(\\d+)" });
        return [a.protocol, a.hostname, a.pathname, a.hasRegExpGroups, r.hostname.groups, r.pathname.groups,
                b.protocol, b.hostname, b.pathname, b.test("https://example.com/api/v1/x"), b.test("https://other.com/api/"),
                b.exec("/api/z", "https://example.com").inputs, "slug" in r.pathname.groups,
                c.test({ pathname: "/case" }), d.test({ pathname: "/X" }),
                e.test({ pathname: "/items/42" }), e.test({ pathname: "/items/x" }),
                new URLPattern().test("anything:goes"), new URLPattern({ search: "q=:q" }).exec("http://h/?q=1").search.groups];
    "#);
    assert_eq!(
        v,
        json!([
            "https",
            "*.example.com",
            "/:kind(post|page)/:slug?",
            true,
            { "0": "blog" },
            { "kind": "post" },
            "https",
            "example.com",
            "/api/*",
            true,
            false,
            ["/api/z", "https://example.com"],
            true,
            true,
            false,
            true,
            false,
            true,
            { "q": "1" }
        ])
    );
}

#[test]
fn wrong_patterns_and_inputs_are_type_errors() {
    let v = run(&format!(
        "return [{}, {}, {}, {}, {}, {}, {}];",
        throws("new URLPattern('/relative/no/base')"),
        throws("new URLPattern({ pathname: '/:id(' })"),
        throws("new URLPattern({ pathname: '/(a' })"),
        throws("new URLPattern({ pathname: '/(?<x>a)' })"),
        throws("new URLPattern({ pathname: '/x' }, 'https://base.example/')"),
        throws("new URLPattern({ pathname: '/x'.repeat(9000) })"),
        throws("new URLPattern({ pathname: '/x' }).test({ pathname: '/x' }, 'https://b/')"),
    ));
    for (i, e) in v.as_array().unwrap().iter().enumerate() {
        assert_eq!(e[0], "TypeError", "case {i}: {e}");
    }
    let msgs: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[1].as_str().unwrap())
        .collect();
    assert!(msgs[0].contains("base URL"), "{}", msgs[0]);
    assert!(msgs[5].contains("16384"), "{}", msgs[5]);
    assert!(msgs[6].contains("base URL"), "{}", msgs[6]);
}

#[test]
fn hostile_patterns_hit_the_caps_with_clear_errors() {
    // Native parsing is not interrupted by the CPU watchdog: pattern syntax
    // (parts) and length are capped, and so is the input of test/exec.
    let v = run(&format!(
        "const big = 'https://h/' + 'a'.repeat((1 << 20) + 1);
        return [{}, {}, {}, {}, new URLPattern({{ pathname: '*'.repeat(256) + 'a'.repeat(16000) }}).pathname.length];",
        throws("new URLPattern({ pathname: '*'.repeat(257) })"),
        throws("new URLPattern({ pathname: '(a)'.repeat(100), search: '(a)'.repeat(100), hash: ':a'.repeat(57) })"),
        throws("new URLPattern({ pathname: 'a'.repeat(16385) })"),
        throws("new URLPattern({ pathname: '/*' }).test(big)"),
    ));
    assert_eq!(v[0][0], "TypeError");
    assert!(v[0][1].as_str().unwrap().contains("more than 256"), "{v}");
    assert_eq!(v[1][0], "TypeError");
    assert!(v[1][1].as_str().unwrap().contains("more than 256"), "{v}");
    assert_eq!(v[2][0], "TypeError");
    assert!(v[2][1].as_str().unwrap().contains("16384"), "{v}");
    assert_eq!(v[3][0], "TypeError");
    assert!(v[3][1].as_str().unwrap().contains("1048576"), "{v}");
    assert_eq!(v[4], 16256);
}

#[test]
fn urlpattern_loads_on_first_use_after_the_tenant_deleted_and_patched_the_builtins() {
    let v = run(&format!(
        "const before = Object.getOwnPropertyDescriptor(globalThis, 'URLPattern');
        {PATCH_EVERYTHING}
        {DELETE_GLOBALS}
        const p = new URLPattern({{ pathname: '/books/:id' }});
        const r = p.exec({{ pathname: '/books/7' }});
        const after = __gopd(globalThis, 'URLPattern');
        return [typeof before.get, r.pathname.groups.id, p.test({{ pathname: '/x' }}), typeof after.value];"
    ));
    assert_eq!(v, json!(["function", "7", false, "function"]));
}
