//! The JS ↔ Rust value boundary: everything that crosses from a tenant's
//! isolate into Rust, and the request values Rust hands to it.
//!
//! Nothing read from JS is trusted: every string and byte length is checked
//! against a cap before anything is copied, every unexpected type is a typed
//! error, and no allocation is sized by a JS value that was not capped first.
//! Values handed to JS are built without running JS (no setters on
//! `Array.prototype` can intercept them), and their bytes are allocated
//! through the tenant's counted ArrayBuffer allocator.

use crate::error::{Error, JsError, Result};
use crate::limits::LimitKind;
use crate::tenant::{HttpRequest, HttpResponse, Output};

use super::allocator::AbCounter;

/// A tenant-caused `TypeError` (a result of the wrong shape).
pub(crate) fn type_error(message: impl Into<String>) -> Error {
    Error::Js(JsError {
        name: "TypeError".into(),
        message: message.into(),
        stack: String::new(),
        location: None,
    })
}

/// At most `max` bytes of `s` as UTF-8 (cut at a character boundary, with a
/// `...[truncated]` marker); never copies more than `max` bytes out of V8.
pub(crate) fn string_prefix(
    scope: &mut v8::PinScope<'_, '_>,
    s: v8::Local<v8::String>,
    max: usize,
) -> String {
    // Each UTF-16 unit is at most 3 UTF-8 bytes.
    if s.length().saturating_mul(3) <= max {
        return s.to_rust_string_lossy(scope);
    }
    let mut buf = vec![0u8; max];
    let written = s.write_utf8_v2(scope, &mut buf, v8::WriteFlags::kReplaceInvalidUtf8, None);
    buf.truncate(written.min(max));
    let mut out = String::from_utf8_lossy(&buf).into_owned();
    if s.utf8_length(scope) > out.len() {
        out.push_str("...[truncated]");
    }
    out
}

/// The whole of `v` as a string if it is a string of at most `max` UTF-8
/// bytes; `None` for other types, `Err(len)` (UTF-16 length) when too long.
fn capped_string(
    scope: &mut v8::PinScope<'_, '_>,
    v: v8::Local<v8::Value>,
    max: usize,
) -> Option<std::result::Result<String, usize>> {
    let s = v8::Local::<v8::String>::try_from(v).ok()?;
    if s.length() > max || s.utf8_length(scope) > max {
        return Some(Err(s.length()));
    }
    Some(Ok(s.to_rust_string_lossy(scope)))
}

/// The bytes of an `ArrayBufferView`, at most `max` of them.
fn view_bytes(v: v8::Local<v8::Value>, max: usize) -> std::result::Result<Vec<u8>, ViewError> {
    let view = v8::Local::<v8::ArrayBufferView>::try_from(v).map_err(|_| ViewError::NotBytes)?;
    let len = view.byte_length();
    if len > max {
        return Err(ViewError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    let copied = view.copy_contents(&mut buf);
    buf.truncate(copied);
    Ok(buf)
}

enum ViewError {
    NotBytes,
    TooLarge(usize),
}

/// What the bytes of a response body or chunk may not exceed.
pub(crate) struct Caps<'a> {
    /// Bytes of one body or chunk (the tenant's ArrayBuffer budget: the
    /// bytes already lived in a counted buffer).
    pub body_bytes: usize,
    pub tenant: &'a str,
}

impl Caps<'_> {
    /// A body, chunk or result of `len` bytes is over the cap.
    fn too_large(&self, len: usize) -> Error {
        Error::Limit(crate::error::LimitError {
            tenant: self.tenant.to_string(),
            kind: LimitKind::ExternalMemory,
            limit: self.body_bytes as u64,
            used: Some(len as u64),
            report: None,
        })
    }
}

/// One streamed response chunk handed back by `readChunk`.
pub(crate) fn chunk_bytes(v: v8::Local<v8::Value>, caps: &Caps<'_>) -> Result<Vec<u8>> {
    match view_bytes(v, caps.body_bytes) {
        Ok(b) => Ok(b),
        Err(ViewError::TooLarge(n)) => Err(caps.too_large(n)),
        Err(ViewError::NotBytes) => Err(type_error("a response stream chunk is not bytes")),
    }
}

