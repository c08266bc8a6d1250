//! Native functions the bootstrap calls (console output, timers, UTF-8).
//!
//! They are created inside the snapshot creator and registered as external
//! references, so a tenant isolate deserializes them without any setup. The
//! bootstrap closes over them; tenant code cannot reach the ops object.
//! Every op caps its input size: an op is native work done on the tenant's
//! behalf and must not become a way around the tenant's limits.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use v8::MapFnTo;

use crate::runtime::{
    ops_clone, ops_compress, ops_crypto, ops_encoding, ops_fetch, ops_formdata, ops_urlpattern,
    ops_wasm, ops_web,
};
use crate::tenant::{BodySource, ConsoleLevel, ConsoleSink};

/// Longest console line passed to the sink (bytes); longer lines are cut.
pub const MAX_CONSOLE_LINE: usize = 64 * 1024;
/// Largest string/byte input of the UTF-8 ops.
pub const MAX_CODEC_INPUT: usize = 32 << 20;
/// Most timers one tenant may have pending at once.
pub const MAX_TIMERS: usize = 10_000;
/// Most header lines in one response.
pub const MAX_RESPONSE_HEADERS: usize = 256;
/// Most bytes of response header names and values together (as other platforms: 128 KiB).
pub const MAX_RESPONSE_HEADER_BYTES: usize = 128 << 10;

static BOOTSTRAP_EXECUTIONS: AtomicUsize = AtomicUsize::new(0);

/// How many times this process has executed the bootstrap JS. Tenants start
/// from the snapshot, so creating tenants never increases it.
pub fn bootstrap_executions() -> usize {
    BOOTSTRAP_EXECUTIONS.load(Ordering::SeqCst)
}

/// Per-isolate state the ops work on, kept in an isolate slot.
pub(crate) struct OpState {
    pub console: ConsoleSink,
    pub timers: Timers,
    /// The streamed request body of the invocation in flight.
    pub body: Option<Box<dyn BodySource>>,
    /// The promise of a pending `readBody()`.
    pub body_waiter: Option<v8::Global<v8::PromiseResolver>>,
    /// Header lines of the response being finished (`responseHeader`).
    pub out_headers: Vec<(String, String)>,
    /// Bytes of names and values in `out_headers`.
    pub out_header_bytes: usize,
    /// Promises rejected with no handler since the last microtask
    /// checkpoint, and their reasons (at most [`MAX_PENDING_REJECTIONS`]).
    pub rejections: Vec<(v8::Global<v8::Promise>, v8::Global<v8::Value>)>,
    /// The tenant's name (for subrequests).
    pub tenant: String,
    /// The host's HTTP client and the tenant's policy, if it may fetch.
    pub fetch: Option<ops_fetch::FetchHost>,
    /// Subrequests in flight (they may outlive the invocation that started
    /// them when its `ctx.waitUntil` work waits for them).
    pub fetches: Vec<ops_fetch::PendingFetch>,
    /// Subrequests the invocation in flight has made.
    pub subrequests: u32,
    /// The wall deadline of the invocation in flight (bounds a subrequest).
    pub deadline: Option<Instant>,
    /// TextDecoders of legacy encodings in streaming mode.
    pub decoders: ops_encoding::Decoders,
    /// Wasm memories alive (charged by `wasmReserve`).
    pub wasm_memories: u32,
    /// The tenant's ArrayBuffer budget (what a subrequest may bring back).
    pub ab: std::sync::Arc<crate::runtime::allocator::AbCounter>,
    /// The live (de)compressors of CompressionStream/DecompressionStream.
    pub codecs: ops_compress::Codecs,
    /// Promises reported as unhandled, and their reasons (the newest
    /// [`MAX_PENDING_REJECTIONS`]): one that gets a handler later fires
    /// `rejectionhandled`.
    pub reported: std::collections::VecDeque<(v8::Global<v8::Promise>, v8::Global<v8::Value>)>,
    /// Reported promises that got a handler since the last checkpoint.
    pub handled_later: Vec<(v8::Global<v8::Promise>, v8::Global<v8::Value>)>,
}

