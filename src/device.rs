//! Which Burn device runs the model.

use burn::tensor::Device;

/// The CPU device: Burn's ndarray backend, the project's CPU fallback in the browser and the
/// reference backend of the native tests.
pub fn cpu() -> Device {
    // Burn 0.22 marks ndarray deprecated in favour of its new `flex` backend; the project keeps
    // ndarray (its wasm SIMD path is the one measured) until the benchmarks compare the two.
    #[allow(deprecated)]
    Device::ndarray()
}
