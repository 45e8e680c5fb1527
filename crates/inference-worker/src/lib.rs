//! Afinar's inference worker, built by Trunk as the page's Web Worker (`data-type="worker"`): a
//! thin dispatcher over the Burn-free core (`afinar-core`), small enough to answer from the
//! first photo. It classifies on the CPU kernels itself, with the user's head in the same pass,
//! prepares training photos there too, and starts the training worker (`crates/worker`, Burn)
//! only when the page asks for what needs it (training, exports, projects) or WebGPU is to run
//! the model; it relays those messages.
//!
//! [`front`] dispatches the page's requests; [`model`] holds the model and head on the CPU
//! kernels; [`child`] starts a worker of its own (the training worker, relayed to and from, and
//! the helpers); [`pool`] prepares photos on helpers, as [`assign`] decides; [`download`]
//! fetches the model and keeps it in Cache Storage; [`adapter`] asks what WebGPU adapter the
//! browser has.

#[cfg(target_arch = "wasm32")]
mod adapter;
// Plain bookkeeping, tested natively.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod assign;
#[cfg(target_arch = "wasm32")]
mod download;
#[cfg(target_arch = "wasm32")]
mod front;
#[cfg(target_arch = "wasm32")]
mod message;
#[cfg(target_arch = "wasm32")]
mod model;
#[cfg(target_arch = "wasm32")]
mod pool;

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    front::start();
}
