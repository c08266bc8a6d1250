//! URL and URLSearchParams (WHATWG URL Standard).

use serde_json::json;

use super::{run, throws, PATCH_EVERYTHING};

#[test]
fn url_parses_resolves_and_exposes_its_parts() {
    let v = run(r#"
        const u = new URL("https://user:pw@EXAMPLE.com:8080/a/./b/../c?x=1&y=%20#frag");
        const r = new URL("../d?q", "http://h.test/a/b/c");
        return {
          parts: [u.href, u.origin, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash],
          rel: r.href,
          json: JSON.stringify({ u: new URL("http://a.test") }),
          str: String(new URL("http://a.test/x")),
          tag: Object.prototype.toString.call(u),
          idn: new URL("http://bücher.example/").host,
          canParse: [URL.canParse("http://x"), URL.canParse("nope"), URL.canParse("/p", "http://x")],
          parse: [URL.parse("nope"), URL.parse("/p", "http://x").href],
        };
    "#);
    assert_eq!(
        v["parts"],
        json!([
            "https://user:pw@example.com:8080/a/c?x=1&y=%20#frag",
            "https://example.com:8080",
            "https:",
            "user",
            "pw",
            "example.com:8080",
            "example.com",
            "8080",
            "/a/c",
            "?x=1&y=%20",
            "#frag"
        ])
    );
    assert_eq!(v["rel"], "http://h.test/a/d?q");
    assert_eq!(v["json"], r#"{"u":"http://a.test/"}"#);
    assert_eq!(v["str"], "http://a.test/x");
    assert_eq!(v["tag"], "[object URL]");
    assert_eq!(v["idn"], "xn--bcher-kva.example");
    assert_eq!(v["canParse"], json!([true, false, true]));
    assert_eq!(v["parse"], json!([null, "http://x/p"]));
}

#[test]
fn url_setters_follow_the_spec_and_ignore_what_does_not_apply() {
    let v = run(r#"
        const u = new URL("http://a.test/p?q#h");
        u.protocol = "https"; u.hostname = "b.test"; u.port = "8443"; u.pathname = "x y";
        u.search = "k=v"; u.hash = "top"; u.username = "me";
        const before = u.href;
        u.port = "not a port"; // ignored
        u.protocol = "mailto"; // a special scheme cannot become a non-special one
        const d = new URL("http://a.test:80/"); // default port dropped
        return { before, after: u.href, d: [d.port, d.host] };
    "#);
    assert_eq!(v["before"], "https://me@b.test:8443/x%20y?k=v#top");
    assert_eq!(v["after"], v["before"]);
    assert_eq!(v["d"], json!(["", "a.test"]));
}

#[test]
fn invalid_urls_throw_type_errors_naming_the_input() {
    let v = run(&format!(
        "return [{}, {}, {}, {}];",
        throws("new URL('no scheme')"),
        throws("new URL('/p', 'not a base')"),
        throws("new URL()"),
        throws("(() => { const u = new URL('http://x'); u.href = 'bad'; })()"),
    ));
    assert_eq!(v[0], json!(["TypeError", "Invalid URL: 'no scheme'"]));
    assert_eq!(
        v[1],
        json!(["TypeError", "Invalid URL: '/p' against base 'not a base'"])
    );
    assert_eq!(v[2][0], "TypeError");
    assert!(
        v[2][1].as_str().unwrap().contains("1 argument required"),
        "{v}"
    );
    assert_eq!(v[3], json!(["TypeError", "Invalid URL: 'bad'"]));
}

#[test]
fn search_params_parse_edit_sort_iterate_and_stay_linked_to_their_url() {
    let v = run(r#"
        const p = new URLSearchParams("?a=1&b=%20x+y&a=3&c");
        const got = [p.get("a"), p.getAll("a"), p.get("b"), p.get("c"), p.get("zz"), p.has("a", "3"), p.has("a", "9"), p.size];
        p.append("d", "é&="); p.delete("a", "1"); p.set("b", "B"); p.sort();
        const entries = []; for (const [k, v] of p) entries.push(k + "=" + v);
        const fe = []; p.forEach((v, k) => fe.push(k));
        const u = new URL("http://h.test/?x=1");
        u.searchParams.append("y", "2");
        const linked1 = u.href;
        u.search = "?z=3";
        const linked2 = [...u.searchParams.keys()];
        u.searchParams.delete("z");
        return {
          got, str: p.toString(), entries, fe, linked1, linked2, emptied: u.href,
          fromPairs: new URLSearchParams([["a", "1"], ["b", "2"]]).toString(),
          fromRecord: new URLSearchParams({ x: "1", y: 2 }).toString(),
          fromParams: new URLSearchParams(p).toString() === p.toString(),
          iterTag: Object.prototype.toString.call(p.entries()),
        };
    "#);
    assert_eq!(
        v["got"],
        json!(["1", ["1", "3"], " x y", "", null, true, false, 4])
    );
    assert_eq!(v["str"], "a=3&b=B&c=&d=%C3%A9%26%3D");
    assert_eq!(v["entries"], json!(["a=3", "b=B", "c=", "d=é&="]));
    assert_eq!(v["fe"], json!(["a", "b", "c", "d"]));
    assert_eq!(v["linked1"], "http://h.test/?x=1&y=2");
    assert_eq!(v["linked2"], json!(["z"]));
    assert_eq!(v["emptied"], "http://h.test/");
    assert_eq!(v["fromPairs"], "a=1&b=2");
    assert_eq!(v["fromRecord"], "x=1&y=2");
    assert_eq!(v["fromParams"], true);
    assert_eq!(v["iterTag"], "[object URLSearchParams Iterator]");
}

#[test]
fn search_params_reject_bad_input_with_type_errors() {
    let v = run(&format!(
        "return [{}, {}, {}];",
        throws("new URLSearchParams([['only one']])"),
        throws("new URLSearchParams().append('x')"),
        throws("URLSearchParams.prototype.get.call({}, 'x')"),
    ));
    assert_eq!(v[0][0], "TypeError");
    assert!(v[0][1].as_str().unwrap().contains("pair"), "{v}");
    assert_eq!(v[1][0], "TypeError");
    assert!(
        v[1][1].as_str().unwrap().contains("2 arguments required"),
        "{v}"
    );
    assert_eq!(v[2][0], "TypeError");
}

#[test]
fn url_apis_work_after_the_tenant_patched_every_builtin() {
    let v = run(&format!(
        "{PATCH_EVERYTHING}
        const u = new URL('http://h.test/a?b=1&c=2');
        const p = u.searchParams;
        p.append('d', '3'); p.delete('b'); p.sort();
        const it = p.entries(); const first = it.next().value;
        return JSON.stringify([u.href, p.get('c'), p.getAll('d'), first[0], first[1], p.size]);"
    ));
    assert_eq!(
        v,
        json!(r#"["http://h.test/a?c=2&d=3","2",["3"],"c","2",2]"#)
    );
}

#[test]
fn oversized_url_input_is_a_range_error() {
    let v = run(&format!(
        "return {};",
        throws("new URL('http://x/' + 'a'.repeat(2 << 20))")
    ));
    assert_eq!(v[0], "RangeError");
    assert!(v[1].as_str().unwrap().contains("longer than"), "{v}");
}
