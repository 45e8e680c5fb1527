//! Reading a message without decoding it all (a photo's bytes stay in JS until needed).

use wasm_bindgen::prelude::*;

/// The variant of a message as serde writes it: a unit variant is a string, any other an
/// object with the variant's name as its one key.
pub fn variant(message: &JsValue) -> Option<String> {
    if let Some(name) = message.as_string() {
        return Some(name);
    }
    let object = message.dyn_ref::<js_sys::Object>()?;
    js_sys::Object::keys(object).get(0).as_string()
}
