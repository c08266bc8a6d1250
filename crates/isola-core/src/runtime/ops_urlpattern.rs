//! Native half of `URLPattern` (`js/web/urlpattern.js`): parsing a pattern
//! into per-component pattern strings, ECMAScript regular expression strings
//! and group names, and splitting a URL (or a URLPatternInit) to match into
//! its components. Both are done by the `urlpattern` crate (its `quirks`
//! module, made for engines that run the regular expressions themselves):
//! the JS side compiles the regular expressions with the realm's `RegExp`
//! and matches there, under the tenant's CPU budget.
//!
//! No regular expression is compiled natively except for the one question
//! the parser asks while parsing ("does the protocol component match a
//! special scheme?"), answered by [`JsRegex::matches`] with the `regex`
//! crate under small size limits. Every input is capped before it is copied
//! ([`MAX_PATTERN_INPUT`], [`MAX_MATCH_INPUT`]): parsing is linear in it.

use std::borrow::Cow;

use urlpattern::quirks::{self, StringOrInit, UrlPatternInit};
use urlpattern::regexp::RegExp;
use urlpattern::{RegexSyntax, UrlPatternOptions};

/// Most characters of a pattern (the string, or all members of an init
/// dictionary and the base URL together). Real patterns are tens of
/// characters; parsing this much takes well under a millisecond.
pub const MAX_PATTERN_INPUT: usize = 16 << 10;
/// Most pattern syntax characters (`*`, `:`, `(`, `{`) in a pattern: each
/// makes a part, and the parser's work grows with the square of the parts
/// (about 6 ms for 4000 parts in a release build, 0.3 s for 16000), so
/// they are capped well below what the length cap allows. Real patterns
/// have a handful.
pub const MAX_PATTERN_TOKENS: usize = 256;
/// Most characters of the input of `test`/`exec` (as `URL`'s cap).
pub const MAX_MATCH_INPUT: usize = crate::runtime::ops_web::MAX_URL_INPUT;
/// Size limit of the one regular expression compiled natively (the
/// protocol component's, tested against six scheme names).
const NATIVE_REGEX_LIMIT: usize = 256 << 10;

/// A regular expression kept as its ECMAScript source: the JS side compiles it.
struct JsRegex(String);

impl RegExp for JsRegex {
    fn syntax() -> RegexSyntax {
        RegexSyntax::EcmaScript
    }

    fn parse(pattern: &str, _flags: &str, _force_eval: bool) -> Result<Self, ()> {
        Ok(JsRegex(pattern.to_owned()))
    }

    /// Only asked while parsing, of the protocol component, with a special
    /// scheme's name as `text`. A pattern the bounded `regex` build refuses
    /// counts as not matching.
    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let re = regex::RegexBuilder::new(&self.0)
            .size_limit(NATIVE_REGEX_LIMIT)
            .dfa_size_limit(NATIVE_REGEX_LIMIT)
            .nest_limit(64)
            .build()
            .ok()?;
        let caps = re.captures(text)?;
        Some(caps.iter().skip(1).map(|m| m.map(|m| m.as_str())).collect())
    }

    fn pattern_string(&self) -> &str {
        &self.0
    }
}

fn throw_type_error(scope: &mut v8::PinScope, msg: &str) {
    if let Some(m) = v8::String::new(scope, msg) {
        let e = v8::Exception::type_error(scope, m);
        scope.throw_exception(e);
    }
}

fn new_string<'s>(scope: &mut v8::PinScope<'s, '_>, s: &str) -> v8::Local<'s, v8::Value> {
    match v8::String::new(scope, s) {
        Some(s) => s.into(),
        None => v8::undefined(scope).into(),
    }
}

/// A string argument (`None` for undefined), counted against `budget`.
/// `Err(())` means an exception is pending.
fn opt_string(
    scope: &mut v8::PinScope,
    v: v8::Local<v8::Value>,
    budget: &mut usize,
    max: usize,
) -> Result<Option<String>, ()> {
    if v.is_undefined() {
        return Ok(None);
    }
    let Ok(s) = v8::Local::<v8::String>::try_from(v) else {
        throw_type_error(scope, "URLPattern: expected a string");
        return Err(());
    };
    if s.length() > *budget {
        throw_type_error(
            scope,
            &format!("URLPattern: the input is longer than {max} characters"),
        );
        return Err(());
    }
    *budget -= s.length();
    Ok(Some(s.to_rust_string_lossy(scope)))
}

