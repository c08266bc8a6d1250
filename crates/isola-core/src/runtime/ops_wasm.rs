//! The native half of WebAssembly for tenants that have it enabled
//! (`js/web/wasm.js`): what a module would cost, and the charges against the
//! tenant's ArrayBuffer budget.
//!
//! V8 allocates wasm memories through its page allocator, not through the
//! isolate's counted ArrayBuffer allocator, and keeps compiled code outside
//! the JS heap, so neither would count on its own. The JS side therefore
//! charges them here, up front: each memory a module defines (and each
//! `WebAssembly.Memory`) at its declared maximum, which V8 never lets it grow
//! past, and each module's compiled code at [`CODE_BYTES_PER_BYTE`] times its
//! size. A memory with no maximum, a shared (threads) memory or a 64-bit
//! memory is refused: it could not be bounded. Charges are released when
//! the objects are collected (a FinalizationRegistry in `wasm.js`).

use crate::runtime::ops;

/// Largest module a tenant may compile (bytes).
pub const MAX_MODULE_BYTES: usize = 64 << 20;
/// Compiled code charged per byte of module.
pub const CODE_BYTES_PER_BYTE: usize = 4;
/// Wasm memories one tenant may have alive at once (each reserves address space).
pub const MAX_MEMORIES: u32 = 64;

/// Whether the isolate's tenant has WebAssembly (an isolate slot).
pub(crate) struct WasmEnabled(pub bool);

/// V8 asks this before compiling any wasm: only for a tenant that has it.
pub(crate) unsafe extern "C" fn wasm_codegen(
    context: v8::Local<v8::Context>,
    _source: v8::Local<v8::String>,
) -> bool {
    // SAFETY: V8 calls this on the isolate's thread, within its execution,
    // with a live context of that isolate.
    v8::callback_scope!(unsafe scope, context);
    scope.get_slot::<WasmEnabled>().is_some_and(|w| w.0)
}

/// A `TypeError` with `msg`.
fn throw(scope: &mut v8::PinScope, msg: &str) {
    crate::runtime::ops_web::throw(scope, false, msg);
}

/// What a module costs: per memory it defines, the name it is exported
/// under and its maximum in bytes; and its compiled code (estimated).
#[derive(Debug, PartialEq)]
pub(crate) struct Cost {
    pub memories: Vec<(String, u64)>,
    pub code: u64,
}

