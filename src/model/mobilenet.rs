//! The whole network: stem, inverted-residual blocks, last conv, pooling, classifier; and the
//! split at the freeze boundary that fine-tuning trains above.

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::layers::{ConvLayer, InvertedResidual, global_average_pool};
use crate::architecture::{BackboneSpec, FEATURE_DIM, boundary_shape};
use crate::tflite::{DenseWeights, MobileNetV2Weights};

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

    /// Every convolution with its stable name in the head file (`blocks.0.expand`, …, `last`:
    /// the core's [`afinar_core::head::top_convs`], which reads them back), for saving.
    pub fn named_convs(&self) -> Vec<(String, &ConvLayer)> {
        let mut convs = Vec::new();
        for block in &self.blocks {
            convs.extend(&block.expand);
            convs.extend([&block.depthwise, &block.project]);
        }
        convs.push(&self.last);
        let names = afinar_core::head::top_convs(self.unfrozen());
        names.into_iter().map(|(name, _)| name).zip(convs).collect()
    }

    /// Every convolution in execution order, mutable, for loading.
    pub fn convs_mut(&mut self) -> Vec<&mut ConvLayer> {
        let mut convs = Vec::new();
        for block in &mut self.blocks {
            convs.extend(&mut block.expand);
            convs.extend([&mut block.depthwise, &mut block.project]);
        }
        convs.push(&mut self.last);
        convs
    }

    /// Pooled features from boundary activations. `[N, C, H, W]` → `[N, 1280]`.
    ///
    /// Runs channels-last ([`ConvLayer::forward_channels_last`]): this is the part that trains.
    pub fn forward(&self, boundary: Tensor<4>) -> Tensor<2> {
        let x = self
            .blocks
            .iter()
            .fold(boundary.permute([0, 2, 3, 1]), |x, block| {
                block.forward_channels_last(x)
            });
        let x = self.last.forward_channels_last(x);
        let [n, h, w, c] = x.dims();
        x.reshape([n, h * w, c]).mean_dim(1).reshape([n, c])
    }

    /// Pooled features from flattened boundary activations. `[N, C·H·W]` → `[N, 1280]`.
    pub fn forward_rows(&self, rows: Tensor<2>) -> Tensor<2> {
        let [c, h, w] = boundary_shape(self.unfrozen());
        let n = rows.dims()[0];
        self.forward(rows.reshape([n, c, h, w]))
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