fn get<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    obj: v8::Local<'s, v8::Object>,
    name: &str,
) -> Option<v8::Local<'s, v8::Value>> {
    let key = v8::String::new(scope, name)?;
    // Own properties only: a record from the bootstrap has a null prototype,
    // and nothing on a prototype chain is consulted.
    if !obj.has_own_property(scope, key.into()).unwrap_or(false) {
        return None;
    }
    obj.get(scope, key.into())
}

/// Reads the record built by the bootstrap's `finish`; response headers come
/// from the `responseHeader` op (`headers`), already capped and validated.
pub(crate) fn read_record<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    record: v8::Local<'s, v8::Value>,
    headers: Vec<(String, String)>,
    caps: &Caps<'_>,
) -> Result<(Output, Option<v8::Local<'s, v8::Object>>)> {
    let bad = |what: &str| Error::Internal(format!("malformed result record: {what}"));
    let rec = v8::Local::<v8::Object>::try_from(record).map_err(|_| bad("not an object"))?;
    let kind = get(scope, rec, "kind").ok_or_else(|| bad("no kind"))?;
    let kind = match capped_string(scope, kind, 16) {
        Some(Ok(k)) => k,
        _ => return Err(bad("kind")),
    };
    match kind.as_str() {
        "response" => {
            let status = get(scope, rec, "status")
                .and_then(|v| v8::Local::<v8::Number>::try_from(v).ok())
                .map(|n| n.value())
                .ok_or_else(|| bad("status"))?;
            if !(200.0..=599.0).contains(&status) || status.fract() != 0.0 {
                return Err(type_error(format!(
                    "the response status {status} is outside 200..=599"
                )));
            }
            let reader =
                get(scope, rec, "stream").and_then(|v| v8::Local::<v8::Object>::try_from(v).ok());
            let body = match (&reader, get(scope, rec, "body")) {
                (Some(_), _) | (None, None) => Vec::new(),
                (None, Some(b)) => match view_bytes(b, caps.body_bytes) {
                    Ok(b) => b,
                    Err(ViewError::TooLarge(n)) => return Err(caps.too_large(n)),
                    Err(ViewError::NotBytes) => return Err(bad("body")),
                },
            };
            Ok((
                Output::Response(HttpResponse {
                    status: status as u16,
                    headers,
                    body,
                    streamed: reader.is_some(),
                }),
                reader,
            ))
        }
        "bytes" => {
            let body = get(scope, rec, "body").ok_or_else(|| bad("body"))?;
            match view_bytes(body, caps.body_bytes) {
                Ok(b) => Ok((Output::Bytes(b), None)),
                Err(ViewError::TooLarge(n)) => Err(caps.too_large(n)),
                Err(ViewError::NotBytes) => Err(bad("bytes")),
            }
        }
        "json" => {
            let json = get(scope, rec, "json").ok_or_else(|| bad("json"))?;
            let json = match capped_string(scope, json, caps.body_bytes) {
                Some(Ok(j)) => j,
                Some(Err(n)) => return Err(caps.too_large(n)),
                None => return Err(bad("json")),
            };
            let value = serde_json::from_str(&without_lone_surrogates(&json)).map_err(|e| {
                if e.to_string().starts_with("recursion limit exceeded") {
                    Error::Js(JsError {
                        name: "RangeError".into(),
                        message: "the handler's result is nested more than 128 levels deep".into(),
                        stack: String::new(),
                        location: None,
                    })
                } else {
                    Error::Internal(format!("result JSON: {e}"))
                }
            })?;
            Ok((Output::Json(value), None))
        }
        _ => Err(bad("unknown kind")),
    }
}

