//! MobileNetV2 1.0: [`layers`] (convolutions and inverted-residual blocks in Burn),
//! [`mobilenet`] (the network built of them from a file's weights, and its top above the freeze
//! boundary); [`kernels`] are the core's CPU kernels, the fast path of the frozen backbone.

pub use afinar_core::kernels;
pub mod layers;
pub mod mobilenet;

pub use layers::{ConvLayer, InvertedResidual};
pub use mobilenet::{BackboneTop, MobileNetV2, MobileNetV2Config};
