//! What the browser's WebGPU adapter is, asked without starting WebGPU: the inference worker
//! decides from it whether to start the training worker for WebGPU.

use wasm_bindgen::{JsCast, JsValue};
use web_sys::DedicatedWorkerGlobalScope;

/// What the browser's WebGPU adapter is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adapter {
    /// No WebGPU, or no adapter for it.
    Missing,
    /// A software renderer (named): WebGPU through the CPU, far slower than the CPU path.
    Software(String),
    Hardware,
}

/// Asks `navigator.gpu` for its default adapter and whether it is a software one: the
/// browser's `isFallbackAdapter`, or a name that says so (older browsers lack the flag).
pub async fn probe_adapter(scope: &DedicatedWorkerGlobalScope) -> Adapter {
    use js_sys::{Function, Promise, Reflect};
    let get = |target: &JsValue, key: &str| Reflect::get(target, &key.into()).ok();
    let Some(gpu) = get(&scope.navigator(), "gpu").filter(|g| g.is_object()) else {
        return Adapter::Missing;
    };
    let request = get(&gpu, "requestAdapter").and_then(|f| f.dyn_into::<Function>().ok());
    let Some(promise) = request.and_then(|f| f.call0(&gpu).ok()) else {
        return Adapter::Missing;
    };
    let adapter = match wasm_bindgen_futures::JsFuture::from(Promise::resolve(&promise)).await {
        Ok(adapter) if adapter.is_object() => adapter,
        _ => return Adapter::Missing,
    };
    let info = get(&adapter, "info").unwrap_or(JsValue::UNDEFINED);
    let text = |key: &str| {
        get(&info, key)
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let fallback = [&info, &adapter]
        .into_iter()
        .any(|o| get(o, "isFallbackAdapter").and_then(|v| v.as_bool()) == Some(true));
    let names = [text("architecture"), text("description"), text("vendor")];
    let software = names.iter().find(|n| is_software_renderer(n));
    match (software, fallback) {
        (Some(name), _) => Adapter::Software(name.clone()),
        (None, true) => Adapter::Software("a software renderer".into()),
        (None, false) => Adapter::Hardware,
    }
}

/// Whether an adapter's name is one of the software renderers browsers fall back to.
fn is_software_renderer(name: &str) -> bool {
    let name = name.to_lowercase();
    [
        "swiftshader",
        "llvmpipe",
        "lavapipe",
        "softpipe",
        "warp",
        "basic render",
    ]
    .iter()
    .any(|s| name.contains(s))
}
