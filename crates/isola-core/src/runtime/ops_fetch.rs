//! The native half of outbound `fetch()` (`js/web/fetch.js`): hands a
//! tenant's subrequest to the host's [`Outbound`] client and settles its
//! promise from the event loop ([`feed_fetches`]).
//!
//! What crosses is capped here, before anything is copied: the URL, the
//! header lines (count, bytes, token names, no CR/LF/NUL in values), the
//! body (the tenant's ArrayBuffer budget), the number of subrequests per
//! invocation (`fetch.max_subrequests`). The policy's host check runs here
//! too, so a refused host fails at once; the host checks it again after DNS
//! resolution and on every redirect. The response body reaches the tenant
//! through the counted allocator, so it counts in its ArrayBuffer budget.

use std::sync::Arc;
use std::time::Duration;

use crate::outbound::{
    ByteBudget, FetchPolicy, Outbound, OutboundCall, OutboundPoll, OutboundRequest, Reservation,
};
use crate::runtime::allocator::AbCounter;
use crate::runtime::{boundary, ops};

/// Longest URL a tenant may fetch (bytes).
pub const MAX_FETCH_URL: usize = 16 << 10;
/// Most header lines in one subrequest.
pub const MAX_FETCH_HEADERS: usize = 256;
/// Most bytes of header names and values in one subrequest.
pub const MAX_FETCH_HEADER_BYTES: usize = 128 << 10;
/// Subrequests in flight at once per isolate.
pub const MAX_FETCHES_IN_FLIGHT: usize = 64;

/// The host's client and the tenant's policy, when the tenant may fetch.
#[derive(Clone)]
pub(crate) struct FetchHost {
    pub policy: Arc<FetchPolicy>,
    pub outbound: Arc<dyn Outbound>,
}

/// A subrequest in flight and the promise waiting for it.
pub(crate) struct PendingFetch {
    pub call: Box<dyn OutboundCall>,
    pub resolver: v8::Global<v8::PromiseResolver>,
}

