//! Afinar: MobileNetV2 transfer learning that runs on the user's machine.
//!
//! The data's path, one module per stage: file bytes → [`tflite`] (read and dequantize the
//! weights) → [`model`] (MobileNetV2 in Burn) → pooled features → [`classify`] (ImageNet
//! probabilities and labels). Photos enter through [`preprocess`]. Nothing here knows about
//! the DOM or the terminal; the CLI and the browser app are thin layers over this library.

pub mod architecture;
pub mod classify;
pub mod device;
pub mod model;
pub mod preprocess;
pub mod tflite;

pub use classify::{Classifier, Prediction, top_k};
pub use model::{MobileNetV2, MobileNetV2Config};
pub use preprocess::{ImageInputError, ModelInput};
pub use tflite::{InputScaling, MobileNetV2Weights, ModelError};

/// File name of the recommended model, as the setup script puts it in place.
pub const DEFAULT_MODEL_FILE: &str = "mobilenet_v2_1.0_224_quant.tflite";
