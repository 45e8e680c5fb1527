//! What Afinar's two Web Workers (the inference worker and the training worker it starts) share
//! of their global scope: posting replies, the clock, the size of their memory.

#![cfg(target_arch = "wasm32")]

use afinar_protocol::Reply;
use wasm_bindgen::JsCast;
use web_sys::DedicatedWorkerGlobalScope;

/// Sends `reply` to the page (a reply that cannot be sent is logged: nobody else would hear).
pub fn post(scope: &DedicatedWorkerGlobalScope, reply: &Reply) {
    match serde_wasm_bindgen::to_value(reply) {
        Ok(value) => {
            if let Err(e) = scope.post_message(&value) {
                web_sys::console::error_1(&e);
            }
        }
        Err(e) => web_sys::console::error_1(&format!("afinar worker: {e}").into()),
    }
}

/// Size of this worker's wasm memory: it never shrinks, so this is the peak so far.
pub fn wasm_memory_bytes() -> u64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| {
            m.buffer()
                .unchecked_into::<js_sys::ArrayBuffer>()
                .byte_length() as u64
        })
        .unwrap_or(0)
}

pub fn now_ms(scope: &DedicatedWorkerGlobalScope) -> f64 {
    scope.performance().map(|p| p.now()).unwrap_or(0.0)
}

/// Marks a moment of the worker's start-up in the browser's performance timeline (the
/// benchmarks read the marks to say where start-up time goes).
pub fn mark(scope: &DedicatedWorkerGlobalScope, name: &str) {
    if let Some(performance) = scope.performance() {
        let _ = performance.mark(name);
    }
}
