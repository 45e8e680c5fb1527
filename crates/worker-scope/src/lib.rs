//! What Afinar's two Web Workers (the inference worker and the training worker it starts) share:
//! their global scope (posting replies, the clock, the size of their memory), the workers they
//! start ([`child`]), and the reply a training photo makes once prepared (by the inference
//! worker on the CPU, by the training worker on WebGPU).

#![cfg(target_arch = "wasm32")]

pub mod child;

use afinar_core::augment::TrainingPhoto;
use afinar_core::classify::Embedding;
use afinar_protocol::{PreparedPhoto, Reply};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

/// A JS exception as a message.
pub fn js_error(e: wasm_bindgen::JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// This worker's global scope, with panics reported: a panic leaves the wasm instance unusable,
/// so whoever started the worker is told at once ([`Reply::Crashed`]) and can start a fresh one
/// and resend what was pending.
pub fn global_scope() -> DedicatedWorkerGlobalScope {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let reporting = scope.clone();
    std::panic::set_hook(Box::new(move |info| {
        console_error_panic_hook::hook(info);
        post(&reporting, &Reply::Crashed(info.to_string()));
    }));
    scope
}

/// Hands every message to `on_message` from now on, for the worker's whole life, and tells whoever
/// started the worker that it listens ([`Reply::Started`]).
pub fn listen(scope: &DedicatedWorkerGlobalScope, on_message: impl Fn(MessageEvent) + 'static) {
    let handler = Closure::<dyn Fn(MessageEvent)>::new(on_message);
    scope.set_onmessage(Some(handler.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    handler.forget();
    post(scope, &Reply::Started);
}

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

/// Sends `values` as a bare `Float32Array` to the worker that started this one (the step
/// vectors of training workers that train together, [`afinar_protocol::Request::FollowStage`]).
pub fn post_floats(scope: &DedicatedWorkerGlobalScope, values: &[f32]) {
    let array = js_sys::Float32Array::from(values);
    if let Err(e) = scope.post_message_with_transfer(&array, &js_sys::Array::of1(&array.buffer())) {
        web_sys::console::error_1(&e);
    }
}

/// The values of a message that is a bare `Float32Array`; `None` for any other message.
pub fn floats(message: &wasm_bindgen::JsValue) -> Option<Vec<f32>> {
    message
        .dyn_ref::<js_sys::Float32Array>()
        .map(js_sys::Float32Array::to_vec)
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

/// One turn of the event loop: the messages that arrived during long synchronous work are
/// handled (queued) before this returns.
pub async fn next_task(scope: &DedicatedWorkerGlobalScope) {
    let turn = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope.set_timeout_with_callback(&resolve);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(turn).await;
}

/// Marks a moment of the worker's start-up in the browser's performance timeline (the
/// benchmarks read the marks to say where start-up time goes).
pub fn mark(scope: &DedicatedWorkerGlobalScope, name: &str) {
    if let Some(performance) = scope.performance() {
        let _ = performance.mark(name);
    }
}

/// ImageNet's predictions kept with a prepared training photo, for comparison.
pub const PREPARED_TOP_K: usize = 3;

/// A prepared training photo as the page stores it.
pub fn prepared_photo(embedding: Embedding, photo: &TrainingPhoto) -> PreparedPhoto {
    PreparedPhoto {
        features: embedding.pooled,
        boundary: embedding.boundary,
        augmented: embedding.augmented,
        augmented_boundary: embedding.augmented_boundary,
        imagenet: embedding.imagenet,
        sha256: photo.sha256.clone(),
        thumbnail_jpeg: photo.input.thumbnail_jpeg(),
    }
}
