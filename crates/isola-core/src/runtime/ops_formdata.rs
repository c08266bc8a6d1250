//! Native half of `body.formData()` for `multipart/form-data` bodies
//! (`js/web/formdata.js`): splitting the body into parts and reading each
//! part's `Content-Disposition` (name, filename) and `Content-Type`, as
//! RFC 7578 and the HTML standard's encoding describe them.
//!
//! The work is linear in the body: delimiters are found with `memchr`'s
//! `memmem` (two-way search, no quadratic case whatever the boundary), each
//! byte is scanned a bounded number of times, and the body, the parts and
//! each part's header block are capped ([`MAX_MULTIPART_BODY`],
//! [`MAX_PARTS`], [`MAX_PART_HEADER_BYTES`], [`MAX_PART_HEADERS`]) before any
//! value is made. Malformed input is a `TypeError` saying what is wrong.
//! File contents are `ArrayBuffer`s made through the tenant's counted
//! allocator.

/// Largest multipart body parsed (bytes): scanning it takes a few ms.
pub const MAX_MULTIPART_BODY: usize = 32 << 20;
/// Most parts in one body.
pub const MAX_PARTS: usize = 10_000;
/// Largest header block of one part (bytes, up to the empty line).
pub const MAX_PART_HEADER_BYTES: usize = 16 << 10;
/// Most header lines in one part.
pub const MAX_PART_HEADERS: usize = 32;
/// Longest boundary (RFC 2046 says 70 characters).
pub const MAX_BOUNDARY: usize = 70;

/// One part, as ranges and decoded names.
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    body: (usize, usize),
}

fn throw_type_error(scope: &mut v8::PinScope, msg: &str) {
    if let Some(m) = v8::String::new(scope, msg) {
        let e = v8::Exception::type_error(scope, m);
        scope.throw_exception(e);
    }
}

/// Splits `body` into its parts. `Err` is the message of the `TypeError`.
fn parse(body: &[u8], boundary: &[u8]) -> Result<Vec<Part>, String> {
    // Every delimiter after the first is CRLF "--" boundary.
    let mut delim = Vec::with_capacity(boundary.len() + 4);
    delim.extend_from_slice(b"\r\n--");
    delim.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delim);
    let headers_end = memchr::memmem::Finder::new(b"\r\n\r\n");
    // The first may open the body; anything before it is a preamble.
    let mut pos = if body.starts_with(&delim[2..]) {
        delim.len() - 2
    } else {
        match finder.find(body) {
            Some(i) => i + delim.len(),
            None => return Err("the body has no multipart boundary".into()),
        }
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts); // the close delimiter; the rest is an epilogue
        }
        // Transport padding, then CRLF.
        let pad = rest
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        if !rest[pad..].starts_with(b"\r\n") {
            return Err("a multipart boundary is not followed by CRLF".into());
        }
        pos += pad + 2;
        if parts.len() == MAX_PARTS {
            return Err(format!("the body has more than {MAX_PARTS} parts"));
        }
        // The header block, up to the empty line.
        let (header_block, content_start) = if body[pos..].starts_with(b"\r\n") {
            (&body[pos..pos], pos + 2)
        } else {
            let window_end = body.len().min(pos + MAX_PART_HEADER_BYTES + 4);
            match headers_end.find(&body[pos..window_end]) {
                Some(i) => (&body[pos..pos + i], pos + i + 4),
                None if window_end < body.len() => {
                    return Err(format!(
                        "a part's headers are larger than {MAX_PART_HEADER_BYTES} bytes"
                    ));
                }
                None => return Err("a part's headers are not terminated".into()),
            }
        };
        let mut part = part_headers(header_block)?;
        let Some(end) = finder.find(&body[content_start..]) else {
            return Err("a part is not terminated by a multipart boundary".into());
        };
        part.body = (content_start, content_start + end);
        parts.push(part);
        pos = content_start + end + delim.len();
    }
}

