//! Afinar: MobileNetV2 transfer learning that runs on the user's machine.
//!
//! The data's path, one module per stage: file bytes → [`tflite`] (read and dequantize the
//! weights) → [`model`] (MobileNetV2 in Burn) → pooled features → [`classify`] (ImageNet
//! probabilities and labels). Photos enter through [`preprocess`]. Nothing here knows about
//! the DOM or the terminal, except [`worker`], the browser's model worker (wasm only); the CLI,
//! the worker crate and the page are thin layers over this library.

pub mod architecture;
pub mod classify;
pub mod dataset;
pub mod device;
pub mod finetune;
pub mod head;
pub mod host;
pub mod model;
pub mod preprocess;
pub mod tflite;
pub mod train;
pub mod training_run;
#[cfg(target_arch = "wasm32")]
pub mod worker;

pub use classify::{Classifier, Prediction, top_k};
pub use model::{MobileNetV2, MobileNetV2Config};
pub use preprocess::{ImageInputError, ModelInput};
pub use tflite::{InputScaling, MobileNetV2Weights, ModelError};

pub use afinar_protocol as protocol;
pub use afinar_protocol::DEFAULT_MODEL_FILE;
