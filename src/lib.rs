//! Afinar: MobileNetV2 transfer learning that runs on the user's machine.
//!
//! Built on `afinar-core` (the Burn-free inference core: [`tflite`], [`architecture`],
//! [`labels`], [`preprocess`], [`augment`] and the CPU kernels are its modules, re-exported
//! here), this
//! crate adds Burn: the network as trainable layers on any device, WebGPU included, and the
//! training of a head. The data's path, one module per stage:
//!
//! 1. model bytes → [`tflite`]: read and dequantize the weights of a `.tflite` file, checked
//!    against [`architecture`] (the one table of the network's shape), with its [`labels`];
//! 2. photo bytes → [`preprocess`]: decode, crop, resize to the 224×224 input, scale the pixels
//!    as the model file says ([`InputScaling`]);
//! 3. → [`model`]: MobileNetV2 in Burn, layer by layer ([`model::layers`]), on a [`device`]
//!    (on the CPU the frozen backbone runs on the core's [`model::kernels`]): pooled features,
//!    or the activations at a freeze boundary;
//! 4. → [`head`]: the user's classes on top of the features (and a fine-tuned top of the
//!    backbone), kept in a head file;
//! 5. → [`classify`]: probabilities and labelled top-K predictions, ImageNet's or the head's —
//!    the inference API the CLI and the worker call.
//!
//! [`train`] makes a head from the user's photos by a [`recipe`], on the plain photos and on
//! views of them varied by [`augment`]; [`host`] lets the browser's
//! event loop run during long work. Nothing here knows about the DOM or the terminal: the CLI
//! (`src/bin/afinar`), the browser worker (`crates/worker`) and the page (`crates/web`) are thin
//! layers over this library.

pub use afinar_core::{architecture, augment, labels, preprocess, publish, tflite};

pub mod classify;
pub mod device;
pub mod head;
pub mod host;
pub mod model;
pub mod project;
pub mod recipe;
pub mod train;

pub use architecture::FeatureStage;
pub use classify::{Arithmetic, Classifier, DeviceError, Embedding, Prediction, top_k};
pub use model::{MobileNetV2, MobileNetV2Config};
pub use preprocess::{ImageInputError, InputScaling, ModelInput};
pub use recipe::{FineTuneConfig, Recipe};
pub use tflite::{MobileNetV2Weights, ModelError};

pub use afinar_vocabulary::DEFAULT_MODEL_FILE;
