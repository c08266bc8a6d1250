//! Native halves of the web APIs in `js/web/` (URL parsing, base64, random
//! bytes, digests): the parsing and byte crunching is done by well-kept
//! crates (`url`, `base64`, `sha1`/`sha2`), the JS layer keeps the spec's
//! shapes and errors.
//!
//! Every op takes exactly the types it names (a string, a `Uint8Array`) and
//! never converts a tenant object (which could run tenant code in the middle
//! of native work); every input is capped before it is copied, and results
//! that are bytes are `ArrayBuffer`s allocated through the isolate's counted
//! allocator, so they count in the tenant's ArrayBuffer budget.

use base64::Engine as _;
use sha2::Digest as _;

/// Longest URL or form body these ops parse (characters).
pub const MAX_URL_INPUT: usize = 1 << 20;
/// Largest input of `atob`, `btoa` and `crypto.subtle.digest` (the digest is
/// native work a termination cannot interrupt: at about 500 MB/s this is
/// tens of milliseconds at most).
pub const MAX_BYTES_INPUT: usize = 32 << 20;
/// `crypto.getRandomValues` refuses more bytes than this (as the spec says).
pub const MAX_RANDOM_BYTES: usize = 65_536;

pub(super) fn throw(scope: &mut v8::PinScope, range: bool, msg: &str) {
    if let Some(m) = v8::String::new(scope, msg) {
        let e = if range {
            v8::Exception::range_error(scope, m)
        } else {
            v8::Exception::type_error(scope, m)
        };
        scope.throw_exception(e);
    }
}

/// A string argument of at most `max` characters, as Rust text.
fn string_arg(
    scope: &mut v8::PinScope,
    v: v8::Local<v8::Value>,
    what: &str,
    max: usize,
) -> Option<String> {
    let Ok(s) = v8::Local::<v8::String>::try_from(v) else {
        throw(scope, false, &format!("{what}: expected a string"));
        return None;
    };
    if s.length() > max {
        throw(
            scope,
            true,
            &format!("{what}: input longer than {max} characters"),
        );
        return None;
    }
    Some(s.to_rust_string_lossy(scope))
}

fn new_string<'s>(scope: &mut v8::PinScope<'s, '_>, s: &str) -> v8::Local<'s, v8::Value> {
    match v8::String::new(scope, s) {
        Some(s) => s.into(),
        None => v8::undefined(scope).into(),
    }
}

/// The URL's parts, in the order `js/web/url.js` reads them.
fn url_record<'s>(scope: &mut v8::PinScope<'s, '_>, u: &url::Url) -> v8::Local<'s, v8::Value> {
    use url::quirks as q;
    let parts = [
        q::href(u),
        &q::origin(u),
        q::protocol(u),
        q::username(u),
        q::password(u),
        q::host(u),
        q::hostname(u),
        q::port(u),
        q::pathname(u),
        q::search(u),
        q::hash(u),
    ];
    let values: Vec<v8::Local<v8::Value>> = parts.iter().map(|p| new_string(scope, p)).collect();
    v8::Array::new_with_elements(scope, &values).into()
}

/// `urlParse(input, base?)`: the parts of the parsed URL, or `null` when it
/// does not parse (the JS side throws the spec's `TypeError`).
pub(crate) fn op_url_parse(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Some(input) = string_arg(scope, args.get(0), "URL", MAX_URL_INPUT) else {
        return;
    };
    let base = if args.get(1).is_undefined() {
        None
    } else {
        let Some(b) = string_arg(scope, args.get(1), "URL base", MAX_URL_INPUT) else {
            return;
        };
        match url::Url::parse(&b) {
            Ok(b) => Some(b),
            Err(_) => {
                rv.set_null();
                return;
            }
        }
    };
    match url::Url::options().base_url(base.as_ref()).parse(&input) {
        Ok(u) => rv.set(url_record(scope, &u)),
        Err(_) => rv.set_null(),
    }
}

