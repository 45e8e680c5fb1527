//! Messages between Afinar's page and its model worker: plain serializable data, no tensors and
//! no DOM. The page sends [`Request`]s; the worker answers with [`Reply`]s, in order.
//!
//! A crate of its own so the page can speak to the worker without linking the model code.

use serde::{Deserialize, Serialize};

/// File name of the recommended model, as the setup script puts it in place.
pub const DEFAULT_MODEL_FILE: &str = "mobilenet_v2_1.0_224_quant.tflite";

/// One labelled output of the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Output index (0 = background for the ImageNet files).
    pub index: usize,
    pub label: String,
    pub prob: f32,
}

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

/// Page → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Fetch the app's model from `url` (or take it from Cache Storage) and load it.
    LoadDefaultModel { url: String },
    /// Load a `.tflite` the user picked. On failure the current model stays.
    LoadModelFile {
        name: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Run the model on this backend from now on.
    UseBackend(Backend),
    /// Classify one photo (the file's bytes as read from disk).
    Classify {
        id: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

/// Where the model's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelSource {
    Network,
    /// The browser's Cache Storage, from an earlier visit.
    Cache,
    /// A file the user picked.
    File(String),
}

/// The model the worker now runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub source: ModelSource,
    pub num_classes: usize,
    pub sha256: String,
    pub size_bytes: u64,
    /// From the start of the request to the model ready on its device (warm-up included).
    pub load_ms: f64,
}

/// What the model says about one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Top-5, most likely first.
    pub top: Vec<Prediction>,
    /// Model time: input tensor to probabilities read back.
    pub model_ms: f64,
    /// Decoding and resizing the photo.
    pub decode_ms: f64,
    /// The 224×224 centre crop the model saw, as a JPEG, for the thumbnail.
    #[serde(with = "serde_bytes")]
    pub thumbnail_jpeg: Vec<u8>,
    pub backend: Backend,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The worker's wasm is running and will receive messages from now on.
    Started,
    /// Something is under way that the page should show, e.g. "Starting WebGPU…".
    Status(String),
    /// Model download progress (bytes); `total` is absent when the server does not say.
    Download {
        loaded: u64,
        total: Option<u64>,
    },
    ModelReady(ModelInfo),
    /// The default model could not be loaded; nothing can be classified until one is.
    ModelFailed(String),
    /// A user's model file was refused; the current model (if any) stays.
    ModelRefused {
        name: String,
        message: String,
    },
    /// The backend now in use, with the adapter's name where the browser tells it. `fallback`
    /// says why it is not the one asked for.
    BackendReady {
        backend: Backend,
        adapter: String,
        fallback: Option<String>,
    },
    /// The worker hit a bug and stopped; the page starts a new one.
    Crashed(String),
    /// The answer to [`Request::Classify`]; `Err` holds a message for people.
    Classified {
        id: u32,
        result: Result<Classification, String>,
    },
}
