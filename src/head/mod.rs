//! The user's classes on top of the backbone: [`model`] (the head and the trained parts),
//! [`file`] (saving and loading them with their metadata) and [`export`] (the whole
//! classifier as a `.tflite`).

pub mod export;
pub mod file;
pub mod model;

pub use file::{HeadFileError, HeadMetadata, load, save};
pub use model::{Head, HeadConfig, TrainedParts};
