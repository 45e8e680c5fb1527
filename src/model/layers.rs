//! The layers MobileNetV2 is built of, each written once for every device. Where the CPU
//! gets kernels of its own (fused, SIMD), they go in beside these layers, which keep Burn's
//! generic code as their reference and as the path for WebGPU and autodiff.
//!
//! BatchNorm is already folded into the convolutions of the TFLite files, so every layer is a
//! conv with bias, followed by ReLU6 or nothing. Padding is TensorFlow's `SAME`, which Burn's
//! [`PaddingConfig2d::Same`] reproduces, including the asymmetric (0 top/left, 1 bottom/right)
//! padding of the five stride-2 layers.

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

use crate::architecture::{Activation, BlockSpec, ConvSpec};
use crate::tflite::ConvWeights;

/// A convolution with bias and an optional fused ReLU6.
#[derive(Module, Debug)]
pub struct ConvLayer {
    pub conv: Conv2d,
    #[module(skip)]
    pub relu6: bool,
    /// A 1×1 conv with stride 1 over all channels: run as a matrix product, which Burn's CPU
    /// backend computes (and differentiates) far faster than its general convolution.
    #[module(skip)]
    pub pointwise: bool,
}

impl ConvLayer {
    pub(crate) fn init(spec: &ConvSpec, device: &Device) -> Self {
        let conv = Conv2dConfig::new([spec.in_channels, spec.out_channels], [spec.kernel; 2])
            .with_stride([spec.stride; 2])
            .with_groups(spec.groups())
            .with_padding(PaddingConfig2d::Same)
            .init(device);
        Self {
            conv,
            relu6: spec.activation == Activation::Relu6,
            pointwise: spec.kernel == 1 && spec.stride == 1 && spec.groups() == 1,
        }
    }

    pub(crate) fn load(mut self, weights: &ConvWeights, device: &Device) -> Self {
        let shape = weights.spec.weight_shape();
        self.conv.weight = Param::from_data(TensorData::new(weights.weight.clone(), shape), device);
        self.conv.bias = Some(Param::from_data(
            TensorData::new(weights.bias.clone(), [weights.bias.len()]),
            device,
        ));
        self
    }

    /// Replaces the weights (`[out, in / groups, k, k]`) and bias (`[out]`).
    pub fn set_weights(&mut self, weight: TensorData, bias: TensorData, device: &Device) {
        self.conv.weight = Param::from_data(weight, device);
        self.conv.bias = Some(Param::from_data(bias, device));
    }

    /// `[N, C_in, H, W]` → `[N, C_out, H / stride, W / stride]` (rounded up).
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = if self.pointwise {
            self.pointwise_forward(input)
        } else {
            self.conv.forward(input)
        };
        if self.relu6 { x.clamp(0.0, 6.0) } else { x }
    }

    /// `W [1, out, in] × x [N, in, H·W]` (+ bias): the same as the 1×1 convolution, with no
    /// layout change.
    fn pointwise_forward(&self, input: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = input.dims();
        let out = self.conv.weight.dims()[0];
        let weight = self.conv.weight.val().reshape([1, out, c]);
        let mut x = weight.matmul(input.reshape([n, c, h * w]));
        if let Some(bias) = &self.conv.bias {
            x = x + bias.val().reshape([1, out, 1]);
        }
        x.reshape([n, out, h, w])
    }
}

/// Inverted residual block: 1×1 expand (ReLU6), 3×3 depthwise (ReLU6), linear 1×1 project,
/// plus the input when the shapes allow.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub expand: Option<ConvLayer>,
    pub depthwise: ConvLayer,
    pub project: ConvLayer,
    #[module(skip)]
    pub residual: bool,
}

impl InvertedResidual {
    pub(crate) fn init(spec: &BlockSpec, device: &Device) -> Self {
        Self {
            expand: spec.expand.as_ref().map(|s| ConvLayer::init(s, device)),
            depthwise: ConvLayer::init(&spec.depthwise, device),
            project: ConvLayer::init(&spec.project, device),
            residual: spec.residual,
        }
    }

    /// `[N, C_in, H, W]` → `[N, C_out, H / stride, W / stride]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = match &self.expand {
            Some(expand) => expand.forward(input.clone()),
            None => input.clone(),
        };
        let x = self.project.forward(self.depthwise.forward(x));
        if self.residual { x + input } else { x }
    }
}

/// `[N, C, H, W]` → `[N, C]`, the mean over all positions.
pub(crate) fn global_average_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}
