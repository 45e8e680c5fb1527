//! Afinar's training worker, built by Trunk as a Web Worker (`data-type="worker"`): a thin
//! dispatcher over the `afinar` library (Burn), speaking the page's plain messages
//! (`afinar-protocol`). The inference worker (`crates/inference-worker`) starts it when the user
//! trains, or when WebGPU runs the model, and relays the page's messages to it.
//!
//! [`worker`] dispatches requests; [`device`] holds the model on the device that runs it, which
//! [`backend`] starts; [`head`] keeps the user's trained head; [`project`] writes and reads
//! project files; [`publish`] writes the classifier as a web app of its own; [`team`] starts
//! the helpers a run's fine-tuning stage is shared with; [`convert`] turns the library's types
//! into messages.

#[cfg(target_arch = "wasm32")]
mod backend;
#[cfg(target_arch = "wasm32")]
mod convert;
#[cfg(target_arch = "wasm32")]
mod device;
#[cfg(target_arch = "wasm32")]
mod head;
#[cfg(target_arch = "wasm32")]
mod project;
#[cfg(target_arch = "wasm32")]
mod publish;
#[cfg(target_arch = "wasm32")]
mod team;
#[cfg(target_arch = "wasm32")]
mod worker;

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// The module's static constructors (Burn's and CubeCL's registries, filled through the
    /// `inventory` crate), synthesized by wasm-ld. While no code refers to it, wasm-ld wraps
    /// *every* export in a call to it, so each crossing from JS into wasm (each value
    /// serde-wasm-bindgen builds, each message) ran all the constructors again. Referring to it
    /// here removes the wrappers; [`start`] runs it once.
    fn __wasm_call_ctors();
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    // SAFETY: `__wasm_call_ctors` takes no arguments and only runs the constructors that the
    // linker collected, which register items in `inventory`'s lists. It must run exactly once,
    // before any code reads those lists: wasm-bindgen calls this start function once, right
    // after instantiation, before any other Rust code of the worker runs (the only export the
    // glue calls earlier, `__wbindgen_init_externref_table`, fills the externref table and reads
    // no registry), and nothing else calls `__wasm_call_ctors`.
    unsafe { __wasm_call_ctors() };
    worker::start();
}
