//! The shape of MobileNetV2 1.0/224: what every convolution must look like.
//!
//! Both the TFLite reader (to check a file layer by layer) and the Burn model (to build the
//! layers) read this one table, so they cannot disagree.

/// Side of the square input image, in pixels.
pub const INPUT_SIZE: usize = 224;
/// Channels of the pooled feature vector (the output of the last 1×1 conv).
pub const FEATURE_DIM: usize = 1280;
/// Number of backbone convolutions (stem, 17 inverted-residual blocks, last 1×1 conv).
pub const BACKBONE_CONVS: usize = 52;
/// Number of residual additions in the backbone.
pub const RESIDUAL_ADDS: usize = 10;

/// `(expansion t, output channels c, repeats n, first stride s)` for each block group,
/// from table 2 of the MobileNetV2 paper (width multiplier 1.0).
const BLOCK_GROUPS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];
const STEM_CHANNELS: usize = 32;

/// Regular convolution or depthwise (one filter per channel, depth multiplier 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    Standard,
    Depthwise,
}

/// Activation fused after a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu6,
}

/// What one convolution of the backbone looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    pub kind: ConvKind,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub activation: Activation,
}

impl ConvSpec {
    /// Weight shape in Burn's layout `[out, in / groups, kh, kw]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        let per_group = match self.kind {
            ConvKind::Standard => self.in_channels,
            ConvKind::Depthwise => 1,
        };
        [self.out_channels, per_group, self.kernel, self.kernel]
    }

    /// Number of groups of the grouped convolution.
    pub fn groups(&self) -> usize {
        match self.kind {
            ConvKind::Standard => 1,
            ConvKind::Depthwise => self.in_channels,
        }
    }
}

/// One inverted-residual block: optional 1×1 expand, 3×3 depthwise, linear 1×1 project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    pub expand: Option<ConvSpec>,
    pub depthwise: ConvSpec,
    pub project: ConvSpec,
    /// The block adds its input to its output (stride 1 and same channel count).
    pub residual: bool,
}

/// The whole backbone, stem to last 1×1 conv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackboneSpec {
    pub stem: ConvSpec,
    pub blocks: Vec<BlockSpec>,
    pub last: ConvSpec,
}

impl BackboneSpec {
    /// MobileNetV2 with width multiplier 1.0.
    pub fn mobilenet_v2() -> Self {
        let conv = |kind, in_channels, out_channels, kernel, stride, activation| ConvSpec {
            kind,
            in_channels,
            out_channels,
            kernel,
            stride,
            activation,
        };
        let stem = conv(
            ConvKind::Standard,
            3,
            STEM_CHANNELS,
            3,
            2,
            Activation::Relu6,
        );
        let mut blocks = Vec::new();
        let mut channels = STEM_CHANNELS;
        for (t, c, n, s) in BLOCK_GROUPS {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let hidden = channels * t;
                let expand = (t != 1).then(|| {
                    conv(
                        ConvKind::Standard,
                        channels,
                        hidden,
                        1,
                        1,
                        Activation::Relu6,
                    )
                });
                let depthwise = conv(
                    ConvKind::Depthwise,
                    hidden,
                    hidden,
                    3,
                    stride,
                    Activation::Relu6,
                );
                let project = conv(ConvKind::Standard, hidden, c, 1, 1, Activation::None);
                blocks.push(BlockSpec {
                    expand,
                    depthwise,
                    project,
                    residual: stride == 1 && channels == c,
                });
                channels = c;
            }
        }
        let last = conv(
            ConvKind::Standard,
            channels,
            FEATURE_DIM,
            1,
            1,
            Activation::Relu6,
        );
        Self { stem, blocks, last }
    }

    /// Every convolution in execution order (the order of a TFLite file's operators).
    pub fn convs(&self) -> Vec<ConvSpec> {
        let mut convs = vec![self.stem];
        for block in &self.blocks {
            convs.extend(block.expand);
            convs.push(block.depthwise);
            convs.push(block.project);
        }
        convs.push(self.last);
        convs
    }
}

/// Most blocks the fine-tuning stage can unfreeze (all of them; the page reads the same limit).
pub use afinar_vocabulary::limits::MAX_UNFROZEN_BLOCKS;

/// `[C, H, W]` of the activations below the last `unfrozen` blocks (clamped to
/// [`MAX_UNFROZEN_BLOCKS`]): what the fine-tuning stage caches per photo.
pub fn boundary_shape(unfrozen: usize) -> [usize; 3] {
    let spec = BackboneSpec::mobilenet_v2();
    let frozen = spec.blocks.len().saturating_sub(unfrozen);
    let below = &spec.blocks[..frozen];
    let channels = below
        .last()
        .map_or(spec.stem.out_channels, |b| b.project.out_channels);
    let stride: usize =
        spec.stem.stride * below.iter().map(|b| b.depthwise.stride).product::<usize>();
    let side = INPUT_SIZE.div_ceil(stride);
    [channels, side, side]
}

/// What the frozen backbone computes per photo, as one row of [`Self::width`] values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureStage {
    /// Pooled features (`[1280]`): the head's input.
    Pooled,
    /// Activations below the last K blocks (flattened `C·H·W`): the fine-tuning stage's input.
    Boundary(usize),
}

impl FeatureStage {
    /// Values per photo.
    pub fn width(self) -> usize {
        match self {
            FeatureStage::Pooled => FEATURE_DIM,
            FeatureStage::Boundary(k) => boundary_shape(k).iter().product(),
        }
    }

    /// A short name (`pooled`, `boundary2`), for caches.
    pub fn name(self) -> String {
        match self {
            FeatureStage::Pooled => "pooled".into(),
            FeatureStage::Boundary(k) => format!("boundary{k}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobilenet_v2_has_the_published_layer_counts() {
        let spec = BackboneSpec::mobilenet_v2();
        assert_eq!(spec.blocks.len(), 17);
        assert_eq!(spec.blocks.len(), MAX_UNFROZEN_BLOCKS);
        assert_eq!(spec.convs().len(), BACKBONE_CONVS);
        assert_eq!(
            spec.blocks.iter().filter(|b| b.residual).count(),
            RESIDUAL_ADDS
        );
        let strided = spec.convs().iter().filter(|c| c.stride == 2).count();
        assert_eq!(strided, 5);
        // Layer 40 of the shared README's table: the stride-2 depthwise conv of 576 channels.
        let conv40 = spec.convs()[40];
        assert_eq!(conv40.weight_shape(), [576, 1, 3, 3]);
        assert_eq!(conv40.stride, 2);
    }

    #[test]
    fn boundary_shapes_follow_the_strides() {
        assert_eq!(boundary_shape(0), [320, 7, 7]);
        assert_eq!(boundary_shape(2), [160, 7, 7]);
        assert_eq!(boundary_shape(4), [96, 14, 14]);
        assert_eq!(boundary_shape(17), [32, 112, 112]);
    }
}
