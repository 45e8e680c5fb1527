//! Afinar's model worker, built by Trunk as a Web Worker (`data-type="worker"`): a thin entry
//! point over `afinar::worker`, which holds the model and answers the page's messages.

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    afinar::worker::start();
}