/// `urlSet(href, part, value)`: the parts after the setter of `part`
/// (0 href ... 10 hash, as in [`url_record`]) ran with the spec's quirks;
/// `null` when `href` no longer parses or a `href` assignment fails.
pub(crate) fn op_url_set(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Some(href) = string_arg(scope, args.get(0), "URL", MAX_URL_INPUT) else {
        return;
    };
    let Some(part) = args
        .get(1)
        .int32_value(scope)
        .filter(|_| args.get(1).is_int32())
    else {
        throw(scope, false, "urlSet: expected a part number");
        return;
    };
    let Some(value) = string_arg(scope, args.get(2), "URL", MAX_URL_INPUT) else {
        return;
    };
    let Ok(mut u) = url::Url::parse(&href) else {
        rv.set_null();
        return;
    };
    use url::quirks as q;
    // Setters that fail leave the URL as it was (the spec's "return").
    match part {
        0 => {
            if q::set_href(&mut u, &value).is_err() {
                rv.set_null();
                return;
            }
        }
        2 => {
            let _ = q::set_protocol(&mut u, &value);
        }
        3 => {
            let _ = q::set_username(&mut u, &value);
        }
        4 => {
            let _ = q::set_password(&mut u, &value);
        }
        5 => {
            let _ = q::set_host(&mut u, &value);
        }
        6 => {
            let _ = q::set_hostname(&mut u, &value);
        }
        7 => {
            let _ = q::set_port(&mut u, &value);
        }
        8 => q::set_pathname(&mut u, &value),
        9 => q::set_search(&mut u, &value),
        10 => q::set_hash(&mut u, &value),
        _ => {
            throw(scope, true, "urlSet: no such part");
            return;
        }
    }
    rv.set(url_record(scope, &u));
}

/// `urlencodedParse(text)`: `[name, value, name, value, ...]` of an
/// `application/x-www-form-urlencoded` string (a leading `?` is the JS side's).
pub(crate) fn op_urlencoded_parse(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Some(text) = string_arg(scope, args.get(0), "URLSearchParams", MAX_URL_INPUT) else {
        return;
    };
    let mut values = Vec::new();
    for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
        values.push(new_string(scope, &k));
        values.push(new_string(scope, &v));
    }
    rv.set(v8::Array::new_with_elements(scope, &values).into());
}

/// `urlencodedSerialize(pairs)`: the `application/x-www-form-urlencoded`
/// form of `[name, value, ...]` (strings only; the JS side converts).
pub(crate) fn op_urlencoded_serialize(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Ok(arr) = v8::Local::<v8::Array>::try_from(args.get(0)) else {
        throw(scope, false, "urlencodedSerialize: expected an array");
        return;
    };
    let n = arr.length() as usize;
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    let mut total = 0usize;
    let mut i = 0;
    while i + 1 < n {
        let (Some(k), Some(v)) = (
            arr.get_index(scope, i as u32),
            arr.get_index(scope, i as u32 + 1),
        ) else {
            return; // an exception is pending
        };
        let (Ok(k), Ok(v)) = (
            v8::Local::<v8::String>::try_from(k),
            v8::Local::<v8::String>::try_from(v),
        ) else {
            throw(scope, false, "urlencodedSerialize: expected strings");
            return;
        };
        total += k.length() + v.length();
        if total > MAX_URL_INPUT {
            throw(
                scope,
                true,
                &format!("URLSearchParams: longer than {MAX_URL_INPUT} characters"),
            );
            return;
        }
        let (k, v) = (k.to_rust_string_lossy(scope), v.to_rust_string_lossy(scope));
        out.append_pair(&k, &v);
        i += 2;
    }
    let s = out.finish();
    rv.set(new_string(scope, &s));
}

/// `atob(text)`: the decoded bytes as a Latin-1 string, or `null` when
/// `text` is not forgiving-base64 (the JS side throws `InvalidCharacterError`).
pub(crate) fn op_atob(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Some(text) = string_arg(scope, args.get(0), "atob", MAX_BYTES_INPUT) else {
        return;
    };
    let mut s: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r'))
        .collect();
    if s.len().is_multiple_of(4) {
        for _ in 0..2 {
            if s.last() == Some(&b'=') {
                s.pop();
            }
        }
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    if s.len() % 4 == 1 {
        rv.set_null();
        return;
    }
    match engine.decode(&s) {
        Ok(bytes) => {
            let latin1: String = bytes.iter().map(|&b| b as char).collect();
            rv.set(new_string(scope, &latin1));
        }
        Err(_) => rv.set_null(),
    }
}

/// `btoa(text)`: base64 of a Latin-1 string, or `null` when it has a
/// character above U+00FF (the JS side throws `InvalidCharacterError`).
pub(crate) fn op_btoa(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Some(text) = string_arg(scope, args.get(0), "btoa", MAX_BYTES_INPUT) else {
        return;
    };
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(b) => bytes.push(b),
            Err(_) => {
                rv.set_null();
                return;
            }
        }
    }
    let out = base64::engine::general_purpose::STANDARD.encode(&bytes);
    rv.set(new_string(scope, &out));
}

