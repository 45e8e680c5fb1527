//! Reads a MobileNetV2 1.0/224 `.tflite` file: [`reader`] parses it and, with [`dequantize`],
//! turns it into [`weights`], float32 tensors in Burn's layout; [`exported`] reads back a
//! classifier Afinar wrote. [`writer`] writes a classifier on it as a file ([`graph`] builds
//! the flatbuffer, [`cut`] copies the base file's frozen layers), with [`metadata`] for
//! MediaPipe. [`schema`] holds the TFLite schema's bindings they all use.

mod cut;
mod dequantize;
mod error;
mod exported;
mod graph;
mod integers;
mod load;
pub mod metadata;
pub mod quantized;
pub mod reader;
mod schema;
pub mod weights;
pub mod writer;

pub use exported::ExportedClassifier;
pub use quantized::{ActivationQuantization, QuantizedBlock, QuantizedConv, QuantizedMobileNetV2};
pub use weights::{ConvWeights, DenseWeights, MobileNetV2Weights, ModelError, file_labels};
