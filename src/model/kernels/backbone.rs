//! The frozen backbone on the CPU kernels: NHWC from the input to the output, weights packed
//! once at load, every bias, ReLU6 and residual add inside the kernel that produces the values.
//! Forward only: what trains (the head, the unfrozen top) stays in Burn.

use std::sync::Mutex;

use super::depthwise::PackedDepthwise;
use super::gemm::PackedGemm;
use super::isa::CpuKernels;
use crate::architecture::{
    BACKBONE_CONVS, BackboneSpec, ConvKind, ConvSpec, FEATURE_DIM, FeatureStage, INPUT_SIZE,
};
use crate::tflite::{ConvWeights, MobileNetV2Weights};

struct Block {
    expand: Option<PackedGemm>,
    depthwise: PackedDepthwise,
    project: PackedGemm,
    residual: bool,
}

/// Activation buffers reused from photo to photo (fresh memory costs page faults).
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    y: Vec<f32>,
    expanded: Vec<f32>,
    filtered: Vec<f32>,
    patches: Vec<f32>,
}

/// MobileNetV2's backbone packed for one [`CpuKernels`] path.
pub struct PackedBackbone {
    kernels: CpuKernels,
    /// The stem as a GEMM over 3×3×3 patches, and its shape (for the patches).
    stem: PackedGemm,
    stem_spec: ConvSpec,
    blocks: Vec<Block>,
    last: PackedGemm,
    /// The ImageNet classifier (pooled features → logits), packed like the 1×1 convs.
    classifier: PackedGemm,
    scratch: Mutex<Scratch>,
}

impl std::fmt::Debug for PackedBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedBackbone({})", self.kernels.name())
    }
}

/// A 1×1 conv's weights (`[out, in, 1, 1]`) as a GEMM.
fn pointwise(w: &ConvWeights, kernels: CpuKernels) -> PackedGemm {
    let (k, n) = (w.spec.in_channels, w.spec.out_channels);
    PackedGemm::pack(k, n, |kk, j| w.weight[j * k + kk], &w.bias, kernels)
}

impl PackedBackbone {
    /// Packs the backbone of a file's weights (`None` if they are not MobileNetV2's 52
    /// convolutions, which the reader has already checked).
    pub fn pack(weights: &MobileNetV2Weights, kernels: CpuKernels) -> Option<Self> {
        let spec = BackboneSpec::mobilenet_v2();
        if weights.convs.len() != BACKBONE_CONVS
            || weights.convs.iter().map(|c| c.spec).ne(spec.convs())
        {
            return None;
        }
        let kernels = kernels.runnable();
        let mut convs = weights.convs.iter();
        let mut next = || convs.next().expect("52 convolutions, checked above");
        let stem = next();
        let cin = stem.spec.in_channels;
        let stem = PackedGemm::pack(
            9 * cin,
            stem.spec.out_channels,
            // Patch column `(ky·3 + kx)·cin + ci` ← Burn's `[o, ci, ky, kx]`.
            |kk, o| {
                let (tap, ci) = (kk / cin, kk % cin);
                stem.weight[(o * cin + ci) * 9 + tap]
            },
            &stem.bias,
            kernels,
        );
        let blocks = spec
            .blocks
            .iter()
            .map(|b| {
                let expand = b.expand.map(|_| pointwise(next(), kernels));
                let dw = next();
                let depthwise =
                    PackedDepthwise::pack(&dw.weight, &dw.bias, dw.spec.stride, kernels)?;
                Some(Block {
                    expand,
                    depthwise,
                    project: pointwise(next(), kernels),
                    residual: b.residual,
                })
            })
            .collect::<Option<_>>()?;
        let last = pointwise(next(), kernels);
        let dense = &weights.classifier;
        let classifier = PackedGemm::pack(
            dense.inputs,
            dense.outputs,
            |kk, j| dense.weight[kk * dense.outputs + j],
            &dense.bias,
            kernels,
        );
        Some(Self {
            kernels,
            stem,
            stem_spec: spec.stem,
            blocks,
            last,
            classifier,
            scratch: Mutex::new(Scratch::default()),
        })
    }

    pub fn kernels(&self) -> CpuKernels {
        self.kernels
    }

    /// ImageNet logits of pooled features (`N × 1280` → `N × outputs`).
    pub fn logits(&self, features: &[f32]) -> Vec<f32> {
        let rows = features.len() / FEATURE_DIM;
        let mut logits = vec![0.0; rows * self.classifier.n];
        self.classifier.run(features, &mut logits, None, false);
        logits
    }

    /// What the backbone computes at `stage` for one photo: `image` is `224 × 224 × 3`,
    /// real-valued (already scaled), NHWC. Appends `stage.width()` values to `out`: pooled
    /// features, or the boundary activations in Burn's `C·H·W` order.
    pub fn run(&self, image: &[f32], stage: FeatureStage, out: &mut Vec<f32>) {
        match stage {
            FeatureStage::Pooled => self.pass(image, None, Some(out)),
            FeatureStage::Boundary(k) => self.pass(image, Some((k, out)), None),
        }
    }

    /// [`Self::run`] at `Boundary(unfreeze)` and at `Pooled` in one pass: a training photo's
    /// rows for both stages of a recipe that fine-tunes, while the top is still the file's.
    pub fn run_boundary_and_pooled(
        &self,
        image: &[f32],
        unfreeze: usize,
        boundary: &mut Vec<f32>,
        pooled: &mut Vec<f32>,
    ) {
        self.pass(image, Some((unfreeze, boundary)), Some(pooled));
    }

