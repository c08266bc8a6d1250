//! Tenant responses made safe to put on a client's connection.
//!
//! The server frames every response (hyper writes `content-length` or
//! chunked encoding from the body it is given); a tenant never does. So
//! hop-by-hop and framing headers a handler returns are dropped, the status
//! must be a final one (200-599), each header name and value must be valid
//! HTTP (checked with the `http` crate's types), and the header block is
//! capped in count and size. Several values of one name (`set-cookie`) stay
//! separate header lines.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::StatusCode;

/// Most header lines a tenant response may carry.
pub const MAX_RESPONSE_HEADERS: usize = 256;
/// Most bytes (names plus values) a tenant response's headers may take.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 128 << 10;

/// Why a tenant response cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The status is not a final HTTP status.
    #[error("the handler returned status {0}; a response status must be 200-599")]
    Status(u16),
    /// More header lines than allowed.
    #[error("the handler returned {count} headers; at most {limit} are allowed")]
    TooManyHeaders {
        /// Header lines returned.
        count: usize,
        /// [`MAX_RESPONSE_HEADERS`].
        limit: usize,
    },
    /// The header block is too large.
    #[error("the handler's response headers exceed {limit} bytes")]
    HeadersTooLarge {
        /// [`MAX_RESPONSE_HEADER_BYTES`].
        limit: usize,
    },
    /// A header name is not a valid HTTP token.
    #[error("the handler returned an invalid header name {0:?}")]
    HeaderName(String),
    /// A header value contains bytes HTTP does not allow (CR, LF, NUL, ...).
    #[error("the handler returned an invalid value for header \"{0}\"")]
    HeaderValue(String),
}

/// Whether the server, not the tenant, owns this header (hop-by-hop or framing).
fn server_owned(name: &HeaderName) -> bool {
    let n = name.as_str(); // always lowercase
    matches!(
        n,
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "upgrade"
            | "te"
            | "trailer"
    ) || n.starts_with("proxy-")
}

/// Shortens what a tenant sent for an error message.
fn shown(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned();
    if bytes.len() > 64 {
        format!("{s}...")
    } else {
        s
    }
}

/// Checks a tenant's status and headers and builds the header map the
/// server sends: hop-by-hop and framing headers removed, repeated names kept
/// as separate lines, in order.
pub fn tenant_head(
    status: u16,
    headers: &[(String, String)],
) -> Result<(StatusCode, HeaderMap), FramingError> {
    let status = match StatusCode::from_u16(status) {
        Ok(s) if (200..=599).contains(&status) => s,
        _ => return Err(FramingError::Status(status)),
    };
    if headers.len() > MAX_RESPONSE_HEADERS {
        return Err(FramingError::TooManyHeaders {
            count: headers.len(),
            limit: MAX_RESPONSE_HEADERS,
        });
    }
    let mut total = 0usize;
    for (k, v) in headers {
        total = total.saturating_add(k.len()).saturating_add(v.len());
        if total > MAX_RESPONSE_HEADER_BYTES {
            return Err(FramingError::HeadersTooLarge {
                limit: MAX_RESPONSE_HEADER_BYTES,
            });
        }
    }
    let mut map = HeaderMap::with_capacity(headers.len());
    let mut dropped: Vec<HeaderName> = Vec::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| FramingError::HeaderName(shown(k.as_bytes())))?;
        let value = HeaderValue::from_bytes(v.as_bytes())
            .map_err(|_| FramingError::HeaderValue(name.as_str().to_string()))?;
        if server_owned(&name) {
            if name == hyper::header::CONNECTION {
                // Names listed in `Connection` are hop-by-hop too.
                for listed in v.split(',') {
                    if let Ok(n) = HeaderName::from_bytes(listed.trim().as_bytes()) {
                        dropped.push(n);
                    }
                }
            }
            continue;
        }
        map.append(name, value);
    }
    for n in dropped {
        map.remove(n);
    }
    Ok((status, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn framing_and_hop_by_hop_headers_are_dropped_case_insensitively() {
        let (_, m) = tenant_head(
            200,
            &h(&[
                ("Content-Length", "0"),
                ("TRANSFER-ENCODING", "chunked"),
                ("Connection", "close, X-Secret"),
                ("x-secret", "1"),
                ("Keep-Alive", "timeout=5"),
                ("Upgrade", "websocket"),
                ("TE", "trailers"),
                ("Trailer", "x"),
                ("Proxy-Connection", "keep-alive"),
                ("Proxy-Authenticate", "Basic"),
                ("X-Kept", "yes"),
            ]),
        )
        .unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m["x-kept"], "yes");
    }

    #[test]
    fn set_cookie_values_stay_separate_lines() {
        let (_, m) = tenant_head(200, &h(&[("set-cookie", "a=1"), ("Set-Cookie", "b=2")])).unwrap();
        let v: Vec<_> = m.get_all("set-cookie").iter().collect();
        assert_eq!(v, ["a=1", "b=2"]);
    }

    #[test]
    fn bad_statuses_names_values_and_sizes_are_errors() {
        for s in [0, 100, 101, 199, 600, 1000, 65535] {
            assert_eq!(tenant_head(s, &[]).unwrap_err(), FramingError::Status(s));
        }
        assert!(tenant_head(599, &[]).is_ok());
        assert!(matches!(
            tenant_head(200, &h(&[("bad name", "x")])),
            Err(FramingError::HeaderName(_))
        ));
        assert!(matches!(
            tenant_head(200, &h(&[("", "x")])),
            Err(FramingError::HeaderName(_))
        ));
        assert!(matches!(
            tenant_head(200, &h(&[("x-a", "a\r\nx-b: c")])),
            Err(FramingError::HeaderValue(n)) if n == "x-a"
        ));
        let many: Vec<_> = (0..=MAX_RESPONSE_HEADERS)
            .map(|i| (format!("x-{i}"), "v".to_string()))
            .collect();
        assert!(matches!(
            tenant_head(200, &many),
            Err(FramingError::TooManyHeaders {
                count: 257,
                limit: 256
            })
        ));
        let big = vec![("x-big".to_string(), "v".repeat(MAX_RESPONSE_HEADER_BYTES))];
        assert!(matches!(
            tenant_head(200, &big),
            Err(FramingError::HeadersTooLarge { .. })
        ));
    }
}