/// A `TypeError` with `msg`.
fn throw(scope: &mut v8::PinScope, msg: &str) {
    crate::runtime::ops_web::throw(scope, false, msg);
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Reads the flat `[name, value, name, value, ...]` header array, capped.
fn header_lines(
    scope: &mut v8::PinScope,
    v: v8::Local<v8::Value>,
) -> Result<Vec<(String, String)>, String> {
    let arr = v8::Local::<v8::Array>::try_from(v).map_err(|_| "headers must be an array")?;
    let n = arr.length() as usize;
    if n / 2 > MAX_FETCH_HEADERS {
        return Err(format!(
            "{} header lines; a subrequest may have at most {MAX_FETCH_HEADERS}",
            n / 2
        ));
    }
    let mut out = Vec::with_capacity(n / 2);
    let mut bytes = 0usize;
    for i in (0..n.saturating_sub(1)).step_by(2) {
        let get = |j: usize| -> Result<String, String> {
            let v = arr
                .get_index(scope, j as u32)
                .ok_or("a header could not be read")?;
            let s = v8::Local::<v8::String>::try_from(v)
                .map_err(|_| "header names and values must be strings")?;
            if s.length() > MAX_FETCH_HEADER_BYTES {
                return Err(format!(
                    "a header is longer than {MAX_FETCH_HEADER_BYTES} bytes"
                ));
            }
            Ok(s.to_rust_string_lossy(scope))
        };
        let (name, value) = (get(i)?, get(i + 1)?);
        bytes += name.len() + value.len();
        if bytes > MAX_FETCH_HEADER_BYTES {
            return Err(format!(
                "the headers hold more than {MAX_FETCH_HEADER_BYTES} bytes"
            ));
        }
        if !is_token(&name) {
            return Err(format!(
                "\"{}\" is not a valid header name",
                name.chars().take(64).collect::<String>()
            ));
        }
        if value.bytes().any(|c| c == b'\r' || c == b'\n' || c == 0) {
            return Err(format!(
                "the value of header \"{name}\" contains CR, LF or NUL"
            ));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// `fetchStart(method, url, headers, body, follow)`: starts a subrequest and
/// returns a promise of `{ status, statusText, url, redirected, headers, body }`.
/// Throws a `TypeError` for what the tenant may not do.
pub(crate) fn op_fetch_start(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Some(st) = ops::state(scope) else { return };
    let Some(host) = st.borrow().fetch.clone() else {
        throw(scope, "fetch is not available here: this runtime has no outbound HTTP client (isola serve provides one)");
        return;
    };
    let (method, url) = match (
        v8::Local::<v8::String>::try_from(args.get(0)),
        v8::Local::<v8::String>::try_from(args.get(1)),
    ) {
        (Ok(m), Ok(u)) if m.length() <= 64 && u.length() <= MAX_FETCH_URL => {
            (m.to_rust_string_lossy(scope), u.to_rust_string_lossy(scope))
        }
        (Ok(_), Ok(_)) => {
            throw(
                scope,
                &format!("fetch: the URL is longer than {MAX_FETCH_URL} bytes"),
            );
            return;
        }
        _ => {
            throw(scope, "fetch: bad arguments");
            return;
        }
    };
    if !is_token(&method) {
        throw(scope, &format!("fetch: \"{method}\" is not a valid method"));
        return;
    }
    let parsed = match url::Url::parse(&url) {
        Ok(u) => u,
        Err(e) => {
            throw(
                scope,
                &format!(
                    "fetch: invalid URL \"{}\": {e}",
                    url.chars().take(200).collect::<String>()
                ),
            );
            return;
        }
    };
    if let Err(denied) = host.policy.allows_url(&parsed) {
        throw(scope, &denied.to_string());
        return;
    }
    let headers = match header_lines(scope, args.get(2)) {
        Ok(h) => h,
        Err(m) => {
            throw(scope, &format!("fetch: {m}"));
            return;
        }
    };
    let ab = st.borrow().ab.clone();
    let ab_limit = ab.limit();
    let budget: Arc<dyn ByteBudget> = ab;
    // The copy handed to the host counts in the tenant's ArrayBuffer budget
    // until the subrequest ends (the tenant's own buffer counts too).
    let mut body_charge = Reservation::new(budget.clone());
    let body = if args.get(3).is_null_or_undefined() {
        Vec::new()
    } else {
        let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(3)) else {
            throw(scope, "fetch: the body must be bytes");
            return;
        };
        if !body_charge.grow(view.byte_length()) {
            throw(scope, &format!("fetch: a copy of the {}-byte request body does not fit the ArrayBuffer memory limit of {ab_limit} bytes (the bodies of subrequests in flight count)", view.byte_length()));
            return;
        }
        let mut buf = vec![0u8; view.byte_length()];
        view.copy_contents(&mut buf);
        buf
    };
    let follow = args.get(4).is_true();
    {
        let mut s = st.borrow_mut();
        if s.subrequests >= host.policy.max_subrequests {
            let n = host.policy.max_subrequests;
            drop(s);
            throw(scope, &format!("fetch: this invocation already made {n} subrequests, its limit (fetch.max_subrequests)"));
            return;
        }
        if s.fetches.len() >= MAX_FETCHES_IN_FLIGHT {
            drop(s);
            throw(
                scope,
                &format!("fetch: {MAX_FETCHES_IN_FLIGHT} subrequests are already in flight"),
            );
            return;
        }
        s.subrequests += 1;
    }
    let Some(resolver) = v8::PromiseResolver::new(scope) else {
        return;
    };
    let promise = resolver.get_promise(scope);
    let (tenant, deadline) = {
        let s = st.borrow();
        (s.tenant.clone(), s.deadline)
    };
    // The policy's timeout, or what is left of the invocation's wall time.
    let mut timeout = Duration::from_millis(host.policy.timeout_ms);
    if let Some(d) = deadline {
        timeout = timeout.min(d.saturating_duration_since(std::time::Instant::now()));
    }
    let req = OutboundRequest {
        tenant,
        method,
        url: parsed.to_string(),
        headers,
        body,
        follow_redirects: follow,
        policy: host.policy.clone(),
        timeout,
        max_body_bytes: (host.policy.max_response_bytes as usize).min(ab_limit),
        budget,
        body_charge: Some(body_charge),
    };
    let call = host.outbound.start(req);
    st.borrow_mut().fetches.push(PendingFetch {
        call,
        resolver: v8::Global::new(scope, resolver),
    });
    rv.set(promise.into());
}

/// `fetchAbort(promise)`: drops the subrequest behind `promise` (the JS side
/// already rejected the tenant's promise with the signal's reason).
pub(crate) fn op_fetch_abort(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let Some(st) = ops::state(scope) else { return };
    let target = args.get(0);
    let list = std::mem::take(&mut st.borrow_mut().fetches);
    let mut keep = Vec::with_capacity(list.len());
    for f in list {
        let p = v8::Local::new(scope, &f.resolver).get_promise(scope);
        if !p.strict_equals(target) {
            keep.push(f);
        }
    }
    st.borrow_mut().fetches = keep;
}

/// Settles the promises of finished subrequests. Returns whether some are
/// still in flight.
pub(crate) fn feed_fetches(scope: &mut v8::PinScope<'_, '_>, ab: &AbCounter) -> bool {
    let Some(st) = ops::state(scope) else {
        return false;
    };
    if st.borrow().fetches.is_empty() {
        return false;
    }
    let mut done = Vec::new();
    {
        let mut s = st.borrow_mut();
        let mut i = 0;
        while i < s.fetches.len() {
            match s.fetches[i].call.poll() {
                OutboundPoll::Pending => i += 1,
                OutboundPoll::Done(r) => {
                    let f = s.fetches.swap_remove(i);
                    done.push((f.resolver, r));
                }
            }
        }
    }
    for (resolver, result) in done {
        let resolver = v8::Local::new(scope, resolver);
        match result {
            Ok(mut resp) => {
                // The host's charge ends where the tenant's copy begins.
                drop(resp.body_charge.take());
                match response_record(scope, ab, &resp) {
                    Ok(rec) => {
                        resolver.resolve(scope, rec);
                    }
                    Err(msg) => reject(scope, resolver, &msg, true),
                }
            }
            Err(msg) => reject(scope, resolver, &msg, false),
        }
    }
    let pending = !st.borrow().fetches.is_empty();
    pending
}

fn reject(
    scope: &mut v8::PinScope,
    resolver: v8::Local<v8::PromiseResolver>,
    msg: &str,
    range: bool,
) {
    if let Some(m) = v8::String::new(scope, msg) {
        let e = if range {
            v8::Exception::range_error(scope, m)
        } else {
            v8::Exception::type_error(scope, m)
        };
        resolver.reject(scope, e);
    }
}

fn response_record<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    ab: &AbCounter,
    r: &crate::outbound::OutboundResponse,
) -> Result<v8::Local<'s, v8::Value>, String> {
    let body = boundary::bytes_to_u8a(scope, ab, &r.body).ok_or_else(|| {
        format!(
            "fetch: a response body of {} bytes does not fit the ArrayBuffer memory limit of {} bytes",
            r.body.len(),
            ab.limit()
        )
    })?;
    let fail = || "fetch: out of memory building the response".to_string();
    let rec = v8::Object::new(scope);
    let null = v8::null(scope).into();
    rec.set_prototype(scope, null).ok_or_else(fail)?;
    let set = |scope: &mut v8::PinScope<'s, '_>, k: &str, v: v8::Local<'s, v8::Value>| {
        v8::String::new(scope, k).and_then(|k| rec.create_data_property(scope, k.into(), v))
    };
    let status = v8::Integer::new(scope, r.status.into()).into();
    set(scope, "status", status).ok_or_else(fail)?;
    let text = v8::String::new(scope, &r.status_text)
        .ok_or_else(fail)?
        .into();
    set(scope, "statusText", text).ok_or_else(fail)?;
    let url = v8::String::new(scope, &r.url).ok_or_else(fail)?.into();
    set(scope, "url", url).ok_or_else(fail)?;
    let redirected = v8::Boolean::new(scope, r.redirected).into();
    set(scope, "redirected", redirected).ok_or_else(fail)?;
    let mut flat = Vec::with_capacity(r.headers.len() * 2);
    for (n, v) in &r.headers {
        flat.push(v8::String::new(scope, n).ok_or_else(fail)?.into());
        flat.push(v8::String::new(scope, v).ok_or_else(fail)?.into());
    }
    let headers = v8::Array::new_with_elements(scope, &flat).into();
    set(scope, "headers", headers).ok_or_else(fail)?;
    set(scope, "body", body).ok_or_else(fail)?;
    Ok(rec.into())
}
