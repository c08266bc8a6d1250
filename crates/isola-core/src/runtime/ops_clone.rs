//! `structuredClone` (HTML "structured serialize/deserialize"), native:
//! V8's `ValueSerializer`/`ValueDeserializer` with isola's rules: the
//! runtime's own classes (platform objects to the spec, plain JS objects to
//! V8) are refused with a `DataCloneError`, except the serializable ones
//! (Blob, File) that the JS side copies (`cloneHost`); the serialized form
//! is capped ([`MAX_CLONE_BYTES`]) and the copy is made through the
//! tenant's counted allocator.

use crate::runtime::ops_web::throw;

/// Largest serialized form `structuredClone` copies (bytes). The object
/// graph is already bounded by the tenant's heap and ArrayBuffer limits; the
/// copy it makes counts in them again.
pub const MAX_CLONE_BYTES: usize = 64 << 20;

/// V8's serializer, refusing what cannot be cloned with an error named
/// `DataCloneError` (the JS side turns it into a `DOMException`). The
/// runtime's own classes (`URL`, `Request`, events, ...) are plain JS objects
/// to V8, which would copy them as empty objects: `is_platform` (a JS
/// predicate from the bootstrap) names them, and they are refused as the
/// spec says for platform objects that are not serializable.
///
/// Platform objects that are serializable (Blob, File) are copied by
/// `clone_host` (a JS function from the bootstrap returning the copy, or
/// `undefined` for objects that are not serializable): the copy is kept in
/// `copies` and its index written to the stream, where [`Decloner`] finds it.
struct Cloner {
    is_platform: Option<v8::Global<v8::Function>>,
    clone_host: Option<v8::Global<v8::Function>>,
    copies: Copies,
}

/// The copies of host objects made while serializing, by index (at most
/// [`MAX_HOST_COPIES`]).
type Copies = std::rc::Rc<std::cell::RefCell<Vec<v8::Global<v8::Object>>>>;

/// Most host objects (blobs) in one cloned value.
pub const MAX_HOST_COPIES: usize = 100_000;

fn data_clone_error<'s>(scope: &mut v8::PinScope<'s, '_>, message: v8::Local<'s, v8::String>) {
    let e = v8::Exception::error(scope, message);
    if let (Ok(obj), Some(k), Some(v)) = (
        v8::Local::<v8::Object>::try_from(e),
        v8::String::new(scope, "name"),
        v8::String::new(scope, "DataCloneError"),
    ) {
        obj.set(scope, k.into(), v.into());
    }
    scope.throw_exception(e);
}

impl v8::ValueSerializerImpl for Cloner {
    fn throw_data_clone_error<'s>(
        &self,
        scope: &mut v8::PinScope<'s, '_>,
        message: v8::Local<'s, v8::String>,
    ) {
        data_clone_error(scope, message);
    }

    fn has_custom_host_object(&self, _isolate: &v8::Isolate) -> bool {
        self.is_platform.is_some()
    }

    fn is_host_object<'s>(
        &self,
        scope: &mut v8::PinScope<'s, '_>,
        object: v8::Local<'s, v8::Object>,
    ) -> Option<bool> {
        let f = v8::Local::new(scope, self.is_platform.as_ref()?);
        let undef = v8::undefined(scope).into();
        let r = f.call(scope, undef, &[object.into()])?;
        Some(r.is_true())
    }

    fn write_host_object<'s>(
        &self,
        scope: &mut v8::PinScope<'s, '_>,
        object: v8::Local<'s, v8::Object>,
        value_serializer: &dyn v8::ValueSerializerHelper,
    ) -> Option<bool> {
        if let Some(f) = &self.clone_host {
            let f = v8::Local::new(scope, f);
            let undef = v8::undefined(scope).into();
            let copy = f.call(scope, undef, &[object.into()])?;
            if let Ok(copy) = v8::Local::<v8::Object>::try_from(copy) {
                let mut copies = self.copies.borrow_mut();
                if copies.len() < MAX_HOST_COPIES {
                    value_serializer.write_uint32(copies.len() as u32);
                    copies.push(v8::Global::new(scope, copy));
                    return Some(true);
                }
                drop(copies);
                if let Some(m) = v8::String::new(
                    scope,
                    &format!("the value holds more than {MAX_HOST_COPIES} Blobs."),
                ) {
                    data_clone_error(scope, m);
                }
                return None;
            }
        }
        let name = object.get_constructor_name().to_rust_string_lossy(scope);
        if let Some(m) = v8::String::new(scope, &format!("{name} object could not be cloned.")) {
            data_clone_error(scope, m);
        }
        None
    }
}

/// Reads back what [`Cloner`] wrote: host objects are its copies, by index.
struct Decloner {
    copies: Copies,
}

impl v8::ValueDeserializerImpl for Decloner {
    fn read_host_object<'s>(
        &self,
        scope: &mut v8::PinScope<'s, '_>,
        value_deserializer: &dyn v8::ValueDeserializerHelper,
    ) -> Option<v8::Local<'s, v8::Object>> {
        let mut index = 0u32;
        let copies = self.copies.borrow();
        let found = value_deserializer
            .read_uint32(&mut index)
            .then(|| copies.get(index as usize))
            .flatten();
        match found {
            Some(c) => Some(v8::Local::new(scope, c)),
            None => {
                drop(copies);
                throw(scope, false, "structuredClone: malformed host object");
                None
            }
        }
    }
}

/// `structuredClone(value, isPlatform, cloneHost)`: a deep copy through V8's
/// serializer (no transfer list; shared memory is refused, and so are the
/// platform objects `cloneHost` does not copy).
pub(crate) fn op_structured_clone(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    use v8::ValueDeserializerHelper as _;
    use v8::ValueSerializerHelper as _;
    let context = scope.get_current_context();
    let is_platform = v8::Local::<v8::Function>::try_from(args.get(1))
        .ok()
        .map(|f| v8::Global::new(scope, f));
    let clone_host = v8::Local::<v8::Function>::try_from(args.get(2))
        .ok()
        .map(|f| v8::Global::new(scope, f));
    let copies = Copies::default();
    let cloner = Cloner {
        is_platform,
        clone_host,
        copies: copies.clone(),
    };
    let bytes = {
        let ser = v8::ValueSerializer::new(scope, Box::new(cloner));
        ser.write_header();
        if ser.write_value(context, args.get(0)) != Some(true) {
            return; // the exception (or termination) is pending
        }
        ser.release()
    };
    if bytes.len() > MAX_CLONE_BYTES {
        if let Some(m) = v8::String::new(
            scope,
            &format!(
                "structuredClone: the value is larger than {MAX_CLONE_BYTES} bytes serialized"
            ),
        ) {
            data_clone_error(scope, m);
        }
        return;
    }
    let copy = {
        v8::tc_scope!(let tc, scope);
        let de = v8::ValueDeserializer::new(tc, Box::new(Decloner { copies }), &bytes);
        let copy = match de.read_header(context) {
            Some(true) => de.read_value(context).map(|v| v8::Global::new(tc, v)),
            _ => None,
        };
        if copy.is_none() && (tc.has_terminated() || tc.is_execution_terminating()) {
            tc.rethrow();
            return;
        }
        copy
    };
    match copy {
        Some(v) => rv.set(v8::Local::new(scope, v)),
        // V8 says only "Unable to deserialize cloned data": the copy did not
        // fit (its ArrayBuffers count in the tenant's budget).
        None => throw(
            scope,
            true,
            "structuredClone: the copy does not fit the tenant's memory limits",
        ),
    }
}
