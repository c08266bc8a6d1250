//! `TextDecoder` for every encoding of the WHATWG Encoding Standard besides
//! UTF-8 (which has its own fast path in `ops.rs`): labels, the legacy
//! single- and multi-byte encodings and UTF-16, through `encoding_rs`.
//!
//! A one-shot `decode()` keeps no state. A decoder in streaming mode
//! (`{stream: true}`) keeps `encoding_rs`'s decoder here, in the isolate's
//! table, at most [`MAX_DECODERS`] at once; it is dropped when the stream
//! ends (a call without `stream`), or when the `TextDecoder` is collected.
//! Inputs are capped at [`crate::runtime::ops::MAX_CODEC_INPUT`] bytes.

use std::collections::HashMap;

use encoding_rs::{DecoderResult, Encoding};

use crate::runtime::ops::{self, MAX_CODEC_INPUT};
use crate::runtime::ops_web::throw;

/// Streaming legacy decoders one tenant may have at once.
pub const MAX_DECODERS: usize = 256;

/// The streaming decoders of one isolate.
#[derive(Default)]
pub(crate) struct Decoders {
    map: HashMap<u32, encoding_rs::Decoder>,
    next: u32,
}

/// `encodingForLabel(label)`: the encoding's name, lower-cased (as
/// `TextDecoder.encoding` shows it), or `null` for an unknown label or the
/// replacement encoding (which `TextDecoder` refuses).
pub(crate) fn op_encoding_for_label(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Ok(label) = v8::Local::<v8::String>::try_from(args.get(0)) else {
        return;
    };
    if label.length() > 64 {
        rv.set(v8::null(scope).into());
        return;
    }
    let label = label.to_rust_string_lossy(scope);
    match Encoding::for_label(label.as_bytes()) {
        Some(e) if e != encoding_rs::REPLACEMENT => {
            if let Some(s) = v8::String::new(scope, &e.name().to_ascii_lowercase()) {
                rv.set(s.into());
            }
        }
        _ => rv.set(v8::null(scope).into()),
    }
}

fn bytes(scope: &mut v8::PinScope, v: v8::Local<v8::Value>) -> Option<Vec<u8>> {
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(v) else {
        throw(scope, false, "TextDecoder: expected bytes");
        return None;
    };
    if view.byte_length() > MAX_CODEC_INPUT {
        throw(
            scope,
            true,
            &format!("TextDecoder: input larger than {MAX_CODEC_INPUT} bytes"),
        );
        return None;
    }
    let mut buf = vec![0u8; view.byte_length()];
    view.copy_contents(&mut buf);
    Some(buf)
}

/// Runs `input` through `decoder`; `Err` in fatal mode on malformed input.
fn run(
    decoder: &mut encoding_rs::Decoder,
    input: &[u8],
    last: bool,
    fatal: bool,
) -> Result<String, String> {
    let cap = decoder
        .max_utf8_buffer_length(input.len())
        .ok_or("TextDecoder: input too large")?;
    let mut out = String::with_capacity(cap);
    if fatal {
        let (result, read) = decoder.decode_to_string_without_replacement(input, &mut out, last);
        match result {
            DecoderResult::InputEmpty => Ok(out),
            DecoderResult::Malformed(_, _) => Err(format!(
                "TextDecoder: the input is not valid {} (at byte {read})",
                decoder.encoding().name()
            )),
            DecoderResult::OutputFull => Err("TextDecoder: output buffer too small".into()),
        }
    } else {
        let (_, _, _) = decoder.decode_to_string(input, &mut out, last);
        Ok(out)
    }
}

fn new_decoder(name: &str, ignore_bom: bool) -> Option<encoding_rs::Decoder> {
    let e = Encoding::for_label(name.as_bytes())?;
    Some(if ignore_bom {
        e.new_decoder_without_bom_handling()
    } else {
        e.new_decoder_with_bom_removal()
    })
}

/// `legacyDecode(name, bytes, fatal, ignoreBOM, id, stream)`: decodes with
/// encoding `name`, continuing the stream `id` (0: none). With `stream` the
/// state is kept, under `id` or a new id, returned as `[text, id]`; without,
/// `[text, 0]` and the state is dropped (an error drops it too).
pub(crate) fn op_legacy_decode(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Ok(name) = v8::Local::<v8::String>::try_from(args.get(0)) else {
        return;
    };
    let name = name.to_rust_string_lossy(scope);
    let Some(input) = bytes(scope, args.get(1)) else {
        return;
    };
    let fatal = args.get(2).is_true();
    let ignore_bom = args.get(3).is_true();
    let id = args.get(4).uint32_value(scope).unwrap_or(0);
    let stream = args.get(5).is_true();
    let Some(st) = ops::state(scope) else { return };
    let mut decoder = match st.borrow_mut().decoders.map.remove(&id) {
        Some(d) => d,
        None => match new_decoder(&name, ignore_bom) {
            Some(d) => d,
            None => {
                throw(
                    scope,
                    true,
                    &format!("TextDecoder: unsupported encoding {name}"),
                );
                return;
            }
        },
    };
    let text = match run(&mut decoder, &input, !stream, fatal) {
        Ok(t) => t,
        Err(m) => {
            throw(scope, false, &m);
            return;
        }
    };
    let mut kept = 0u32;
    if stream {
        let mut s = st.borrow_mut();
        if s.decoders.map.len() >= MAX_DECODERS {
            drop(s);
            throw(
                scope,
                true,
                &format!("TextDecoder: at most {MAX_DECODERS} decoders may be streaming at once"),
            );
            return;
        }
        kept = if id != 0 {
            id
        } else {
            s.decoders.next = s.decoders.next.wrapping_add(1).max(1);
            s.decoders.next
        };
        s.decoders.map.insert(kept, decoder);
    }
    let Some(text) = v8::String::new_from_utf8(scope, text.as_bytes(), v8::NewStringType::Normal)
    else {
        throw(scope, true, "TextDecoder: result too long for a string");
        return;
    };
    let id = v8::Integer::new_from_unsigned(scope, kept);
    rv.set(v8::Array::new_with_elements(scope, &[text.into(), id.into()]).into());
}

/// `legacyDecoderFree(id)`: drops a streaming decoder's state.
pub(crate) fn op_legacy_decoder_free(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let id = args.get(0).uint32_value(scope).unwrap_or(0);
    if let Some(st) = ops::state(scope) {
        st.borrow_mut().decoders.map.remove(&id);
    }
}