/// The pattern or match input: a string, or an array of the init members
/// `[protocol, username, password, hostname, port, pathname, search, hash,
/// baseURL]` (strings or undefined), as the JS side converted them.
fn input_arg(
    scope: &mut v8::PinScope,
    v: v8::Local<v8::Value>,
    budget: &mut usize,
    max: usize,
) -> Result<StringOrInit<'static>, ()> {
    if v.is_string() {
        let s = opt_string(scope, v, budget, max)?.unwrap_or_default();
        return Ok(StringOrInit::String(Cow::Owned(s)));
    }
    let Ok(arr) = v8::Local::<v8::Array>::try_from(v) else {
        throw_type_error(scope, "URLPattern: expected a string or an init record");
        return Err(());
    };
    let mut members: [Option<String>; 9] = Default::default();
    for (i, m) in members.iter_mut().enumerate() {
        let item = arr
            .get_index(scope, i as u32)
            .unwrap_or_else(|| v8::undefined(scope).into());
        *m = opt_string(scope, item, budget, max)?;
    }
    let [protocol, username, password, hostname, port, pathname, search, hash, base_url] = members;
    Ok(StringOrInit::Init(UrlPatternInit {
        protocol,
        username,
        password,
        hostname,
        port,
        pathname,
        search,
        hash,
        base_url,
    }))
}

/// `urlpatternParse(input, baseURL, ignoreCase)`: for each component in the
/// order protocol, username, password, hostname, port, pathname, search,
/// hash: its pattern string, its regular expression string and its group
/// names (an array), then whether any component has a regexp group (25
/// items). A wrong pattern throws a `TypeError` saying why.
pub(crate) fn op_urlpattern_parse(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let mut budget = MAX_PATTERN_INPUT;
    let Ok(input) = input_arg(scope, args.get(0), &mut budget, MAX_PATTERN_INPUT) else {
        return;
    };
    let Ok(base) = opt_string(scope, args.get(1), &mut budget, MAX_PATTERN_INPUT) else {
        return;
    };
    if syntax_tokens(&input) > MAX_PATTERN_TOKENS {
        throw_type_error(
            scope,
            &format!("Failed to construct 'URLPattern': the pattern has more than {MAX_PATTERN_TOKENS} of the characters * : ( {{"),
        );
        return;
    }
    let options = UrlPatternOptions {
        regex_syntax: RegexSyntax::EcmaScript,
        ignore_case: args.get(2).is_true(),
    };
    // The crate is not expected to panic; if it does on some input, that
    // input is refused instead of unwinding into V8.
    let parsed = std::panic::catch_unwind(|| {
        construct_input(input, base.as_deref())
            .and_then(|init| quirks::parse_pattern::<JsRegex>(init, options))
    });
    let pattern = match parsed {
        Ok(Ok(p)) => p,
        Err(_) => {
            throw_type_error(
                scope,
                "Failed to construct 'URLPattern': the pattern could not be parsed",
            );
            return;
        }
        Ok(Err(e)) => {
            throw_type_error(scope, &format!("Failed to construct 'URLPattern': {e}"));
            return;
        }
    };
    let mut out: Vec<v8::Local<v8::Value>> = Vec::with_capacity(25);
    for c in [
        &pattern.protocol,
        &pattern.username,
        &pattern.password,
        &pattern.hostname,
        &pattern.port,
        &pattern.pathname,
        &pattern.search,
        &pattern.hash,
    ] {
        out.push(new_string(scope, &c.pattern_string));
        out.push(new_string(scope, &c.regexp_string));
        let names: Vec<v8::Local<v8::Value>> = c
            .group_name_list
            .iter()
            .map(|n| new_string(scope, n))
            .collect();
        out.push(v8::Array::new_with_elements(scope, &names).into());
    }
    out.push(v8::Boolean::new(scope, pattern.has_regexp_groups).into());
    rv.set(v8::Array::new_with_elements(scope, &out).into());
}

/// How many of the characters that start a part (`*`, `:`, `(`, `{`) the
/// pattern's strings hold.
fn syntax_tokens(input: &StringOrInit) -> usize {
    let count = |s: &str| {
        s.bytes()
            .filter(|b| matches!(b, b'*' | b':' | b'(' | b'{'))
            .count()
    };
    let strings: Vec<&str> = match input {
        StringOrInit::String(s) => vec![s.as_ref()],
        StringOrInit::Init(i) => [
            &i.protocol,
            &i.username,
            &i.password,
            &i.hostname,
            &i.port,
            &i.pathname,
            &i.search,
            &i.hash,
        ]
        .into_iter()
        .filter_map(|s| s.as_deref())
        .collect(),
    };
    strings.into_iter().map(count).sum::<usize>()
}

