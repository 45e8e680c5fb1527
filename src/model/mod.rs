//! MobileNetV2 1.0 in Burn: [`layers`] (convolutions and inverted-residual blocks, the place
//! for the CPU's fast kernels) and [`mobilenet`] (the network built of them from a file's
//! weights, and its top above the freeze boundary).

pub mod layers;
pub mod mobilenet;

pub use layers::{ConvLayer, InvertedResidual};
pub use mobilenet::{BackboneTop, MobileNetV2, MobileNetV2Config};
