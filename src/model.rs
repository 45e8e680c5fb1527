//! MobileNetV2 1.0 in Burn, written once for every device.
//!
//! BatchNorm is already folded into the convolutions of the TFLite files, so every layer is a
//! conv with bias, followed by ReLU6 or nothing. Padding is TensorFlow's `SAME`, which Burn's
//! [`PaddingConfig2d::Same`] reproduces, including the asymmetric (0 top/left, 1 bottom/right)
//! padding of the five stride-2 layers.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::architecture::{Activation, BackboneSpec, BlockSpec, ConvSpec, FEATURE_DIM};
use crate::tflite::{ConvWeights, DenseWeights, MobileNetV2Weights};

/// Configuration of [`MobileNetV2`].
#[derive(Config, Debug)]
pub struct MobileNetV2Config {
    /// Outputs of the classifier. 1001 for the ImageNet TFLite files (index 0 = background).
    #[config(default = 1001)]
    pub num_classes: usize,
}

impl MobileNetV2Config {
    /// A MobileNetV2 with randomly initialized weights.
    pub fn init(&self, device: &Device) -> MobileNetV2 {
        let spec = BackboneSpec::mobilenet_v2();
        MobileNetV2 {
            stem: ConvLayer::init(&spec.stem, device),
            blocks: spec
                .blocks
                .iter()
                .map(|b| InvertedResidual::init(b, device))
                .collect(),
            last: ConvLayer::init(&spec.last, device),
            classifier: LinearConfig::new(FEATURE_DIM, self.num_classes).init(device),
        }
    }
}

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
    fn init(spec: &ConvSpec, device: &Device) -> Self {
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

    fn load(mut self, weights: &ConvWeights, device: &Device) -> Self {
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
    fn init(spec: &BlockSpec, device: &Device) -> Self {
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

/// MobileNetV2 1.0: backbone to pooled features, then a dense classifier.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    pub stem: ConvLayer,
    pub blocks: Vec<InvertedResidual>,
    /// The last 1×1 conv, 320 → 1280 channels.
    pub last: ConvLayer,
    /// The ImageNet classifier (a 1×1 conv in the file, the same as a dense layer after pooling).
    pub classifier: Linear,
}

impl MobileNetV2 {
    /// Builds the model on `device` from weights read out of a `.tflite` file.
    pub fn from_weights(weights: &MobileNetV2Weights, device: &Device) -> Self {
        let model = MobileNetV2Config::new()
            .with_num_classes(weights.num_classes())
            .init(device);
        let mut convs = weights.convs.iter();
        // `from_tflite` checked the 52 convs against the same architecture table, in this order.
        let mut next = |layer: ConvLayer| match convs.next() {
            Some(w) => layer.load(w, device),
            None => layer,
        };
        let stem = next(model.stem);
        let blocks = model
            .blocks
            .into_iter()
            .map(|block| InvertedResidual {
                expand: block.expand.map(&mut next),
                depthwise: next(block.depthwise),
                project: next(block.project),
                residual: block.residual,
            })
            .collect();
        let last = next(model.last);
        Self {
            stem,
            blocks,
            last,
            classifier: load_linear(model.classifier, &weights.classifier, device),
        }
    }

    /// Pooled features. `[N, 3, 224, 224]` (real-valued, see [`crate::InputScaling`]) → `[N, 1280]`.
    pub fn features(&self, input: Tensor<4>) -> Tensor<2> {
        let x = self
            .blocks
            .iter()
            .fold(self.stem.forward(input), |x, block| block.forward(x));
        global_average_pool(self.last.forward(x))
    }

    /// Classifier logits. `[N, 1280]` → `[N, num_classes]`.
    pub fn logits_from_features(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(features)
    }

    /// Logits for images. `[N, 3, 224, 224]` → `[N, num_classes]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        self.logits_from_features(self.features(input))
    }

    /// Activations at the freeze boundary: the output of every block but the last `unfrozen`.
    /// `[N, 3, 224, 224]` → `[N, C, H, W]` (see [`crate::architecture::boundary_shape`];
    /// `[N, 160, 7, 7]` for 2).
    pub fn boundary(&self, input: Tensor<4>, unfrozen: usize) -> Tensor<4> {
        let frozen = self.blocks.len().saturating_sub(unfrozen);
        self.blocks[..frozen]
            .iter()
            .fold(self.stem.forward(input), |x, block| block.forward(x))
    }

    /// A copy of the part above the freeze boundary: the last `unfrozen` blocks and the last
    /// conv.
    pub fn top(&self, unfrozen: usize) -> BackboneTop {
        let frozen = self.blocks.len().saturating_sub(unfrozen);
        BackboneTop {
            blocks: self.blocks[frozen..].to_vec(),
            last: self.last.clone(),
        }
    }

    /// This model with `top` (for example a fine-tuned one) in place of its last blocks and
    /// last conv.
    pub fn with_top(mut self, top: BackboneTop) -> Self {
        let frozen = self.blocks.len().saturating_sub(top.blocks.len());
        self.blocks.truncate(frozen);
        self.blocks.extend(top.blocks);
        self.last = top.last;
        self
    }
}

/// The top of the backbone: what the fine-tuning stage trains.
#[derive(Module, Debug)]
pub struct BackboneTop {
    pub blocks: Vec<InvertedResidual>,
    pub last: ConvLayer,
}

impl BackboneTop {
    /// A randomly initialized top of `unfrozen` blocks (weights are loaded into it).
    pub fn init(unfrozen: usize, device: &Device) -> Self {
        let spec = BackboneSpec::mobilenet_v2();
        let frozen = spec.blocks.len().saturating_sub(unfrozen);
        Self {
            blocks: spec.blocks[frozen..]
                .iter()
                .map(|b| InvertedResidual::init(b, device))
                .collect(),
            last: ConvLayer::init(&spec.last, device),
        }
    }

    /// Every convolution with a stable name (`blocks.0.expand`, …, `last`), for saving.
    pub fn named_convs(&self) -> Vec<(String, &ConvLayer)> {
        let mut convs = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            if let Some(expand) = &block.expand {
                convs.push((format!("blocks.{i}.expand"), expand));
            }
            convs.push((format!("blocks.{i}.depthwise"), &block.depthwise));
            convs.push((format!("blocks.{i}.project"), &block.project));
        }
        convs.push(("last".into(), &self.last));
        convs
    }

    /// [`Self::named_convs`], mutable, for loading.
    pub fn named_convs_mut(&mut self) -> Vec<(String, &mut ConvLayer)> {
        let mut convs = Vec::new();
        for (i, block) in self.blocks.iter_mut().enumerate() {
            if let Some(expand) = &mut block.expand {
                convs.push((format!("blocks.{i}.expand"), expand));
            }
            convs.push((format!("blocks.{i}.depthwise"), &mut block.depthwise));
            convs.push((format!("blocks.{i}.project"), &mut block.project));
        }
        convs.push(("last".into(), &mut self.last));
        convs
    }

    /// Pooled features from boundary activations. `[N, C, H, W]` → `[N, 1280]`.
    pub fn forward(&self, boundary: Tensor<4>) -> Tensor<2> {
        let x = self
            .blocks
            .iter()
            .fold(boundary, |x, block| block.forward(x));
        global_average_pool(self.last.forward(x))
    }

    /// Number of inverted-residual blocks it holds.
    pub fn unfrozen(&self) -> usize {
        self.blocks.len()
    }
}

fn load_linear(mut linear: Linear, weights: &DenseWeights, device: &Device) -> Linear {
    let shape = [weights.inputs, weights.outputs];
    linear.weight = Param::from_data(TensorData::new(weights.weight.clone(), shape), device);
    linear.bias = Some(Param::from_data(
        TensorData::new(weights.bias.clone(), [weights.outputs]),
        device,
    ));
    linear
}

/// `[N, C, H, W]` → `[N, C]`, the mean over all positions.
fn global_average_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}
