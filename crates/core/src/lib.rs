//! Afinar's inference core, without Burn: everything a photo needs on its way to a prediction
//! on the CPU, small enough for a browser worker that answers from the first photo.
//!
//! The data's path, one module per stage:
//!
//! 1. model bytes → [`tflite`]: read and dequantize the weights of a `.tflite` file, checked
//!    against [`architecture`] (the one table of the network's shape), with its [`labels`];
//!    [`tflite::writer`] writes a classifier back as a file;
//! 2. photo bytes → [`preprocess`]: decode, crop, resize to the 224×224 input, scale the pixels
//!    as the model file says;
//! 3. → [`kernels`]: the frozen backbone on Afinar's SIMD kernels, chosen at run time;
//! 4. → [`head`]: a head file's trained weights (the user's classes, and a fine-tuned top of
//!    the backbone), read and checked;
//! 5. → [`classify`]: ImageNet's and the head's probabilities and top-K, one backbone pass per
//!    photo; for training, a photo's features, boundary activations and those of its views
//!    varied by [`augment`];
//! 6. → [`publish`]: the model with a trained head as a web app of its own.
//!
//! Burn (training, the WebGPU path) lives in the `afinar` crate on top of this one.

pub mod architecture;
pub mod augment;
pub mod classify;
pub mod embedding;
pub mod head;
pub mod kernels;
pub mod labels;
pub mod preprocess;
pub mod publish;
pub mod tflite;

pub use afinar_vocabulary::Prediction;
pub use classify::{Arithmetic, CpuClassifier, Embedding, top_k};
pub use preprocess::{ImageInputError, InputScaling, ModelInput};
pub use tflite::{MobileNetV2Weights, ModelError};