    /// One forward pass that appends the boundary activations below the last `k` blocks
    /// and/or the pooled features; it stops at the boundary when no pooled row is wanted.
    fn pass(
        &self,
        image: &[f32],
        mut boundary: Option<(usize, &mut Vec<f32>)>,
        pooled: Option<&mut Vec<f32>>,
    ) {
        let mut guard = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let s = &mut *guard;
        let stem_spec = self.stem_spec;
        let (mut h, mut w) = (INPUT_SIZE, INPUT_SIZE);
        let patches = im2col(image, h, w, &stem_spec, &mut s.patches);
        h = h.div_ceil(stem_spec.stride);
        w = w.div_ceil(stem_spec.stride);
        let mut c = stem_spec.out_channels;
        grow(&mut s.x, h * w * c);
        self.stem.run(patches, &mut s.x[..h * w * c], None, true);
        let boundary_block = boundary
            .as_ref()
            .map(|(k, _)| self.blocks.len().saturating_sub(*k));
        let last_block = match (&pooled, boundary_block) {
            (None, Some(b)) => b,
            _ => self.blocks.len(),
        };
        for (index, block) in self.blocks[..last_block].iter().enumerate() {
            if Some(index) == boundary_block
                && let Some((_, out)) = boundary.take()
            {
                channels_first(&s.x[..h * w * c], c, out);
            }
            let input = &s.x[..h * w * c];
            let hidden = block.depthwise.channels;
            let expanded: &[f32] = match &block.expand {
                Some(expand) => {
                    grow(&mut s.expanded, h * w * hidden);
                    expand.run(input, &mut s.expanded[..h * w * hidden], None, true);
                    &s.expanded[..h * w * hidden]
                }
                None => input,
            };
            let (oh, ow) = (
                h.div_ceil(block.depthwise.stride),
                w.div_ceil(block.depthwise.stride),
            );
            grow(&mut s.filtered, oh * ow * hidden);
            block.depthwise.run(expanded, h, w, &mut s.filtered);
            let cout = block.project.n;
            grow(&mut s.y, oh * ow * cout);
            let residual = block.residual.then_some(input);
            block.project.run(
                &s.filtered[..oh * ow * hidden],
                &mut s.y[..oh * ow * cout],
                residual,
                false,
            );
            std::mem::swap(&mut s.x, &mut s.y);
            (h, w, c) = (oh, ow, cout);
        }
        // A boundary above every block run (after the last one, or the pass stops there).
        if let Some((_, out)) = boundary.take() {
            channels_first(&s.x[..h * w * c], c, out);
        }
        let Some(out) = pooled else {
            return;
        };
        let x = &s.x[..h * w * c];
        grow(&mut s.y, h * w * FEATURE_DIM);
        let last = &mut s.y[..h * w * FEATURE_DIM];
        self.last.run(x, last, None, true);
        let mut sums = vec![0.0f32; FEATURE_DIM];
        for pixel in last.chunks_exact(FEATURE_DIM) {
            for (p, v) in sums.iter_mut().zip(pixel) {
                *p += v;
            }
        }
        let n = (h * w) as f32;
        out.extend(sums.iter().map(|p| p / n));
    }
}

fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// The stem's 3×3 patches (TF `SAME` padding, zeros outside): one row of `9 · C` values per
/// output pixel, columns in `(ky·3 + kx)·C + c` order.
fn im2col<'a>(
    image: &[f32],
    h: usize,
    w: usize,
    spec: &ConvSpec,
    buffer: &'a mut Vec<f32>,
) -> &'a [f32] {
    debug_assert_eq!(spec.kind, ConvKind::Standard);
    let c = spec.in_channels;
    let (oh, pad_top) = super::depthwise::same_padding(h, spec.stride);
    let (ow, pad_left) = super::depthwise::same_padding(w, spec.stride);
    grow(buffer, oh * ow * 9 * c);
    let patches = &mut buffer[..oh * ow * 9 * c];
    patches.fill(0.0);
    for (p, patch) in patches.chunks_exact_mut(9 * c).enumerate() {
        let (oy, ox) = (p / ow, p % ow);
        for ky in 0..3 {
            let Some(iy) = (oy * spec.stride + ky).checked_sub(pad_top) else {
                continue;
            };
            if iy >= h {
                continue;
            }
            for kx in 0..3 {
                let Some(ix) = (ox * spec.stride + kx).checked_sub(pad_left) else {
                    continue;
                };
                if ix >= w {
                    continue;
                }
                let from = &image[(iy * w + ix) * c..][..c];
                // A loop, not `copy_from_slice`: three values do not pay for a call to memmove.
                for (p, v) in patch[(ky * 3 + kx) * c..][..c].iter_mut().zip(from) {
                    *p = *v;
                }
            }
        }
    }
    patches
}

/// Appends NHWC activations `x` of `c` channels in Burn's channels-first layout, the one the
/// trainable top reads.
fn channels_first(x: &[f32], c: usize, out: &mut Vec<f32>) {
    let positions = x.len() / c.max(1);
    out.extend((0..c).flat_map(|ch| (0..positions).map(move |p| x[p * c + ch])));
}
