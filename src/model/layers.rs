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

    /// The same convolution on channels-last activations, the layout the trainable top runs in,
    /// because there every layer it trains is a matrix product, which Burn's CPU backend
    /// computes and differentiates in its GEMM (it differentiates a grouped convolution with one
    /// channel per group in generic loops). 1×1 convs are one product over all N·H·W
    /// positions, 3×3 depthwise convs with stride 1 on small planes one per channel
    /// ([`Self::depthwise_as_products`]); the rest go through Burn's convolution.
    /// `[N, H, W, C_in]` → `[N, H / stride, W / stride, C_out]` (rounded up).
    pub fn forward_channels_last(&self, input: Tensor<4>) -> Tensor<4> {
        let [n, h, w, c] = input.dims();
        let x = if self.pointwise {
            let out = self.conv.weight.dims()[0];
            let weight = self.conv.weight.val().reshape([out, c]).transpose();
            let mut rows = input.reshape([n * h * w, c]).matmul(weight);
            if let Some(bias) = &self.conv.bias {
                rows = rows + bias.val().reshape([1, out]);
            }
            rows.reshape([n, h, w, out])
        } else if self.is_depthwise_3x3_stride_1() && h * w <= DEPTHWISE_PRODUCT_MAX_POSITIONS {
            self.depthwise_as_products(input)
        } else {
            let nchw = self.conv.forward(input.permute([0, 3, 1, 2]));
            nchw.permute([0, 2, 3, 1])
        };
        if self.relu6 { x.clamp(0.0, 6.0) } else { x }
    }

    fn is_depthwise_3x3_stride_1(&self) -> bool {
        let [out, per_group, kh, kw] = self.conv.weight.dims();
        per_group == 1
            && self.conv.groups == out
            && [kh, kw] == [3, 3]
            && self.conv.stride == [1, 1]
    }

    /// The 3×3 depthwise conv (stride 1, `SAME`) as one product per channel: a channel's plane,
    /// flattened to `HW` values, times the `[HW, HW]` matrix `Σ_k W[c, k] · S_k`, where `S_k` moves
    /// each position to its `k`-th neighbour (zero past the edge: the padding). The matrices are
    /// themselves a product, `W [C, 9] × S [9, HW·HW]`, so every gradient is a matrix product.
    /// `[N, H, W, C]` → `[N, H, W, C]`.
    fn depthwise_as_products(&self, input: Tensor<4>) -> Tensor<4> {
        let [n, h, w, c] = input.dims();
        let hw = h * w;
        let shifts = Tensor::<2>::from_data(
            TensorData::new(shift_matrices(h, w), [9, hw * hw]),
            &input.device(),
        );
        let per_channel = self
            .conv
            .weight
            .val()
            .reshape([c, 9])
            .matmul(shifts)
            .reshape([c, hw, hw]);
        let planes = input.reshape([n, hw, c]).permute([2, 0, 1]);
        let mut y = planes.matmul(per_channel).permute([1, 2, 0]);
        if let Some(bias) = &self.conv.bias {
            y = y + bias.val().reshape([1, 1, c]);
        }
        y.reshape([n, h, w, c])
    }
}

/// Planes up to this many positions (7×7 and smaller: the top of MobileNetV2) take
/// [`ConvLayer::depthwise_as_products`]; above it the per-channel matrices grow as `HW²`.
const DEPTHWISE_PRODUCT_MAX_POSITIONS: usize = 64;

/// `S [9, HW·HW]`, row `k = 3·dy + dx`: `S_k[q, p] = 1` where input position `q` is output
/// position `p` moved by `(dy − 1, dx − 1)` and inside the plane.
fn shift_matrices(h: usize, w: usize) -> Vec<f32> {
    let hw = h * w;
    let mut shifts = vec![0.0; 9 * hw * hw];
    for (k, shift) in shifts.chunks_exact_mut(hw * hw).enumerate() {
        let (dy, dx) = ((k / 3) as isize - 1, (k % 3) as isize - 1);
        for (y, x) in (0..h).flat_map(|y| (0..w).map(move |x| (y, x))) {
            let (qy, qx) = (y as isize + dy, x as isize + dx);
            if (0..h as isize).contains(&qy) && (0..w as isize).contains(&qx) {
                let q = qy as usize * w + qx as usize;
                shift[q * hw + y * w + x] = 1.0;
            }
        }
    }
    shifts
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

    /// [`Self::forward`] on channels-last activations ([`ConvLayer::forward_channels_last`]).
    /// `[N, H, W, C_in]` → `[N, H / stride, W / stride, C_out]`.
    pub fn forward_channels_last(&self, input: Tensor<4>) -> Tensor<4> {
        let x = match &self.expand {
            Some(expand) => expand.forward_channels_last(input.clone()),
            None => input.clone(),
        };
        let x = self
            .project
            .forward_channels_last(self.depthwise.forward_channels_last(x));
        if self.residual { x + input } else { x }
    }
}