/// What a module's memories and code cost, or why it cannot run here. A
/// memory the module defines must declare a maximum and be exported: its
/// charge is tied to the exported `WebAssembly.Memory` object, which V8 keeps
/// alive as long as anything (the instance, its functions, a table) can
/// still reach the memory.
pub(crate) fn inspect(bytes: &[u8]) -> Result<Cost, String> {
    if bytes.len() > MAX_MODULE_BYTES {
        return Err(format!(
            "a module of {} bytes; at most {MAX_MODULE_BYTES}",
            bytes.len()
        ));
    }
    let invalid = |e: wasmparser::BinaryReaderError| format!("invalid module: {e}");
    let mut imported = 0u32;
    let mut defined: Vec<u64> = Vec::new();
    let mut exports: Vec<(u32, String)> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            wasmparser::Payload::ImportSection(reader) => {
                for i in reader {
                    if let wasmparser::TypeRef::Memory(_) = i.map_err(invalid)?.ty {
                        imported += 1;
                    }
                }
            }
            wasmparser::Payload::MemorySection(reader) => {
                for m in reader {
                    let m = m.map_err(invalid)?;
                    if m.memory64 || m.shared {
                        return Err(
                            "64-bit and shared memories are not available (they could not be counted)"
                                .into(),
                        );
                    }
                    let Some(max) = m.maximum else {
                        return Err("a memory without a maximum size cannot be counted in the tenant's ArrayBuffer budget; declare one (e.g. --max-memory) within external_memory_bytes".into());
                    };
                    let page = 1u64 << m.page_size_log2.unwrap_or(16);
                    defined.push(max.saturating_mul(page));
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for e in reader {
                    let e = e.map_err(invalid)?;
                    if e.kind == wasmparser::ExternalKind::Memory {
                        exports.push((e.index, e.name.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    let mut memories = Vec::with_capacity(defined.len());
    for (i, max) in defined.into_iter().enumerate() {
        let index = imported + i as u32;
        let Some((_, name)) = exports.iter().find(|(x, _)| *x == index) else {
            return Err(format!("memory {index} is defined by the module but not exported; isola counts a memory through its export (export it, e.g. --export-memory)"));
        };
        memories.push((name.clone(), max));
    }
    let code = (bytes.len() as u64).saturating_mul(CODE_BYTES_PER_BYTE as u64);
    Ok(Cost { memories, code })
}

/// `wasmInspect(bytes)`: `[codeBytes, [[exportName, maxBytes], ...]]` for a
/// module (its own memories, compiled code estimated), or a `TypeError`
/// saying why it cannot run here.
pub(crate) fn op_wasm_inspect(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(0)) else {
        throw(scope, "WebAssembly: expected the module's bytes");
        return;
    };
    if view.byte_length() > MAX_MODULE_BYTES {
        throw(
            scope,
            &format!(
                "WebAssembly: a module of {} bytes; at most {MAX_MODULE_BYTES}",
                view.byte_length()
            ),
        );
        return;
    }
    let mut buf = vec![0u8; view.byte_length()];
    view.copy_contents(&mut buf);
    match inspect(&buf) {
        Ok(cost) => {
            let mut mems = Vec::with_capacity(cost.memories.len());
            for (name, max) in &cost.memories {
                let Some(n) = v8::String::new(scope, name) else {
                    return;
                };
                let m = v8::Number::new(scope, *max as f64);
                mems.push(v8::Array::new_with_elements(scope, &[n.into(), m.into()]).into());
            }
            let code = v8::Number::new(scope, cost.code as f64).into();
            let mems = v8::Array::new_with_elements(scope, &mems).into();
            rv.set(v8::Array::new_with_elements(scope, &[code, mems]).into());
        }
        Err(m) => throw(scope, &format!("WebAssembly: {m}")),
    }
}

/// `wasmReserve(bytes, memories)`: charges `bytes` and `memories` live
/// memories; `false` (nothing charged) when they do not fit.
pub(crate) fn op_wasm_reserve(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let (Some(bytes), Some(n)) = (
        args.get(0).number_value(scope),
        args.get(1).uint32_value(scope),
    ) else {
        return;
    };
    let Some(st) = ops::state(scope) else { return };
    let mut st = st.borrow_mut();
    let ok = bytes.is_finite()
        && bytes >= 0.0
        && bytes <= usize::MAX as f64
        && st
            .wasm_memories
            .checked_add(n)
            .is_some_and(|m| m <= MAX_MEMORIES)
        && st.ab.reserve(bytes as usize);
    if ok {
        st.wasm_memories += n;
    }
    rv.set(v8::Boolean::new(scope, ok).into());
}

/// `wasmRelease(bytes, memories)`: returns a charge made by `wasmReserve`.
pub(crate) fn op_wasm_release(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let (Some(bytes), Some(n)) = (
        args.get(0).number_value(scope),
        args.get(1).uint32_value(scope),
    ) else {
        return;
    };
    let Some(st) = ops::state(scope) else { return };
    let mut st = st.borrow_mut();
    if bytes.is_finite() && bytes >= 0.0 {
        st.ab.release(bytes as usize);
    }
    st.wasm_memories = st.wasm_memories.saturating_sub(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 64 << 10;

    /// A module with one memory of `min`/`max` pages, exported as "m" or not.
    fn module(limits: &[u8], export: bool) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.push(5); // memory section
        m.push((limits.len() + 1) as u8);
        m.push(1);
        m.extend_from_slice(limits);
        if export {
            m.extend_from_slice(&[7, 5, 1, 1, b'm', 2, 0]);
        }
        m
    }

    #[test]
    fn memories_are_charged_at_their_maximum_and_unbounded_ones_refused() {
        let cost = inspect(&module(&[1, 1, 4], true)).unwrap();
        assert_eq!(cost.memories, vec![("m".to_string(), 4 * PAGE)]);
        let e = inspect(&module(&[1, 1, 4], false)).unwrap_err();
        assert!(e.contains("not exported"), "{e}");
        let e = inspect(&module(&[0, 1], true)).unwrap_err();
        assert!(e.contains("without a maximum"), "{e}");
        assert!(inspect(&module(&[3, 1, 4], true))
            .unwrap_err()
            .contains("shared"));
        assert!(inspect(b"\0asm\x01\0\0\0\x05")
            .unwrap_err()
            .contains("invalid module"));
    }
}
