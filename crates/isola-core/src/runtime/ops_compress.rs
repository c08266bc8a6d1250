//! Native half of `CompressionStream` and `DecompressionStream`
//! (`js/web/streams_transform.js`): gzip, deflate (zlib) and deflate-raw
//! through `flate2` (its Rust backend, miniz_oxide), with the gzip header and
//! trailer handled here.
//!
//! A stream's (de)compressor lives in a per-tenant table ([`Codecs`], in the
//! op state) keyed by a small integer id: `codecNew` makes one (at most
//! [`MAX_CODECS`] live per tenant: a compressor holds about 300 KiB outside
//! the ArrayBuffer budget), `codecFree` drops it (JS frees an id when its
//! stream ends, errors or is collected).
//!
//! `codecPush(id, input, output, finish)` is one bounded step: it reads at
//! most [`MAX_CODEC_INPUT`] bytes of `input` (copied first) and writes at
//! most `output.length` (capped at [`MAX_CODEC_OUTPUT`]) bytes into
//! `output`, a `Uint8Array` the JS side allocated through the tenant's
//! counted allocator, and returns `[consumed, written, state]` (state 0: call
//! again only with more input, 1: more output is waiting, 2: the stream
//! ended). JS copies the written bytes into a new, exact buffer (counted
//! again), so the output of a decompression bomb fills the ArrayBuffer
//! budget chunk by chunk and fails there with a RangeError. One call is at
//! most 64 KiB compressed or 256 KiB inflated: well under a millisecond or
//! two of native work, which the CPU watchdog cannot interrupt.
//! Corrupt input, data after the end of the compressed stream and (with
//! `finish`) truncated input are TypeErrors, as the Compression Standard says.

use std::collections::HashMap;

use flate2::{Compress, Compression, Crc, Decompress, FlushCompress, FlushDecompress, Status};

use crate::runtime::ops::{state, throw_range_error, throw_type_error};

/// Most (de)compressors one tenant may have alive at once.
pub const MAX_CODECS: usize = 16;
/// Most input bytes one `codecPush` call reads.
pub const MAX_CODEC_INPUT: usize = 64 << 10;
/// Most output bytes one `codecPush` call writes.
pub const MAX_CODEC_OUTPUT: usize = 256 << 10;

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Gzip,
    Deflate,
    Raw,
}

/// Where a gzip header parse stands (RFC 1952, section 2.3).
#[derive(Clone, Copy, PartialEq)]
enum Header {
    Fixed(u8),
    ExtraLen(u8, u16),
    Extra(u16),
    Name,
    Comment,
    Hcrc(u8),
    Done,
}

const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

struct Inflater {
    format: Format,
    z: Decompress,
    header: Header,
    flags: u8,
    crc: Crc,
    /// Whether the deflate data ended; then the gzip trailer is read.
    inflated: bool,
    trailer: Vec<u8>,
    done: bool,
}

struct Deflater {
    format: Format,
    z: Compress,
    crc: Crc,
    /// Bytes to hand out before anything else (gzip header, then trailer).
    pending: Vec<u8>,
    finished: bool,
}

enum Codec {
    In(Box<Inflater>),
    Out(Box<Deflater>),
}

/// The live (de)compressors of one tenant.
#[derive(Default)]
pub(crate) struct Codecs {
    map: HashMap<u32, Codec>,
    next: u32,
}

fn format_of(n: i32) -> Option<Format> {
    match n {
        0 => Some(Format::Gzip),
        1 => Some(Format::Deflate),
        2 => Some(Format::Raw),
        _ => None,
    }
}

/// `codecNew(format, decompress)`: a new (de)compressor's id.
pub(crate) fn op_codec_new(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let f = if args.get(0).is_int32() {
        args.get(0).int32_value(scope).unwrap_or(-1)
    } else {
        -1
    };
    let Some(format) = format_of(f) else {
        throw_type_error(scope, "codecNew: unknown format");
        return;
    };
    let decompress = args.get(1).is_true();
    let Some(st) = state(scope) else { return };
    let mut st = st.borrow_mut();
    let codecs = &mut st.codecs;
    if codecs.map.len() >= MAX_CODECS {
        drop(st);
        throw_range_error(
            scope,
            &format!("At most {MAX_CODECS} compression streams may be open at once"),
        );
        return;
    }
    let codec = if decompress {
        Codec::In(Box::new(Inflater {
            format,
            z: Decompress::new(format == Format::Deflate),
            header: if format == Format::Gzip {
                Header::Fixed(0)
            } else {
                Header::Done
            },
            flags: 0,
            crc: Crc::new(),
            inflated: false,
            trailer: Vec::new(),
            done: false,
        }))
    } else {
        let pending = if format == Format::Gzip {
            // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]
        } else {
            Vec::new()
        };
        Codec::Out(Box::new(Deflater {
            format,
            z: Compress::new(Compression::default(), format == Format::Deflate),
            crc: Crc::new(),
            pending,
            finished: false,
        }))
    };
    let id = codecs.next;
    codecs.next = codecs.next.wrapping_add(1);
    codecs.map.insert(id, codec);
    rv.set(v8::Integer::new_from_unsigned(scope, id).into());
}

