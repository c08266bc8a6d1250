//! The web areas a tenant gets on first use (`js/web/*.js` in
//! [`LAZY_SOURCES`]), and `loadArea`, the op that compiles one in the
//! tenant's context when its first global is touched.
//!
//! They are not in the base snapshot: measured, keeping their compiled
//! functions there made every new tenant 0.5x a bare isolate slower (a
//! 1.0 MiB blob instead of 0.65 MiB) for code most tenants never run. The
//! first compile of each area in a process produces a V8 code cache kept in
//! memory; later tenants consume it, so loading an area costs deserializing
//! its top-level function, not parsing it.

use std::collections::HashMap;
use std::sync::Mutex;

/// Web areas installed on first use, not in every tenant: the snapshot holds
/// only their names, and the bootstrap defines each of the area's globals as
/// an accessor that loads the area (`loadArea`), runs it once, and then
/// becomes a plain data property. A lazy area runs after tenant code, so it must take
/// every built-in from the primordials (`P.intrinsic`), never from a global.
/// (resource name, source, the globals it defines on `web`).
/// An area with no globals (`crypto_algorithms`, `streams_more`, `wasm`) is
/// loaded by other runtime code through `web.__load`.
pub const LAZY_SOURCES: [(&str, &str, &[&str]); 13] = [
    (
        "isola:web/blob.js",
        include_str!("../../js/web/blob.js"),
        &["Blob", "File"],
    ),
    (
        "isola:web/fetch.js",
        include_str!("../../js/web/fetch.js"),
        &["fetch"],
    ),
    (
        "isola:web/formdata.js",
        include_str!("../../js/web/formdata.js"),
        &["FormData"],
    ),
    (
        "isola:web/message.js",
        include_str!("../../js/web/message.js"),
        &["MessageChannel", "MessagePort"],
    ),
    (
        "isola:web/urlpattern.js",
        include_str!("../../js/web/urlpattern.js"),
        &["URLPattern"],
    ),
    (
        "isola:web/streams.js",
        include_str!("../../js/web/streams.js"),
        &[
            "ReadableStream",
            "ReadableStreamDefaultReader",
            "ReadableStreamDefaultController",
            "ByteLengthQueuingStrategy",
            "CountQueuingStrategy",
        ],
    ),
    (
        "isola:web/streams_bytes.js",
        include_str!("../../js/web/streams_bytes.js"),
        &[
            "ReadableByteStreamController",
            "ReadableStreamBYOBReader",
            "ReadableStreamBYOBRequest",
        ],
    ),
    (
        "isola:web/streams_more.js",
        include_str!("../../js/web/streams_more.js"),
        &[],
    ),
    (
        "isola:web/streams_writable.js",
        include_str!("../../js/web/streams_writable.js"),
        &[
            "WritableStream",
            "WritableStreamDefaultWriter",
            "WritableStreamDefaultController",
        ],
    ),
    (
        "isola:web/streams_transform.js",
        include_str!("../../js/web/streams_transform.js"),
        &[
            "TransformStream",
            "TransformStreamDefaultController",
            "TextEncoderStream",
            "TextDecoderStream",
            "CompressionStream",
            "DecompressionStream",
        ],
    ),
    (
        "isola:web/crypto.js",
        include_str!("../../js/web/crypto.js"),
        &["Crypto", "CryptoKey", "SubtleCrypto", "crypto"],
    ),
    (
        "isola:web/crypto_algorithms.js",
        include_str!("../../js/web/crypto_algorithms.js"),
        &[],
    ),
    (
        "isola:web/wasm.js",
        include_str!("../../js/web/wasm.js"),
        &[],
    ),
];

/// Code caches of the areas, made by the first tenant of the process that
/// loaded each (same V8, flags and snapshot for every isolate of it).
static CODE_CACHE: Mutex<Option<HashMap<usize, Vec<u8>>>> = Mutex::new(None);

/// `loadArea(index)`: the function of lazy area `index` (a script that
/// evaluates to `(function area(ops, P, web) { ... })`), compiled in the
/// calling context.
pub(crate) fn op_load_area(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Some(index) = args.get(0).uint32_value(scope).map(|i| i as usize) else {
        return;
    };
    let Some((name, source, _)) = LAZY_SOURCES.get(index) else {
        if let Some(m) = v8::String::new(scope, "isola: no such lazy area") {
            let e = v8::Exception::error(scope, m);
            scope.throw_exception(e);
        }
        return;
    };
    let (Some(code), Some(resource)) =
        (v8::String::new(scope, source), v8::String::new(scope, name))
    else {
        return;
    };
    let origin = super::snapshot::internal_origin(scope, resource);
    let cached = CODE_CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|m| m.get(&index).cloned());
    let script = match &cached {
        Some(bytes) => {
            let data = v8::script_compiler::CachedData::new(bytes);
            let mut src =
                v8::script_compiler::Source::new_with_cached_data(code, Some(&origin), data);
            let s = v8::script_compiler::compile(
                scope,
                &mut src,
                v8::script_compiler::CompileOptions::ConsumeCodeCache,
                v8::script_compiler::NoCacheReason::NoReason,
            );
            if src.get_cached_data().is_some_and(|d| d.rejected()) {
                tracing::debug!(area = name, "lazy area code cache rejected");
            }
            s
        }
        None => v8::Script::compile(scope, code, Some(&origin)),
    };
    let Some(script) = script else { return };
    if cached.is_none() {
        if let Some(data) = script.get_unbound_script(scope).create_code_cache() {
            CODE_CACHE
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(HashMap::new)
                .insert(index, data.to_vec());
        }
    }
    if let Some(f) = script.run(scope) {
        rv.set(f);
    }
}
