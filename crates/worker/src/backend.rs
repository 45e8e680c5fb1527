//! Which device runs the model in the browser: WebGPU when the browser offers a hardware
//! adapter, the CPU (Afinar's wasm SIMD kernels, Burn's ndarray backend for training) otherwise,
//! and a classifier warmed up on either.

use std::rc::Rc;

use afinar::{Classifier, MobileNetV2Weights, ModelInput};
use afinar_vocabulary::Backend;
use burn::tensor::Device;
use web_sys::DedicatedWorkerGlobalScope;

pub use afinar_vocabulary::CPU_ADAPTER;

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