/// `json` (text from `JSON.stringify`) with every escaped lone surrogate
/// (`\ud800` not followed by a low surrogate, or a stray low one) replaced
/// by `\ufffd`: JS strings may hold them, JSON parsers in Rust refuse them.
/// The text is copied only when it has one.
fn without_lone_surrogates(json: &str) -> std::borrow::Cow<'_, str> {
    let b = json.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        if b.get(at) != Some(&b'\\') || b.get(at + 1) != Some(&b'u') {
            return None;
        }
        let hex = std::str::from_utf8(b.get(at + 2..at + 6)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut out: Option<String> = None;
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(u) = unit(i) else {
            i += 2; // another escape: skip the escaped character
            continue;
        };
        let len = match u {
            0xD800..=0xDBFF if matches!(unit(i + 6), Some(0xDC00..=0xDFFF)) => 12,
            0xD800..=0xDFFF => {
                let o = out.get_or_insert_with(|| String::with_capacity(json.len()));
                o.push_str(&json[copied..i]);
                o.push_str("\\ufffd");
                copied = i + 6;
                6
            }
            _ => 6,
        };
        i += len;
    }
    match out {
        Some(mut o) => {
            o.push_str(&json[copied..]);
            std::borrow::Cow::Owned(o)
        }
        None => std::borrow::Cow::Borrowed(json),
    }
}

/// `bytes` as a new `Uint8Array` whose buffer is allocated through the
/// tenant's counted allocator (so request bodies and their streamed chunks
/// count in its ArrayBuffer budget). `None` when they do not fit the budget.
pub(crate) fn bytes_to_u8a<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    ab: &AbCounter,
    bytes: &[u8],
) -> Option<v8::Local<'s, v8::Value>> {
    let len = bytes.len();
    // V8 aborts the process when `ArrayBuffer::New` cannot allocate, so the
    // budget is checked first (the allocator would refuse the same request).
    if !ab.fits(len) {
        return None;
    }
    let buffer = v8::ArrayBuffer::new(scope, len);
    if len > 0 {
        let store = buffer.get_backing_store();
        let data = store.data()?;
        // SAFETY: `store` is the live, non-shared backing store V8 just
        // allocated for `buffer`, `len` bytes long; no JS runs while we copy.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.as_ptr() as *mut u8, len) };
    }
    v8::Uint8Array::new(scope, buffer, 0, len).map(Into::into)
}

/// The JS value of a JSON document (env, call arguments), built by V8's JSON parser.
pub(crate) fn json_to_v8<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    v: &serde_json::Value,
) -> Result<v8::Local<'s, v8::Value>> {
    let text = serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))?;
    let s = v8::String::new(scope, &text)
        .ok_or_else(|| Error::Internal("JSON too large for a string".into()))?;
    v8::json::parse(scope, s)
        .ok_or_else(|| Error::Internal("JSON.parse failed on serde output".into()))
}

/// The arguments of the bootstrap's `makeRequest`: method, URL, a flat
/// `[name, value, ...]` header list and the body bytes.
pub(crate) fn request_args<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    ab: &AbCounter,
    tenant: &str,
    req: &HttpRequest,
) -> Result<[v8::Local<'s, v8::Value>; 4]> {
    let method = super::v8_str(scope, &req.method)?;
    let url = super::v8_str(scope, &req.url)?;
    let mut flat = Vec::with_capacity(req.headers.len() * 2);
    for (k, v) in &req.headers {
        flat.push(super::v8_str(scope, k)?.into());
        flat.push(super::v8_str(scope, v)?.into());
    }
    // Built in one step, without [[Set]]: setters a tenant put on
    // Array.prototype cannot see or swallow the values.
    let headers = v8::Array::new_with_elements(scope, &flat);
    let body = bytes_to_u8a(scope, ab, &req.body).ok_or_else(|| {
        Error::Limit(crate::error::LimitError {
            tenant: tenant.to_string(),
            kind: LimitKind::ExternalMemory,
            limit: ab.limit() as u64,
            used: Some(ab.used().saturating_add(req.body.len()) as u64),
            report: None,
        })
    })?;
    Ok([method.into(), url.into(), headers.into(), body])
}
