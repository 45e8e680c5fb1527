//! Messages as JS values on their way between threads: their large byte arrays are handed over
//! (transferred) by `postMessage` instead of copied, which for a training set's rows saves
//! seconds and a second copy of a gigabyte in memory.

use js_sys::{Array, Float32Array, Object, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

/// Byte arrays smaller than this are copied: handing over costs more than it saves.
const MIN_HANDED_OVER_BYTES: u32 = 1 << 20;
/// How deep into a message's objects byte arrays are looked for (a request, its fields, an
/// optional field's value).
const DEPTH: u32 = 3;

/// The buffers of `message`'s byte (or float) arrays of 1 MiB or more that own their whole buffer, for
/// `postMessage`'s transfer list. The sender must not read them afterwards: they are gone
/// from its side once posted (a message made for sending by serde-wasm-bindgen is not).
pub fn transfer_list(message: &JsValue) -> Array {
    let list = Array::new();
    collect(message, DEPTH, &list);
    list
}

fn collect(value: &JsValue, depth: u32, list: &Array) {
    let view = match (
        value.dyn_ref::<Uint8Array>(),
        value.dyn_ref::<Float32Array>(),
    ) {
        (Some(bytes), _) => Some((bytes.buffer(), bytes.byte_offset(), bytes.byte_length())),
        (_, Some(floats)) => Some((floats.buffer(), floats.byte_offset(), floats.byte_length())),
        _ => None,
    };
    if let Some((buffer, offset, length)) = view {
        let whole = offset == 0 && length == buffer.byte_length();
        if whole && length >= MIN_HANDED_OVER_BYTES && !list.includes(&buffer, 0) {
            list.push(&buffer);
        }
        return;
    }
    // Plain objects and arrays; a long array (of names, of labels) holds no byte arrays.
    let plain = value.is_object() && !value.is_function() && !Array::is_array(value);
    if depth == 0 || !plain {
        return;
    }
    for field in Object::values(value.unchecked_ref()).iter() {
        collect(&field, depth - 1, list);
    }
}
