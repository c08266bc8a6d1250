//! Turning V8 exceptions, messages and stacks into isola's error types.
//!
//! Reading an exception must not run tenant code that can fail the reader:
//! the bootstrap's `errorRecord` reads `name`/`message`/`stack` inside its own
//! try/catch, and everything here falls back to V8's message text.

use crate::error::{Error, JsError, Location};

/// Most frames rendered in a kill report's stack.
const MAX_FRAMES: usize = 16;
/// Longest function or file name rendered per frame (bytes): names are
/// tenant-controlled (`Object.defineProperty(f, "name", ...)`, `//# sourceURL`).
const MAX_FRAME_NAME: usize = 512;

/// The JS stack of the currently running code, one `at fn (file:line:col)` per line.
pub(crate) fn current_stack(scope: &mut v8::PinScope<'_, '_>) -> Option<String> {
    let trace = v8::StackTrace::current_stack_trace(scope, MAX_FRAMES)?;
    let mut out = Vec::new();
    for i in 0..trace.get_frame_count() {
        let Some(frame) = trace.get_frame(scope, i) else {
            continue;
        };
        let file = frame
            .get_script_name_or_source_url(scope)
            .map(|s| crate::runtime::boundary::string_prefix(scope, s, MAX_FRAME_NAME))
            .unwrap_or_else(|| "<anonymous>".into());
        if file.starts_with(crate::runtime::snapshot::INTERNAL_PREFIX) {
            continue;
        }
        let func = frame
            .get_function_name(scope)
            .map(|s| crate::runtime::boundary::string_prefix(scope, s, MAX_FRAME_NAME))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "<anonymous>".into());
        out.push(format!(
            "    at {func} ({file}:{}:{})",
            frame.get_line_number(),
            frame.get_column()
        ));
    }
    (!out.is_empty()).then(|| out.join("\n"))
}

fn location(scope: &mut v8::PinScope<'_, '_>, msg: v8::Local<v8::Message>) -> Option<Location> {
    let file = msg
        .get_script_resource_name(scope)
        .filter(|v| v.is_string())
        .map(|v| v.to_rust_string_lossy(scope))?;
    let line = msg.get_line_number(scope)?;
    Some(Location {
        file,
        line,
        column: msg.get_start_column() + 1,
    })
}

/// A syntax error (from a failed compile) as `Error::Syntax`.
pub(crate) fn syntax_error(
    scope: &mut v8::PinScope<'_, '_>,
    file: &str,
    message: Option<v8::Local<v8::Message>>,
    exception: Option<v8::Local<v8::Value>>,
) -> Error {
    let text = message
        .map(|m| m.get(scope).to_rust_string_lossy(scope))
        .or_else(|| exception.map(|e| e.to_rust_string_lossy(scope)))
        .unwrap_or_else(|| "SyntaxError".into());
    let text = text.strip_prefix("Uncaught ").unwrap_or(&text).to_string();
    let loc = message
        .and_then(|m| location(scope, m))
        .unwrap_or(Location {
            file: file.to_string(),
            line: 1,
            column: 1,
        });
    Error::Syntax {
        location: loc,
        message: text,
    }
}

/// An exception value as structured data, using the bootstrap's `errorRecord`.
pub(crate) fn js_error(
    scope: &mut v8::PinScope<'_, '_>,
    internals: v8::Local<v8::Object>,
    exception: v8::Local<v8::Value>,
    message: Option<v8::Local<v8::Message>>,
) -> JsError {
    let loc = message.and_then(|m| location(scope, m));
    match error_record(scope, internals, exception) {
        Some((name, message, stack)) => JsError {
            name,
            message,
            stack: strip_internal_frames(&stack),
            location: loc,
        },
        None => JsError {
            name: "Error".into(),
            message: message
                .map(|m| m.get(scope).to_rust_string_lossy(scope))
                .unwrap_or_else(|| "exception".into()),
            stack: String::new(),
            location: loc,
        },
    }
}

/// Longest name, message or stack taken from an exception (bytes).
const MAX_ERROR_TEXT: usize = 64 << 10;

fn error_record(
    scope: &mut v8::PinScope<'_, '_>,
    internals: v8::Local<v8::Object>,
    exception: v8::Local<v8::Value>,
) -> Option<(String, String, String)> {
    let key = v8::String::new(scope, "errorRecord")?;
    let f = v8::Local::<v8::Function>::try_from(internals.get(scope, key.into())?).ok()?;
    v8::tc_scope!(let tc, scope);
    let undef = v8::undefined(tc).into();
    let rec = f.call(tc, undef, &[exception])?;
    let rec = v8::Local::<v8::Object>::try_from(rec).ok()?;
    let mut field = |k: &str| -> Option<String> {
        let key = v8::String::new(tc, k)?;
        let v = rec.get(tc, key.into())?;
        let s = v8::Local::<v8::String>::try_from(v).ok()?;
        Some(crate::runtime::boundary::string_prefix(
            tc,
            s,
            MAX_ERROR_TEXT,
        ))
    };
    Some((field("name")?, field("message")?, field("stack")?))
}

/// Drops stack lines of isola's own bootstrap: users see their frames only.
fn strip_internal_frames(stack: &str) -> String {
    let prefix = crate::runtime::snapshot::INTERNAL_PREFIX;
    let internal = format!("({prefix}");
    let bare = format!("at {prefix}");
    stack
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("at ") && (t.contains(&internal) || t.starts_with(&bare)))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
