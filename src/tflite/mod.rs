//! Reads a MobileNetV2 1.0/224 `.tflite` file: [`reader`] parses and dequantizes it into
//! [`weights`], float32 tensors in Burn's layout. [`writer`] writes a classifier on it back
//! as a float32 file, with [`metadata`] for MediaPipe.

mod cut;
pub mod metadata;
pub mod reader;
pub mod weights;
pub mod writer;

pub use reader::ExportedClassifier;
pub use weights::{ConvWeights, DenseWeights, MobileNetV2Weights, ModelError};
