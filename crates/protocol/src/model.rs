//! The model the worker runs, what it says about a photo, and the classifier it exports.

use afinar_vocabulary::{Backend, Prediction};
use serde::{Deserialize, Serialize};

/// A classifier written as a `.tflite` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedModel {
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// The classifier in use as a web app of its own, in both forms (`afinar_core::publish`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    /// The folder form, zipped: for any static host.
    #[serde(with = "serde_bytes")]
    pub zip: Vec<u8>,
    /// The single-file form: one `.html` that works opened from the disk.
    #[serde(with = "serde_bytes")]
    pub single_file: Vec<u8>,
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
    /// The arithmetic the frozen backbone runs in, in words ("the file's 8-bit integers",
    /// "float32"), for the page's diagnostics.
    pub arithmetic: String,
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
    /// Top predictions in the user's classes, when a trained head is in use.
    pub custom: Option<Vec<Prediction>>,
    /// The worker's wasm memory afterwards (it only grows: the peak so far).
    #[serde(default)]
    pub wasm_memory_bytes: u64,
}
