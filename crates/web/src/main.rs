//! Afinar's page: the browser app's UI (Leptos, client-side rendered), built by Trunk.
//!
//! It knows photos, labels and messages, never tensors: all model work happens in the model
//! worker (crate `afinar-worker`) behind [`link::WorkerLink`]. This crate does not link Burn, so
//! the page's wasm stays small and starts fast.

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod camera;
#[cfg(target_arch = "wasm32")]
mod folders;
#[cfg(target_arch = "wasm32")]
mod link;
#[cfg(target_arch = "wasm32")]
mod notice;
#[cfg(target_arch = "wasm32")]
mod photos;
#[cfg(target_arch = "wasm32")]
mod preferences;
#[cfg(target_arch = "wasm32")]
mod store;
#[cfg(target_arch = "wasm32")]
mod tabs;
#[cfg(target_arch = "wasm32")]
mod training;

#[cfg(target_arch = "wasm32")]
fn main() {
    app::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "afinar-web is the browser app's page; build it with `trunk build` or run `scripts/run`"
    );
}
