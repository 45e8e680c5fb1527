use serde::{Deserialize, Serialize};

/// What the page shows as the CPU backend's "adapter".
pub const CPU_ADAPTER: &str = "WebAssembly SIMD";

/// Which Burn device runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// Burn's wgpu backend over the browser's WebGPU.
    WebGpu,
    /// Burn's ndarray backend on the CPU (wasm SIMD), the fallback.
    Cpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::WebGpu => "WebGPU",
            Backend::Cpu => "CPU",
        }
    }
}