/// The spec's "process a URLPatternInit" input of the constructor (as
/// `quirks::process_construct_pattern_input`, but parsing a constructor
/// string with [`JsRegex`], so no unbounded native regex is built).
fn construct_input(
    input: StringOrInit,
    base: Option<&str>,
) -> Result<urlpattern::UrlPatternInit, urlpattern::Error> {
    match input {
        StringOrInit::String(pattern) => {
            let base = base
                .map(url::Url::parse)
                .transpose()
                .map_err(urlpattern::Error::Url)?;
            urlpattern::UrlPatternInit::parse_constructor_string::<JsRegex>(&pattern, base)
        }
        StringOrInit::Init(init) => {
            if base.is_some() {
                return Err(urlpattern::Error::BaseUrlWithInit);
            }
            let base_url = init
                .base_url
                .map(|s| url::Url::parse(&s))
                .transpose()
                .map_err(urlpattern::Error::Url)?;
            Ok(urlpattern::UrlPatternInit {
                protocol: init.protocol,
                username: init.username,
                password: init.password,
                hostname: init.hostname,
                port: init.port,
                pathname: init.pathname,
                search: init.search,
                hash: init.hash,
                base_url,
            })
        }
    }
}

/// `urlpatternMatchInput(input, baseURL)`: the eight components of the URL
/// (or init record) to match, in the order of [`op_urlpattern_parse`], or
/// `null` when it does not parse (so nothing matches). An init record with
/// a separate base URL throws a `TypeError`.
pub(crate) fn op_urlpattern_match_input(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let mut budget = MAX_MATCH_INPUT;
    let Ok(input) = input_arg(scope, args.get(0), &mut budget, MAX_MATCH_INPUT) else {
        return;
    };
    let Ok(base) = opt_string(scope, args.get(1), &mut budget, MAX_MATCH_INPUT) else {
        return;
    };
    let processed = std::panic::catch_unwind(|| {
        quirks::process_match_input(input, base.as_deref())
            .map(|p| p.and_then(|(m, _)| quirks::parse_match_input(m)))
    });
    let processed = match processed {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            throw_type_error(scope, &format!("URLPattern: {e}"));
            return;
        }
        Err(_) => None,
    };
    let Some(m) = processed else {
        rv.set_null();
        return;
    };
    let parts = [
        &m.protocol,
        &m.username,
        &m.password,
        &m.hostname,
        &m.port,
        &m.pathname,
        &m.search,
        &m.hash,
    ];
    let values: Vec<v8::Local<v8::Value>> = parts.iter().map(|p| new_string(scope, p)).collect();
    rv.set(v8::Array::new_with_elements(scope, &values).into());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str) -> Result<quirks::UrlPattern, urlpattern::Error> {
        let init = StringOrInit::Init(UrlPatternInit {
            pathname: Some(p.to_owned()),
            ..Default::default()
        });
        let options = UrlPatternOptions {
            regex_syntax: RegexSyntax::EcmaScript,
            ignore_case: false,
        };
        construct_input(init, None).and_then(|i| quirks::parse_pattern::<JsRegex>(i, options))
    }

    /// The worst shapes allowed by the caps parse in a few ms (debug
    /// builds are ~5x slower than release: 50 ms here is ~10 ms there).
    #[test]
    fn the_worst_patterns_within_the_caps_parse_quickly() {
        let n = MAX_PATTERN_TOKENS;
        let fill = |s: String| s.clone() + &"a".repeat(MAX_PATTERN_INPUT - s.len());
        for s in [
            fill("*".repeat(n)),
            fill("(a)".repeat(n)),
            fill(":a".repeat(n)),
            fill("{a}?".repeat(n)),
            fill("/:a(b)*".repeat(n / 3)),
            "a/".repeat(MAX_PATTERN_INPUT / 2),
        ] {
            let t = std::time::Instant::now();
            let _ = parse(&s);
            assert!(
                t.elapsed() < std::time::Duration::from_millis(50),
                "{} took {:?}",
                &s[..8],
                t.elapsed()
            );
        }
    }
}
