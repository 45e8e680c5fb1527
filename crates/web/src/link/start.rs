//! Where the page's inference worker comes from: the one `index.html`'s inline script started
//! before this page's wasm loaded (adopted once, with the events it sent meanwhile), or a new
//! one (at a restart, or where the inline script did not run).

use js_sys::Function;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

/// The loader script Trunk generates for the inference worker (`data-loader-shim`), which
/// starts the training worker itself when it is needed.
const WORKER_SCRIPT: &str = "./afinar-inference-worker_loader.js";
/// The `window` property where `index.html`'s inline script leaves the inference worker it
/// started before this page's wasm loaded: `{ worker, events }`, the events (messages and
/// errors) it sent meanwhile, in order.
const EARLY_WORKER: &str = "afinarEarlyWorker";

/// This page's build, as `scripts/post-build.mjs` wrote it into `index.html`.
pub fn page_build() -> Option<String> {
    web_sys::window()?
        .document()?
        .query_selector("meta[name=afinar-build]")
        .ok()??
        .get_attribute("content")
}

/// A new inference worker, told this page's build.
pub fn new_worker() -> Result<Worker, JsValue> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Classic);
    // The page's build after '#': the worker's loader checks that it is its own.
    let script = match page_build() {
        Some(build) => format!("{WORKER_SCRIPT}#{build}"),
        None => WORKER_SCRIPT.to_string(),
    };
    Worker::new_with_options(&script, &options)
}

/// The worker `index.html` started early, with the events it sent so far; `None` after the
/// first call, or where the inline script did not run (a page without it, a worker it could
/// not start).
pub fn take_early_worker() -> Option<(Worker, js_sys::Array)> {
    let window = web_sys::window()?;
    let key = JsValue::from_str(EARLY_WORKER);
    let early = js_sys::Reflect::get(&window, &key).ok()?;
    let _ = js_sys::Reflect::delete_property(&window, &key);
    let field = |name: &str| js_sys::Reflect::get(&early, &JsValue::from_str(name)).ok();
    let worker = field("worker")?.dyn_into::<Worker>().ok()?;
    let events = field("events")?.dyn_into::<js_sys::Array>().ok()?;
    Some((worker, events))
}

/// Hands `events` to the handlers that now listen to the adopted worker, in order: in a
/// microtask, so after the caller's own set-up and before any event the worker sends from now
/// on, and only while `current()` (no restart has replaced the worker).
pub fn replay(
    events: js_sys::Array,
    on_message: &Closure<dyn Fn(JsValue)>,
    on_error: &Closure<dyn Fn(JsValue)>,
    current: impl Fn() -> bool + 'static,
) {
    let on_message: Function = on_message.as_ref().clone().unchecked_into();
    let on_error: Function = on_error.as_ref().clone().unchecked_into();
    wasm_bindgen_futures::spawn_local(async move {
        for event in events {
            if !current() {
                break;
            }
            let handler = if event.is_instance_of::<MessageEvent>() {
                &on_message
            } else {
                &on_error
            };
            let _ = handler.call1(&JsValue::NULL, &event);
        }
    });
}
