//! A quantized `.tflite` file as its own 8-bit integers: the weights minus their zero points,
//! the int32 biases, and the scale and zero point of every activation the backbone and the
//! classifier produce, for the integer kernels to run the file's own arithmetic
//! ([`super::integers`] reads them).
//!
//! Activations are always read as uint8: an int8 tensor is the same real values with its
//! zero point moved by 128 (`q + 128`, `zero_point + 128`), and TFLite's integer arithmetic
//! only ever uses `q − zero_point`, so one set of kernels serves both kinds of file.

use crate::architecture::{Activation, ConvSpec};
use crate::preprocess::InputScaling;

/// How an 8-bit activation maps to real values, as uint8: `real = scale · (q − zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationQuantization {
    pub scale: f32,
    /// In `0..=255`.
    pub zero_point: i32,
}

impl ActivationQuantization {
    /// The real value of `q`.
    pub fn real(self, q: u8) -> f32 {
        self.scale * (i32::from(q) - self.zero_point) as f32
    }

    /// The nearest `q` of a real value, clamped to the 8-bit range.
    pub fn quantize(self, real: f32) -> u8 {
        let q = (real / self.scale).round_ties_even() + self.zero_point as f32;
        q.clamp(0.0, 255.0) as u8
    }

    /// The range of `q` a fused activation keeps, as TFLite computes it
    /// (`CalculateActivationRangeQuantized`): ReLU6 keeps the `q` of `0..=6`.
    pub fn range(self, activation: Activation) -> (u8, u8) {
        match activation {
            Activation::None => (0, 255),
            Activation::Relu6 => {
                let six = self.zero_point as f32 + (6.0 / self.scale).round();
                let top = six.clamp(0.0, 255.0) as u8;
                let bottom = self.zero_point.clamp(0, 255) as u8;
                (bottom, top.max(bottom))
            }
        }
    }
}

/// A convolution in the file's integers.
#[derive(Debug, Clone)]
pub struct QuantizedConv {
    pub spec: ConvSpec,
    /// The stored weights minus their zero point, in the file's layout: `[out, kh, kw, in]`
    /// for a regular convolution, `[kh, kw, channels]` for a depthwise one.
    pub weight: Vec<i16>,
    /// The weights' scale for each output channel.
    pub weight_scale: Vec<f32>,
    /// `[out]`, in steps of `input.scale · weight_scale[c]`.
    pub bias: Vec<i32>,
    pub input: ActivationQuantization,
    pub output: ActivationQuantization,
}

impl QuantizedConv {
    /// What multiplies an output channel's int32 sum into steps of the output:
    /// `input.scale · weight_scale[c] / output.scale`, in float32 as XNNPACK computes it.
    pub fn requantization_scales(&self) -> Vec<f32> {
        self.weight_scale
            .iter()
            .map(|w| self.input.scale * w / self.output.scale)
            .collect()
    }
}

/// An inverted-residual block in the file's integers.
#[derive(Debug, Clone)]
pub struct QuantizedBlock {
    pub expand: Option<QuantizedConv>,
    pub depthwise: QuantizedConv,
    pub project: QuantizedConv,
    /// The residual sum's quantization, for a block that adds its input to its output.
    pub residual: Option<ActivationQuantization>,
}

/// The backbone and the ImageNet classifier of a quantized MobileNetV2 file, in its integers.
#[derive(Debug, Clone)]
pub struct QuantizedMobileNetV2 {
    pub stem: QuantizedConv,
    pub blocks: Vec<QuantizedBlock>,
    pub last: QuantizedConv,
    /// The classifier: pooled features → logits, as a 1×1 convolution.
    pub classifier: QuantizedConv,
    /// How a photo's pixels become the graph's input (before any QUANTIZE of its own).
    pub input_scaling: InputScaling,
}

impl QuantizedMobileNetV2 {
    /// Each pixel value's `q` in the stem's input quantization (the identity for the uint8
    /// file): a photo's input is its pixels looked up here.
    pub fn pixel_table(&self) -> [u8; 256] {
        let s = self.input_scaling;
        std::array::from_fn(|p| {
            self.stem
                .input
                .quantize(s.scale * (p as f32 - s.zero_point))
        })
    }
}