/// `codecFree(id)`: drops a (de)compressor (an unknown id does nothing).
pub(crate) fn op_codec_free(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let id = args.get(0).uint32_value(scope).unwrap_or(u32::MAX);
    if let Some(st) = state(scope) {
        st.borrow_mut().codecs.map.remove(&id);
    }
}

/// The result of one step: bytes consumed, bytes written, state.
struct Step {
    consumed: usize,
    written: usize,
    state: u32,
}

/// `codecPush(id, input, output, finish)`: one bounded step (module docs).
pub(crate) fn op_codec_push(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let id = args.get(0).uint32_value(scope).unwrap_or(u32::MAX);
    let Ok(input) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(1)) else {
        throw_type_error(scope, "codecPush: input must be a Uint8Array");
        return;
    };
    let Ok(output) = v8::Local::<v8::Uint8Array>::try_from(args.get(2)) else {
        throw_type_error(scope, "codecPush: output must be a Uint8Array");
        return;
    };
    let finish = args.get(3).is_true();
    let in_len = input.byte_length().min(MAX_CODEC_INPUT);
    let mut inbuf = vec![0u8; input.byte_length().min(MAX_CODEC_INPUT)];
    let copied = input.copy_contents(&mut inbuf);
    inbuf.truncate(copied.min(in_len));
    let out_len = output.byte_length().min(MAX_CODEC_OUTPUT);
    let mut outbuf = vec![0u8; out_len];
    // All input of this call seen (the caller may have more beyond the cap).
    let last = input.byte_length() <= MAX_CODEC_INPUT;
    let Some(st) = state(scope) else { return };
    let result = {
        let mut st = st.borrow_mut();
        match st.codecs.map.get_mut(&id) {
            Some(Codec::In(d)) => inflate(d, &inbuf, &mut outbuf, finish && last),
            Some(Codec::Out(c)) => deflate(c, &inbuf, &mut outbuf, finish && last),
            None => Err("the compression stream is closed".to_string()),
        }
    };
    let step = match result {
        Ok(s) => s,
        Err(msg) => {
            if let Some(st) = state(scope) {
                st.borrow_mut().codecs.map.remove(&id);
            }
            throw_type_error(scope, &msg);
            return;
        }
    };
    if step.written > 0 && !write_into(scope, output, &outbuf[..step.written]) {
        throw_type_error(scope, "codecPush: the output buffer is detached");
        return;
    }
    let vals = [
        v8::Number::new(scope, step.consumed as f64).into(),
        v8::Number::new(scope, step.written as f64).into(),
        v8::Integer::new_from_unsigned(scope, step.state).into(),
    ];
    rv.set(v8::Array::new_with_elements(scope, &vals).into());
}

/// Copies `bytes` to the start of `view` (false if it no longer has room).
fn write_into(scope: &mut v8::PinScope, view: v8::Local<v8::Uint8Array>, bytes: &[u8]) -> bool {
    let Some(store) = view.buffer(scope).map(|b| b.get_backing_store()) else {
        return false;
    };
    let Some(data) = store.data() else {
        return false;
    };
    let offset = view.byte_offset();
    if bytes.len() > view.byte_length()
        || offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > store.byte_length())
    {
        return false;
    }
    // SAFETY: `store` keeps the buffer's memory alive for this call; the
    // range `offset..offset + bytes.len()` lies within its byte length
    // (checked above), and no JS runs while the bytes are written.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            data.as_ptr().cast::<u8>().add(offset),
            bytes.len(),
        );
    }
    true
}

/// Moves bytes of `pending` into `out[*w..]`.
fn drain(pending: &mut Vec<u8>, out: &mut [u8], w: &mut usize) {
    let n = pending.len().min(out.len() - *w);
    out[*w..*w + n].copy_from_slice(&pending[..n]);
    pending.drain(..n);
    *w += n;
}

fn deflate(c: &mut Deflater, input: &[u8], out: &mut [u8], finish: bool) -> Result<Step, String> {
    let mut w = 0;
    let mut r = 0;
    drain(&mut c.pending, out, &mut w);
    while !c.finished && w < out.len() && c.pending.is_empty() {
        let flush = if finish {
            FlushCompress::Finish
        } else {
            FlushCompress::None
        };
        let (in0, out0) = (c.z.total_in(), c.z.total_out());
        let status =
            c.z.compress(&input[r..], &mut out[w..], flush)
                .map_err(|e| format!("Compression failed: {e}"))?;
        let used = (c.z.total_in() - in0) as usize;
        let made = (c.z.total_out() - out0) as usize;
        if c.format == Format::Gzip {
            c.crc.update(&input[r..r + used]);
        }
        r += used;
        w += made;
        if status == Status::StreamEnd {
            c.finished = true;
            if c.format == Format::Gzip {
                c.pending.extend_from_slice(&c.crc.sum().to_le_bytes());
                c.pending.extend_from_slice(&c.crc.amount().to_le_bytes());
            }
            drain(&mut c.pending, out, &mut w);
        } else if (used == 0 && made == 0) || (!finish && r == input.len()) {
            break;
        }
    }
    let state = if c.finished && c.pending.is_empty() {
        2
    } else if w == out.len() || !c.pending.is_empty() {
        1
    } else {
        0
    };
    Ok(Step {
        consumed: r,
        written: w,
        state,
    })
}

