//! Which device runs the model in the browser: WebGPU when the browser offers a hardware
//! adapter, the CPU (Afinar's wasm SIMD kernels, Burn's ndarray backend for training) otherwise,
//! and a classifier warmed up on either.

use std::rc::Rc;

use afinar::{Classifier, MobileNetV2Weights, ModelInput};
use afinar_vocabulary::Backend;
use burn::tensor::Device;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::DedicatedWorkerGlobalScope;

/// What the page shows as the CPU backend's "adapter".
pub const CPU_ADAPTER: &str = "WebAssembly SIMD";

/// The CPU backend and its device.
pub fn cpu() -> (Backend, Device) {
    (Backend::Cpu, afinar::device::cpu())
}

/// Starts WebGPU (Burn's runtime is initialised once per worker: keep the device). Returns the
/// device and the adapter's name (empty where the browser hides it), or why it cannot start.
pub async fn start_webgpu(scope: &DedicatedWorkerGlobalScope) -> Result<(Device, String), String> {
    let has_gpu = js_sys::Reflect::get(&scope.navigator(), &"gpu".into())
        .map(|gpu| !gpu.is_undefined())
        .unwrap_or(false);
    if !has_gpu {
        return Err("This browser does not offer WebGPU".into());
    }
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => Ok((device, setup.adapter.get_info().name)),
        Err(e) => {
            let detail = e.to_string();
            Err(
                if detail.contains("No adapter") || detail.contains("no adapters") {
                    "This browser offers WebGPU but no adapter (graphics device) for it".to_string()
                } else {
                    format!("WebGPU could not start ({detail})")
                },
            )
        }
    }
}

/// What the browser's WebGPU adapter is, asked before Burn starts it.
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

/// Builds the classifier on `device` and runs one pass (which compiles WebGPU's shaders), so
/// that a device that cannot run it fails here rather than on the user's first photo.
pub async fn warmed_up(
    weights: &MobileNetV2Weights,
    labels: &[String],
    device: &Device,
) -> Result<Rc<Classifier>, String> {
    let classifier = Classifier::new(weights, labels.to_vec(), device);
    let grey = ModelInput::from_rgb(vec![128; afinar::preprocess::INPUT_BYTES])
        .map_err(|e| e.to_string())?;
    classifier
        .classify(&[grey], 1)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Rc::new(classifier))
}