/// `[N, C, H, W]` → `[N, C]`, the mean over all positions.
pub(crate) fn global_average_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::architecture::ConvKind;

    /// Output and the gradients of input, weights and bias of a loss that weighs every output
    /// differently, through the NCHW `forward` or, permuted, `forward_channels_last`.
    fn output_and_gradients(
        layer: &ConvLayer,
        input: &Tensor<4>,
        channels_last: bool,
    ) -> [TensorData; 4] {
        let x = input.clone().detach().require_grad();
        let y = if channels_last {
            let y = layer.forward_channels_last(x.clone().permute([0, 2, 3, 1]));
            y.permute([0, 3, 1, 2])
        } else {
            layer.forward(x.clone())
        };
        let loss_weights = Tensor::<4>::random(y.dims(), Distribution::Default, &y.device());
        let grads = (y.clone() * loss_weights).sum().backward();
        let bias = layer.conv.bias.as_ref().and_then(|b| b.grad(&grads));
        [
            Some(y.into_data()),
            x.grad(&grads).map(|g| g.into_data()),
            layer.conv.weight.grad(&grads).map(|g| g.into_data()),
            bias.map(|b| b.into_data()),
        ]
        .map(|data| data.expect("an output and three gradients"))
    }

    /// The channels-last path the trainable top runs on gives Burn's convolution's output and
    /// gradients, for each way it computes a layer: a 1×1 conv as one product, a small
    /// depthwise plane as per-channel products, a larger plane and a strided depthwise conv
    /// through Burn's convolution.
    #[test]
    fn channels_last_layers_match_the_convolution_forward_and_backward() {
        let device = crate::device::cpu().autodiff();
        let spec = |kind, in_channels, out_channels, kernel, stride| ConvSpec {
            kind,
            in_channels,
            out_channels,
            kernel,
            stride,
            // No clamp: its kinks would make tiny forward differences into gradient ones.
            activation: Activation::None,
        };
        for (spec, [h, w]) in [
            (spec(ConvKind::Depthwise, 6, 6, 3, 1), [5, 7]),
            (spec(ConvKind::Depthwise, 6, 6, 3, 1), [9, 9]),
            (spec(ConvKind::Depthwise, 6, 6, 3, 2), [7, 7]),
            (spec(ConvKind::Standard, 6, 10, 1, 1), [7, 7]),
        ] {
            let weight =
                Tensor::<4>::random(spec.weight_shape(), Distribution::Normal(0.0, 1.0), &device);
            let bias =
                Tensor::<1>::random([spec.out_channels], Distribution::Normal(0.0, 1.0), &device);
            let mut layer = ConvLayer::init(&spec, &device);
            layer.set_weights(weight.into_data(), bias.into_data(), &device);
            let input = Tensor::<4>::random([2, 6, h, w], Distribution::Normal(0.0, 2.0), &device);

            // The same loss weights for both paths.
            let seed = 17;
            device.seed(seed);
            let conv = output_and_gradients(&layer, &input, false);
            device.seed(seed);
            let channels_last = output_and_gradients(&layer, &input, true);
            for (what, (a, b)) in [
                "output",
                "input gradient",
                "weight gradient",
                "bias gradient",
            ]
            .iter()
            .zip(conv.iter().zip(&channels_last))
            {
                let values = |d: &TensorData| d.clone().convert::<f32>().try_to_vec::<f32>().ok();
                let close = values(a).zip(values(b)).is_some_and(|(a, b)| {
                    a.len() == b.len()
                        && a.iter()
                            .zip(&b)
                            .all(|(x, y)| (x - y).abs() <= 1e-3 * (1.0 + x.abs()))
                });
                assert!(close, "{what} differs for {spec:?} on {h}×{w}");
            }
        }
    }
}