fn bad(what: &str) -> String {
    format!("The compressed data is invalid: {what}")
}

/// Reads gzip header bytes from `input`; returns how many it took.
fn gzip_header(d: &mut Inflater, input: &[u8]) -> Result<usize, String> {
    let mut r = 0;
    while d.header != Header::Done && r < input.len() {
        let b = input[r];
        r += 1;
        d.header = match d.header {
            Header::Fixed(n) => {
                match n {
                    0 if b != 0x1f => return Err(bad("not gzip data (wrong magic bytes)")),
                    1 if b != 0x8b => return Err(bad("not gzip data (wrong magic bytes)")),
                    2 if b != 8 => return Err(bad("unknown gzip compression method")),
                    3 => d.flags = b,
                    _ => {}
                }
                if n < 9 {
                    Header::Fixed(n + 1)
                } else {
                    next_field(d.flags, FEXTRA)
                }
            }
            Header::ExtraLen(0, _) => Header::ExtraLen(1, b as u16),
            Header::ExtraLen(_, lo) => {
                let len = lo | (b as u16) << 8;
                if len == 0 {
                    next_field(d.flags, FNAME)
                } else {
                    Header::Extra(len)
                }
            }
            Header::Extra(left) => {
                if left <= 1 {
                    next_field(d.flags, FNAME)
                } else {
                    Header::Extra(left - 1)
                }
            }
            Header::Name if b == 0 => next_field(d.flags, FCOMMENT),
            Header::Comment if b == 0 => next_field(d.flags, FHCRC),
            Header::Hcrc(0) => Header::Hcrc(1),
            Header::Hcrc(_) => Header::Done,
            h => h,
        };
    }
    Ok(r)
}

/// The header state for the first field present from `from` on, in the
/// order the fields come: extra, name, comment, header CRC.
fn next_field(flags: u8, from: u8) -> Header {
    const ORDER: [u8; 4] = [FEXTRA, FNAME, FCOMMENT, FHCRC];
    let start = ORDER.iter().position(|f| *f == from).unwrap_or(ORDER.len());
    for &f in &ORDER[start..] {
        if flags & f == 0 {
            continue;
        }
        return match f {
            FEXTRA => Header::ExtraLen(0, 0),
            FNAME => Header::Name,
            FCOMMENT => Header::Comment,
            _ => Header::Hcrc(0),
        };
    }
    Header::Done
}

fn inflate(d: &mut Inflater, input: &[u8], out: &mut [u8], finish: bool) -> Result<Step, String> {
    let mut r = 0;
    let mut w = 0;
    if d.header != Header::Done {
        r += gzip_header(d, input)?;
    }
    while d.header == Header::Done && !d.inflated && w < out.len() {
        let (in0, out0) = (d.z.total_in(), d.z.total_out());
        let status =
            d.z.decompress(&input[r..], &mut out[w..], FlushDecompress::None)
                .map_err(|e| bad(&e.to_string()))?;
        let used = (d.z.total_in() - in0) as usize;
        let made = (d.z.total_out() - out0) as usize;
        if d.format == Format::Gzip {
            d.crc.update(&out[w..w + made]);
        }
        r += used;
        w += made;
        if status == Status::StreamEnd {
            d.inflated = true;
            if d.format != Format::Gzip {
                d.done = true;
            }
        } else if used == 0 && made == 0 {
            break;
        }
    }
    if d.inflated && !d.done {
        let n = (8 - d.trailer.len()).min(input.len() - r);
        d.trailer.extend_from_slice(&input[r..r + n]);
        r += n;
        if d.trailer.len() == 8 {
            let crc = u32::from_le_bytes([d.trailer[0], d.trailer[1], d.trailer[2], d.trailer[3]]);
            let size = u32::from_le_bytes([d.trailer[4], d.trailer[5], d.trailer[6], d.trailer[7]]);
            if crc != d.crc.sum() {
                return Err(bad("the gzip checksum does not match"));
            }
            if size != d.crc.amount() {
                return Err(bad("the gzip length does not match"));
            }
            d.done = true;
        }
    }
    if d.done && r < input.len() {
        return Err("Unexpected data after the end of the compressed stream".into());
    }
    let more = !d.done && w == out.len();
    if finish && !d.done && !more && r == input.len() {
        return Err("The compressed data is truncated".into());
    }
    let state = if d.done {
        2
    } else if more {
        1
    } else {
        0
    };
    Ok(Step {
        consumed: r,
        written: w,
        state,
    })
}
