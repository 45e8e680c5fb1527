//! MobileNetV2 1.0: [`layers`] (convolutions and inverted-residual blocks in Burn),
//! [`mobilenet`] (the network built of them from a file's weights, and its top above the freeze
//! boundary) and [`kernels`] (the CPU's own fast path for the frozen backbone).

pub mod kernels;
pub mod layers;
pub mod mobilenet;

pub use layers::{ConvLayer, InvertedResidual};
pub use mobilenet::{BackboneTop, MobileNetV2, MobileNetV2Config};
