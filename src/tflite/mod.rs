//! Reads a MobileNetV2 1.0/224 `.tflite` file: [`reader`] parses and dequantizes it into
//! [`weights`], float32 tensors in Burn's layout.

pub mod reader;
pub mod weights;

pub use weights::{ConvWeights, DenseWeights, MobileNetV2Weights, ModelError};