/// Most unhandled rejections remembered between two checkpoints; later ones
/// in the same turn are not reported (a tenant rejecting in a loop must not
/// grow this list without bound).
pub const MAX_PENDING_REJECTIONS: usize = 100;

/// V8's promise-reject hook: remembers promises rejected with no handler, and
/// forgets one when a handler is attached later, so only rejections still
/// unhandled at the next checkpoint are reported (`unhandledrejection`).
pub(crate) extern "C" fn on_promise_reject(msg: v8::PromiseRejectMessage) {
    // SAFETY: V8 calls this hook on the isolate's thread, inside its execution.
    v8::callback_scope!(unsafe scope, &msg);
    let Some(st) = state(scope) else { return };
    let promise = msg.get_promise();
    match msg.get_event() {
        v8::PromiseRejectEvent::PromiseRejectWithNoHandler => {
            let mut st = st.borrow_mut();
            if st.rejections.len() < MAX_PENDING_REJECTIONS {
                let reason = msg
                    .get_value()
                    .unwrap_or_else(|| v8::undefined(scope).into());
                let entry = (
                    v8::Global::new(scope, promise),
                    v8::Global::new(scope, reason),
                );
                st.rejections.push(entry);
            }
        }
        v8::PromiseRejectEvent::PromiseHandlerAddedAfterReject => {
            let mut st = st.borrow_mut();
            let before = st.rejections.len();
            st.rejections.retain(|(p, _)| *p != promise);
            // Not pending any more but reported already: `rejectionhandled`.
            if st.rejections.len() == before {
                if let Some(i) = st.reported.iter().position(|(p, _)| *p == promise) {
                    if let Some(entry) = st.reported.remove(i) {
                        if st.handled_later.len() < MAX_PENDING_REJECTIONS {
                            st.handled_later.push(entry);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

pub(crate) type SharedOpState = Rc<RefCell<OpState>>;

/// Pending timers, ordered by deadline.
#[derive(Default)]
pub(crate) struct Timers {
    queue: BTreeSet<(Instant, u64, u32)>,
    by_id: HashMap<u32, (Instant, u64)>,
    seq: u64,
}

impl Timers {
    fn start(&mut self, id: u32, delay: Duration) -> bool {
        self.clear(id);
        if self.by_id.len() >= MAX_TIMERS {
            return false;
        }
        let at = Instant::now() + delay;
        self.seq += 1;
        self.queue.insert((at, self.seq, id));
        self.by_id.insert(id, (at, self.seq));
        true
    }

    fn clear(&mut self, id: u32) {
        if let Some((at, seq)) = self.by_id.remove(&id) {
            self.queue.remove(&(at, seq, id));
        }
    }

    /// The earliest deadline, if any timer is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _, _)| *at)
    }

    /// Removes and returns the first timer due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<u32> {
        let (at, seq, id) = *self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.remove(&(at, seq, id));
        self.by_id.remove(&id);
        Some(id)
    }

    pub fn clear_all(&mut self) {
        self.queue.clear();
        self.by_id.clear();
    }
}

/// The external references of every native function in the snapshot, in a
/// fixed order (the snapshot stores indexes into this list).
pub(crate) fn external_references() -> Cow<'static, [v8::ExternalReference]> {
    Cow::Owned(
        OPS.iter()
            .map(|(_, f)| v8::ExternalReference { function: *f })
            .collect(),
    )
}

type OpFn = v8::FunctionCallback;

/// Names and functions of the ops, in external-reference order.
pub(crate) static OPS: std::sync::LazyLock<Vec<(&'static str, OpFn)>> =
    std::sync::LazyLock::new(|| {
        vec![
            ("print", op_print.map_fn_to()),
            ("timerStart", op_timer_start.map_fn_to()),
            ("timerClear", op_timer_clear.map_fn_to()),
            ("utf8Length", op_utf8_length.map_fn_to()),
            ("encodeUtf8Into", op_encode_utf8_into.map_fn_to()),
            ("decodeUtf8", op_decode_utf8.map_fn_to()),
            ("bootstrapMarker", op_bootstrap_marker.map_fn_to()),
            ("readBody", op_read_body.map_fn_to()),
            (
                "responseHeadersReset",
                op_response_headers_reset.map_fn_to(),
            ),
            ("responseHeader", op_response_header.map_fn_to()),
            ("urlParse", ops_web::op_url_parse.map_fn_to()),
            ("urlSet", ops_web::op_url_set.map_fn_to()),
            ("urlencodedParse", ops_web::op_urlencoded_parse.map_fn_to()),
            (
                "urlencodedSerialize",
                ops_web::op_urlencoded_serialize.map_fn_to(),
            ),
            ("atob", ops_web::op_atob.map_fn_to()),
            ("btoa", ops_web::op_btoa.map_fn_to()),
            ("randomFill", ops_web::op_random_fill.map_fn_to()),
            ("digest", ops_web::op_digest.map_fn_to()),
            (
                "structuredClone",
                ops_clone::op_structured_clone.map_fn_to(),
            ),
            ("hmacSign", ops_crypto::op_hmac_sign.map_fn_to()),
            ("hmacVerify", ops_crypto::op_hmac_verify.map_fn_to()),
            ("fetchStart", ops_fetch::op_fetch_start.map_fn_to()),
            ("fetchAbort", ops_fetch::op_fetch_abort.map_fn_to()),
            (
                "urlpatternParse",
                ops_urlpattern::op_urlpattern_parse.map_fn_to(),
            ),
            (
                "urlpatternMatchInput",
                ops_urlpattern::op_urlpattern_match_input.map_fn_to(),
            ),
            (
                "multipartParse",
                ops_formdata::op_multipart_parse.map_fn_to(),
            ),
            ("codecNew", ops_compress::op_codec_new.map_fn_to()),
            ("codecPush", ops_compress::op_codec_push.map_fn_to()),
            ("codecFree", ops_compress::op_codec_free.map_fn_to()),
            ("wasmInspect", ops_wasm::op_wasm_inspect.map_fn_to()),
            ("wasmReserve", ops_wasm::op_wasm_reserve.map_fn_to()),
            ("wasmRelease", ops_wasm::op_wasm_release.map_fn_to()),
            ("loadArea", super::lazy_areas::op_load_area.map_fn_to()),
            (
                "encodingForLabel",
                ops_encoding::op_encoding_for_label.map_fn_to(),
            ),
            ("legacyDecode", ops_encoding::op_legacy_decode.map_fn_to()),
            (
                "legacyDecoderFree",
                ops_encoding::op_legacy_decoder_free.map_fn_to(),
            ),
            ("keyGenerate", ops_crypto::op_key_generate.map_fn_to()),
            ("keyImport", ops_crypto::op_key_import.map_fn_to()),
            ("keyExport", ops_crypto::op_key_export.map_fn_to()),
            ("keySign", ops_crypto::op_key_sign.map_fn_to()),
            ("keyVerify", ops_crypto::op_key_verify.map_fn_to()),
            ("aesGcm", ops_crypto::op_aes_gcm.map_fn_to()),
            ("pbkdf2Step", super::ops_pbkdf2::op_pbkdf2_step.map_fn_to()),
            ("hkdf", ops_crypto::op_hkdf.map_fn_to()),
        ]
    });

/// Builds the ops object (used only inside the snapshot creator).
pub(crate) fn create_ops_object<'s>(
    scope: &mut v8::PinScope<'s, '_>,
) -> Option<v8::Local<'s, v8::Object>> {
    let obj = v8::Object::new(scope);
    for (name, f) in OPS.iter() {
        let tmpl = v8::FunctionTemplate::builder_raw(*f).build(scope);
        let func = tmpl.get_function(scope)?;
        let key = v8::String::new(scope, name)?;
        obj.set(scope, key.into(), func.into())?;
    }
    Some(obj)
}

pub(crate) fn state(scope: &v8::PinScope) -> Option<SharedOpState> {
    scope.get_slot::<SharedOpState>().cloned()
}

pub(crate) fn throw_range_error(scope: &mut v8::PinScope, msg: &str) {
    if let Some(m) = v8::String::new(scope, msg) {
        let e = v8::Exception::range_error(scope, m);
        scope.throw_exception(e);
    }
}

pub(crate) fn throw_type_error(scope: &mut v8::PinScope, msg: &str) {
    if let Some(m) = v8::String::new(scope, msg) {
        let e = v8::Exception::type_error(scope, m);
        scope.throw_exception(e);
    }
}

fn op_bootstrap_marker(
    _scope: &mut v8::PinScope,
    _args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    BOOTSTRAP_EXECUTIONS.fetch_add(1, Ordering::SeqCst);
}

fn op_print(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let level = if args.get(0).int32_value(scope).unwrap_or(0) == 0 {
        ConsoleLevel::Log
    } else {
        ConsoleLevel::Error
    };
    let Ok(s) = v8::Local::<v8::String>::try_from(args.get(1)) else {
        return;
    };
    let line = crate::runtime::boundary::string_prefix(scope, s, MAX_CONSOLE_LINE);
    // Without a state (inside the snapshot creator) output is dropped.
    if let Some(st) = state(scope) {
        let sink = st.borrow().console.clone();
        sink(level, &line);
    }
}

fn op_timer_start(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let id = args.get(0).uint32_value(scope).unwrap_or(0);
    let ms = args.get(1).number_value(scope).unwrap_or(0.0);
    let ms = if ms.is_finite() {
        ms.clamp(0.0, 2_147_483_647.0)
    } else {
        0.0
    };
    let Some(st) = state(scope) else { return };
    let ok = st
        .borrow_mut()
        .timers
        .start(id, Duration::from_secs_f64(ms / 1000.0));
    if !ok {
        throw_range_error(
            scope,
            &format!("too many pending timers (the limit is {MAX_TIMERS})"),
        );
    }
}

fn op_timer_clear(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let id = args.get(0).uint32_value(scope).unwrap_or(0);
    if let Some(st) = state(scope) {
        st.borrow_mut().timers.clear(id);
    }
}

fn op_utf8_length(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Ok(s) = v8::Local::<v8::String>::try_from(args.get(0)) else {
        throw_type_error(scope, "utf8Length: expected a string");
        return;
    };
    if s.length() > MAX_CODEC_INPUT {
        throw_range_error(
            scope,
            &format!("TextEncoder: input longer than {MAX_CODEC_INPUT} characters"),
        );
        return;
    }
    let n = s.utf8_length(scope);
    rv.set(v8::Number::new(scope, n as f64).into());
}

/// Writes a string as UTF-8 into a `Uint8Array` the bootstrap allocated (so
/// the bytes count against the tenant's ArrayBuffer budget).
fn op_encode_utf8_into(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let (Ok(s), Ok(view)) = (
        v8::Local::<v8::String>::try_from(args.get(0)),
        v8::Local::<v8::Uint8Array>::try_from(args.get(1)),
    ) else {
        throw_type_error(scope, "encodeUtf8Into: expected a string and a Uint8Array");
        return;
    };
    let len = view.byte_length();
    let shared = view.get_backing_store().is_none_or(|b| b.is_shared());
    if len == 0 || shared {
        rv.set(v8::Number::new(scope, 0.0).into());
        return;
    }
    let data = view.data() as *mut u8;
    // SAFETY: `view` is a live, non-shared Uint8Array held by this call's
    // arguments; `data` points at its first byte and `len` bytes follow. No
    // JS runs while the slice exists, so nothing else touches that memory.
    let buf = unsafe { std::slice::from_raw_parts_mut(data, len) };
    let written = s.write_utf8_v2(scope, buf, v8::WriteFlags::kReplaceInvalidUtf8, None);
    rv.set(v8::Number::new(scope, written as f64).into());
}

fn op_decode_utf8(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(0)) else {
        throw_type_error(scope, "decodeUtf8: expected a Uint8Array");
        return;
    };
    let fatal = args.get(1).boolean_value(scope);
    let len = view.byte_length();
    if len > MAX_CODEC_INPUT {
        throw_range_error(
            scope,
            &format!("TextDecoder: input larger than {MAX_CODEC_INPUT} bytes"),
        );
        return;
    }
    let mut buf = vec![0u8; len];
    view.copy_contents(&mut buf);
    let text: Cow<str> = if fatal {
        match std::str::from_utf8(&buf) {
            Ok(s) => Cow::Borrowed(s),
            Err(e) => {
                throw_type_error(
                    scope,
                    &format!("TextDecoder: invalid UTF-8 at byte {}", e.valid_up_to()),
                );
                return;
            }
        }
    } else {
        String::from_utf8_lossy(&buf)
    };
    // A leading BOM is dropped unless the caller keeps it (`ignoreBOM`, or
    // the middle of a stream).
    let keep_bom = args.get(2).is_true();
    let text = if keep_bom {
        &text
    } else {
        text.strip_prefix('\u{feff}').unwrap_or(&text)
    };
    match v8::String::new_from_utf8(scope, text.as_bytes(), v8::NewStringType::Normal) {
        Some(s) => rv.set(s.into()),
        None => throw_range_error(scope, "TextDecoder: result too long for a string"),
    }
}

/// `readBody()`: a promise for the next chunk of the streamed request body
/// (`null` at the end). The event loop resolves it when the chunk arrives.
fn op_read_body(
    scope: &mut v8::PinScope,
    _args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Some(resolver) = v8::PromiseResolver::new(scope) else {
        return;
    };
    let promise = resolver.get_promise(scope);
    rv.set(promise.into());
    let Some(st) = state(scope) else { return };
    let has_body = st.borrow().body.is_some();
    if !has_body {
        let null = v8::null(scope).into();
        resolver.resolve(scope, null);
        return;
    }
    if st.borrow().body_waiter.is_some() {
        throw_type_error(scope, "readBody: a read is already pending");
        return;
    }
    let g = v8::Global::new(scope, resolver);
    st.borrow_mut().body_waiter = Some(g);
}

fn op_response_headers_reset(
    scope: &mut v8::PinScope,
    _args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    if let Some(st) = state(scope) {
        let mut st = st.borrow_mut();
        st.out_headers.clear();
        st.out_header_bytes = 0;
    }
}

/// `responseHeader(name, value)`: one header line of the response being
/// finished. Both must be strings; names are HTTP tokens, values have no CR,
/// LF or NUL; the count and total size are capped before anything is copied.
fn op_response_header(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let (Ok(name), Ok(value)) = (
        v8::Local::<v8::String>::try_from(args.get(0)),
        v8::Local::<v8::String>::try_from(args.get(1)),
    ) else {
        throw_type_error(scope, "response header names and values must be strings");
        return;
    };
    let Some(st) = state(scope) else { return };
    let (count, bytes) = {
        let st = st.borrow();
        (st.out_headers.len(), st.out_header_bytes)
    };
    if count >= MAX_RESPONSE_HEADERS {
        throw_type_error(
            scope,
            &format!("the response has more than {MAX_RESPONSE_HEADERS} header lines (the limit)"),
        );
        return;
    }
    // UTF-16 length is a lower bound of the UTF-8 length: cap before copying,
    // then check the exact size of what was copied.
    let room = MAX_RESPONSE_HEADER_BYTES.saturating_sub(bytes);
    let too_large = |scope: &mut v8::PinScope| {
        let kib = MAX_RESPONSE_HEADER_BYTES >> 10;
        throw_type_error(
            scope,
            &format!("the response headers are larger than {kib} KiB (the limit)"),
        );
    };
    if name.length().saturating_add(value.length()) > room {
        too_large(scope);
        return;
    }
    let name = name.to_rust_string_lossy(scope);
    let value = value.to_rust_string_lossy(scope);
    let size = name.len() + value.len();
    if size > room {
        too_large(scope);
        return;
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        throw_type_error(scope, "invalid response header name");
        return;
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        throw_type_error(
            scope,
            "invalid response header value: it contains CR, LF or NUL",
        );
        return;
    }
    let mut st = st.borrow_mut();
    st.out_header_bytes += size;
    st.out_headers.push((name, value));
}