/// The bytes of a `Uint8Array` argument (copied, at most `max`).
pub(super) fn bytes_arg(
    scope: &mut v8::PinScope,
    v: v8::Local<v8::Value>,
    what: &str,
    max: usize,
) -> Option<Vec<u8>> {
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(v) else {
        throw(scope, false, &format!("{what}: expected a BufferSource"));
        return None;
    };
    let len = view.byte_length();
    if len > max {
        throw(
            scope,
            true,
            &format!("{what}: input larger than {max} bytes"),
        );
        return None;
    }
    let mut buf = vec![0u8; len];
    view.copy_contents(&mut buf);
    Some(buf)
}

/// `randomFill(view)`: fills an integer typed array's bytes from the
/// kernel's random source (the JS side checks the type and the 65536 cap).
pub(crate) fn op_random_fill(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(0)) else {
        throw(
            scope,
            false,
            "getRandomValues: expected an integer TypedArray",
        );
        return;
    };
    let len = view.byte_length();
    if len > MAX_RANDOM_BYTES {
        throw(
            scope,
            true,
            &format!("getRandomValues: more than {MAX_RANDOM_BYTES} bytes"),
        );
        return;
    }
    let mut buf = vec![0u8; len];
    if !crate::runtime::platform::fill_random(&mut buf) {
        throw(
            scope,
            false,
            "getRandomValues: the system's random source failed",
        );
        return;
    }
    let Some(store) = view.buffer(scope).map(|b| b.get_backing_store()) else {
        return;
    };
    let Some(data) = store.data() else { return };
    let offset = view.byte_offset();
    if offset
        .checked_add(len)
        .is_none_or(|end| end > store.byte_length())
    {
        return;
    }
    // SAFETY: `store` keeps the buffer's memory alive for this call;
    // `offset + len` is within its byte length (checked above), and no JS
    // runs while the bytes are written.
    unsafe {
        std::ptr::copy_nonoverlapping(buf.as_ptr(), data.as_ptr().cast::<u8>().add(offset), len);
    }
}

/// A new `ArrayBuffer` holding `bytes`, allocated through the isolate's
/// counted allocator; `None` with a `RangeError` thrown when they do not
/// fit the tenant's ArrayBuffer budget. The budget is checked first:
/// `ArrayBuffer::New` aborts the whole process when its allocation fails.
pub(super) fn array_buffer<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    bytes: &[u8],
) -> Option<v8::Local<'s, v8::ArrayBuffer>> {
    let fits = crate::runtime::ops::state(scope).is_some_and(|st| st.borrow().ab.fits(bytes.len()));
    if !fits {
        throw(
            scope,
            true,
            &format!(
                "a result of {} bytes does not fit the ArrayBuffer memory limit",
                bytes.len()
            ),
        );
        return None;
    }
    let ab = v8::ArrayBuffer::new(scope, bytes.len());
    if let Some(p) = ab.get_backing_store().data() {
        // SAFETY: `ab` was just created with `bytes.len()` bytes and nothing
        // else refers to it yet.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr().cast::<u8>(), bytes.len())
        };
    }
    Some(ab)
}

/// `digest(algorithm, bytes)`: an `ArrayBuffer` with the SHA-1/256/384/512
/// digest (`algorithm` 1, 256, 384 or 512) of a `Uint8Array`'s bytes.
pub(crate) fn op_digest(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let alg = if args.get(0).is_int32() {
        args.get(0).int32_value(scope).unwrap_or(0)
    } else {
        0
    };
    let Some(data) = bytes_arg(scope, args.get(1), "digest", MAX_BYTES_INPUT) else {
        return;
    };
    let out: Vec<u8> = match alg {
        1 => sha1::Sha1::digest(&data).to_vec(),
        256 => sha2::Sha256::digest(&data).to_vec(),
        384 => sha2::Sha384::digest(&data).to_vec(),
        512 => sha2::Sha512::digest(&data).to_vec(),
        _ => {
            throw(scope, false, "digest: unsupported algorithm");
            return;
        }
    };
    if let Some(ab) = array_buffer(scope, &out) {
        rv.set(ab.into());
    }
}

pub(super) fn int_arg(scope: &mut v8::PinScope, v: v8::Local<v8::Value>) -> i32 {
    if v.is_int32() {
        v.int32_value(scope).unwrap_or(0)
    } else {
        0
    }
}