/// The name, filename and type of a part from its header block.
fn part_headers(block: &[u8]) -> Result<Part, String> {
    let mut disposition = None;
    let mut content_type = None;
    for (n, line) in block.split(|&c| c == b'\n').enumerate() {
        if n == MAX_PART_HEADERS {
            return Err(format!("a part has more than {MAX_PART_HEADERS} headers"));
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return Err("a part has a malformed header line".into());
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-disposition") {
            disposition = Some(value);
        } else if name.eq_ignore_ascii_case(b"content-type") {
            content_type = Some(String::from_utf8_lossy(value).into_owned());
        }
    }
    let Some(d) = disposition else {
        return Err("a part has no Content-Disposition header".into());
    };
    let mut params = split_params(d).into_iter();
    let kind = params.next().unwrap_or_default();
    if !kind.trim_ascii().eq_ignore_ascii_case(b"form-data") {
        return Err("a part's Content-Disposition is not form-data".into());
    }
    let mut name = None;
    let mut filename = None;
    for p in params {
        let p = p.trim_ascii();
        let Some(eq) = p.iter().position(|&c| c == b'=') else {
            continue;
        };
        let key = p[..eq].trim_ascii();
        let raw = p[eq + 1..].trim_ascii();
        let value = match raw {
            [b'"', inner @ .., b'"'] => inner,
            _ => raw,
        };
        if key.eq_ignore_ascii_case(b"name") {
            name = Some(unescape(value));
        } else if key.eq_ignore_ascii_case(b"filename") {
            filename = Some(unescape(value));
        }
    }
    let Some(name) = name else {
        return Err("a part's Content-Disposition has no name".into());
    };
    Ok(Part {
        name,
        filename,
        content_type,
        body: (0, 0),
    })
}

/// `form-data; name="a;b"; filename=x` split at the semicolons outside quotes.
fn split_params(v: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, &c) in v.iter().enumerate() {
        match c {
            b'"' => quoted = !quoted,
            b';' if !quoted => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&v[start..]);
    out
}

/// A quoted name as the HTML standard encodes it (`%22`, `%0D`, `%0A` for
/// `"`, CR, LF), decoded as UTF-8.
fn unescape(v: &[u8]) -> String {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let c = match v.get(i..i + 3) {
            Some(b"%22") => Some(b'"'),
            Some(b"%0D") | Some(b"%0d") => Some(b'\r'),
            Some(b"%0A") | Some(b"%0a") => Some(b'\n'),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                i += 3;
            }
            None => {
                out.push(v[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn new_string<'s>(scope: &mut v8::PinScope<'s, '_>, s: &str) -> v8::Local<'s, v8::Value> {
    match v8::String::new(scope, s) {
        Some(s) => s.into(),
        None => v8::undefined(scope).into(),
    }
}

/// `multipartParse(bytes, boundary)`: the parts of a `multipart/form-data`
/// body as a flat array `[name, filename, type, value, ...]`: `filename` and
/// `type` are `undefined` when absent; `value` is a string (UTF-8, lossy)
/// for a part without a filename, else an `ArrayBuffer` with its bytes.
pub(crate) fn op_multipart_parse(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(0)) else {
        throw_type_error(scope, "multipartParse: expected a Uint8Array");
        return;
    };
    let Ok(boundary) = v8::Local::<v8::String>::try_from(args.get(1)) else {
        throw_type_error(scope, "multipartParse: expected a boundary string");
        return;
    };
    if boundary.length() == 0 || boundary.length() > MAX_BOUNDARY {
        throw_type_error(
            scope,
            &format!("Failed to parse the body as FormData: the boundary must have 1 to {MAX_BOUNDARY} characters"),
        );
        return;
    }
    let boundary = boundary.to_rust_string_lossy(scope);
    let len = view.byte_length();
    if len > MAX_MULTIPART_BODY {
        throw_type_error(
            scope,
            &format!("Failed to parse the body as FormData: it is larger than {MAX_MULTIPART_BODY} bytes"),
        );
        return;
    }
    let mut body = vec![0u8; len];
    view.copy_contents(&mut body);
    let parts = match parse(&body, boundary.as_bytes()) {
        Ok(p) => p,
        Err(msg) => {
            throw_type_error(
                scope,
                &format!("Failed to parse the body as FormData: {msg}"),
            );
            return;
        }
    };
    let mut out: Vec<v8::Local<v8::Value>> = Vec::with_capacity(parts.len() * 4);
    for p in &parts {
        let bytes = &body[p.body.0..p.body.1];
        out.push(new_string(scope, &p.name));
        match &p.filename {
            Some(f) => out.push(new_string(scope, f)),
            None => out.push(v8::undefined(scope).into()),
        }
        match &p.content_type {
            Some(t) => out.push(new_string(scope, t)),
            None => out.push(v8::undefined(scope).into()),
        }
        if p.filename.is_some() {
            // Checked against the budget first (a failed allocation would
            // abort the process); a RangeError is thrown when it does not fit.
            let Some(ab) = super::ops_web::array_buffer(scope, bytes) else {
                return;
            };
            out.push(ab.into());
        } else {
            out.push(new_string(scope, &String::from_utf8_lossy(bytes)));
        }
    }
    rv.set(v8::Array::new_with_elements(scope, &out).into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_files() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XyZ--\r\n";
        let parts = parse(body, b"XyZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "a");
        assert_eq!(&body[parts[0].body.0..parts[0].body.1], b"1");
        assert_eq!(parts[1].filename.as_deref(), Some("x.txt"));
        assert_eq!(&body[parts[1].body.0..parts[1].body.1], b"hi");
    }
}
