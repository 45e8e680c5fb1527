//! The frozen backbone on the CPU kernels: NHWC from the input to the output, weights packed
//! once at load, every bias, ReLU6 and residual add inside the kernel that produces the values.
//! Forward only: what trains (the head, the unfrozen top) does so in Burn; a fine-tuned top
//! comes back here packed ([`PackedTop`]).

use std::sync::Mutex;

use super::depthwise::PackedDepthwise;
use super::gemm::PackedGemm;
use super::isa::CpuKernels;
use crate::architecture::{
    BACKBONE_CONVS, BackboneSpec, BlockSpec, ConvKind, ConvSpec, FEATURE_DIM, FeatureStage,
    INPUT_SIZE,
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
    /// The activations at a fine-tuned top's boundary, kept while the file's top runs.
    kept: Vec<f32>,
}

/// The shape of the activations in [`Scratch::x`]: `h × w × c`, NHWC.
#[derive(Debug, Clone, Copy)]
struct Shape {
    h: usize,
    w: usize,
    c: usize,
}

impl Shape {
    fn len(self) -> usize {
        self.h * self.w * self.c
    }
}

/// Inverted-residual blocks and the last 1×1 conv: the part of the backbone above a freeze
/// boundary (all of it, for the file's own).
struct Blocks {
    blocks: Vec<Block>,
    last: PackedGemm,
}

/// MobileNetV2's backbone packed for one [`CpuKernels`] path.
pub struct PackedBackbone {
    kernels: CpuKernels,
    /// The stem as a GEMM over 3×3×3 patches, and its shape (for the patches).
    stem: PackedGemm,
    stem_spec: ConvSpec,
    body: Blocks,
    /// The ImageNet classifier (pooled features → logits), packed like the 1×1 convs.
    classifier: PackedGemm,
    scratch: Mutex<Scratch>,
}

/// The top `unfrozen` blocks and the last conv of a fine-tuned backbone: run on the frozen
/// backbone's activations at their boundary, in the same pass as the file's own top.
pub struct PackedTop {
    unfrozen: usize,
    body: Blocks,
    /// For [`Self::run_from`], where no float32 backbone runs below it.
    scratch: Mutex<Scratch>,
}

impl std::fmt::Debug for PackedBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedBackbone({})", self.kernels.name())
    }
}

impl std::fmt::Debug for PackedTop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedTop({} blocks)", self.unfrozen)
    }
}

/// A 1×1 conv's weights (`[out, in, 1, 1]`) as a GEMM.
fn pointwise(w: &ConvWeights, kernels: CpuKernels) -> PackedGemm {
    let (k, n) = (w.spec.in_channels, w.spec.out_channels);
    PackedGemm::pack(k, n, |kk, j| w.weight[j * k + kk], &w.bias, kernels)
}

impl Blocks {
    /// Packs `specs`' blocks and the last conv from `convs`, which must hold exactly their
    /// convolutions in execution order (`None` otherwise).
    fn pack(specs: &[BlockSpec], convs: &[ConvWeights], kernels: CpuKernels) -> Option<Self> {
        let mut convs = convs.iter();
        let blocks = specs
            .iter()
            .map(|b| {
                let expand = match b.expand {
                    Some(_) => Some(pointwise(convs.next()?, kernels)),
                    None => None,
                };
                let dw = convs.next()?;
                let depthwise =
                    PackedDepthwise::pack(&dw.weight, &dw.bias, dw.spec.stride, kernels)?;
                Some(Block {
                    expand,
                    depthwise,
                    project: pointwise(convs.next()?, kernels),
                    residual: b.residual,
                })
            })
            .collect::<Option<_>>()?;
        let last = pointwise(convs.next()?, kernels);
        convs.next().is_none().then_some(Self { blocks, last })
    }

    /// Runs blocks `range` on `s.x`, leaving their output there; at `boundary` (a block index
    /// in the range, or its end) appends the activations in Burn's `C·H·W` order to `out`.
    fn run(
        &self,
        range: std::ops::Range<usize>,
        s: &mut Scratch,
        shape: &mut Shape,
        mut boundary: Option<(usize, &mut Vec<f32>)>,
    ) {
        for index in range {
            if let Some((_, out)) = boundary.take_if(|(at, _)| *at == index) {
                channels_first(&s.x[..shape.len()], shape.c, out);
            }
            self.blocks[index].run(s, shape);
        }
        if let Some((_, out)) = boundary {
            channels_first(&s.x[..shape.len()], shape.c, out);
        }
    }

    /// The last conv on `s.x`, averaged over positions: appends 1280 pooled features.
    fn pool(&self, s: &mut Scratch, shape: Shape, out: &mut Vec<f32>) {
        let positions = shape.h * shape.w;
        grow(&mut s.y, positions * FEATURE_DIM);
        let last = &mut s.y[..positions * FEATURE_DIM];
        self.last.run(&s.x[..shape.len()], last, None, true);
        let mut sums = vec![0.0f32; FEATURE_DIM];
        for pixel in last.chunks_exact(FEATURE_DIM) {
            for (p, v) in sums.iter_mut().zip(pixel) {
                *p += v;
            }
        }
        let n = positions as f32;
        out.extend(sums.iter().map(|p| p / n));
    }
}

impl Block {
    /// Runs the block on `s.x` (of `shape`), leaving its output in `s.x` and its shape in
    /// `shape`.
    fn run(&self, s: &mut Scratch, shape: &mut Shape) {
        let Shape { h, w, c } = *shape;
        let input = &s.x[..h * w * c];
        let hidden = self.depthwise.channels;
        let expanded: &[f32] = match &self.expand {
            Some(expand) => {
                grow(&mut s.expanded, h * w * hidden);
                expand.run(input, &mut s.expanded[..h * w * hidden], None, true);
                &s.expanded[..h * w * hidden]
            }
            None => input,
        };
        let (oh, ow) = (
            h.div_ceil(self.depthwise.stride),
            w.div_ceil(self.depthwise.stride),
        );
        grow(&mut s.filtered, oh * ow * hidden);
        self.depthwise.run(expanded, h, w, &mut s.filtered);
        let cout = self.project.n;
        grow(&mut s.y, oh * ow * cout);
        let residual = self.residual.then_some(input);
        self.project.run(
            &s.filtered[..oh * ow * hidden],
            &mut s.y[..oh * ow * cout],
            residual,
            false,
        );
        std::mem::swap(&mut s.x, &mut s.y);
        *shape = Shape {
            h: oh,
            w: ow,
            c: cout,
        };
    }
}

impl PackedTop {
    /// Packs a fine-tuned top: `convs` are the convolutions of the last `unfrozen` blocks and
    /// the last conv, in execution order, in Burn's layout. `None` unless they have exactly
    /// the shapes of MobileNetV2's.
    pub fn pack(unfrozen: usize, convs: &[ConvWeights], kernels: CpuKernels) -> Option<Self> {
        let spec = BackboneSpec::mobilenet_v2();
        let first = spec.blocks.len().checked_sub(unfrozen)?;
        let specs = &spec.blocks[first..];
        let expected = specs
            .iter()
            .flat_map(|b| b.expand.into_iter().chain([b.depthwise, b.project]))
            .chain([spec.last]);
        if convs.iter().map(|c| c.spec).ne(expected) {
            return None;
        }
        let body = Blocks::pack(specs, convs, kernels.runnable())?;
        Some(Self {
            unfrozen,
            body,
            scratch: Mutex::new(Scratch::default()),
        })
    }

    /// Blocks of the backbone it replaces.
    pub fn unfrozen(&self) -> usize {
        self.unfrozen
    }

    /// Its pooled features (appended to `pooled`) from real activations at its boundary, NHWC,
    /// `side × side × channels`: the frozen part having run elsewhere (in the file's integers).
    pub fn run_from(
        &self,
        activations: &[f32],
        side: usize,
        channels: usize,
        pooled: &mut Vec<f32>,
    ) {
        let mut guard = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let s = &mut *guard;
        let mut shape = Shape {
            h: side,
            w: side,
            c: channels,
        };
        grow(&mut s.x, shape.len());
        s.x[..shape.len()].copy_from_slice(&activations[..shape.len()]);
        self.body
            .run(0..self.body.blocks.len(), s, &mut shape, None);
        self.body.pool(s, shape, pooled);
    }
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
        let (stem, body) = weights.convs.split_first()?;
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
        let body = Blocks::pack(&spec.blocks, body, kernels)?;
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
            body,
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

    /// Outputs of the ImageNet classifier.
    pub fn outputs(&self) -> usize {
        self.classifier.n
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

    /// One photo's pooled features under the file's top (appended to `pooled`) and under a
    /// fine-tuned `top` (appended to `top_pooled`), the frozen blocks below it run once.
    pub fn run_with_top(
        &self,
        image: &[f32],
        top: &PackedTop,
        pooled: &mut Vec<f32>,
        top_pooled: &mut Vec<f32>,
    ) {
        let mut guard = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let s = &mut *guard;
        let blocks = self.body.blocks.len();
        let frozen = blocks.saturating_sub(top.unfrozen);
        let mut shape = self.stem(image, s);
        self.body.run(0..frozen, s, &mut shape, None);
        let at_boundary = shape;
        s.kept.clear();
        s.kept.extend_from_slice(&s.x[..shape.len()]);
        self.body.run(frozen..blocks, s, &mut shape, None);
        self.body.pool(s, shape, pooled);
        let mut shape = at_boundary;
        grow(&mut s.x, shape.len());
        s.x[..shape.len()].copy_from_slice(&s.kept[..shape.len()]);
        top.body.run(0..top.body.blocks.len(), s, &mut shape, None);
        top.body.pool(s, shape, top_pooled);
    }

    /// The stem on `image` into `s.x`; returns the activations' shape.
    fn stem(&self, image: &[f32], s: &mut Scratch) -> Shape {
        let spec = self.stem_spec;
        debug_assert_eq!(spec.kind, ConvKind::Standard);
        let c = spec.in_channels;
        let shape = (INPUT_SIZE, INPUT_SIZE, c);
        let patches = im2col(image, shape, spec.stride, 9 * c, 0.0, &mut s.patches);
        let side = INPUT_SIZE.div_ceil(spec.stride);
        let shape = Shape {
            h: side,
            w: side,
            c: spec.out_channels,
        };
        grow(&mut s.x, shape.len());
        self.stem.run(patches, &mut s.x[..shape.len()], None, true);
        shape
    }

    /// One forward pass that appends the boundary activations below the last `k` blocks
    /// and/or the pooled features; it stops at the boundary when no pooled row is wanted.
    fn pass(
        &self,
        image: &[f32],
        boundary: Option<(usize, &mut Vec<f32>)>,
        pooled: Option<&mut Vec<f32>>,
    ) {
        let mut guard = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let s = &mut *guard;
        let blocks = self.body.blocks.len();
        let boundary = boundary.map(|(k, out)| (blocks.saturating_sub(k), out));
        let end = match (&pooled, &boundary) {
            (None, Some((at, _))) => *at,
            _ => blocks,
        };
        let mut shape = self.stem(image, s);
        self.body.run(0..end, s, &mut shape, boundary);
        if let Some(out) = pooled {
            self.body.pool(s, shape, out);
        }
    }
}

fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// The stem's 3×3 patches (TF `SAME` padding) of an `h × w × c` image: one row of `columns`
/// values (at least `9 · c`) per output pixel, in `(ky·3 + kx)·c + ci` order; `fill` outside
/// the image and past `9 · c` (zero for float32, the input's zero point for the integers).
/// Split over the cores by output rows.
pub(super) fn im2col<'a, T: Copy + Send + Sync>(
    image: &[T],
    (h, w, c): (usize, usize, usize),
    stride: usize,
    columns: usize,
    fill: T,
    buffer: &'a mut Vec<T>,
) -> &'a [T] {
    let (oh, pad_top) = super::depthwise::same_padding(h, stride);
    let (ow, pad_left) = super::depthwise::same_padding(w, stride);
    if buffer.len() < oh * ow * columns {
        buffer.resize(oh * ow * columns, fill);
    }
    let patches = &mut buffer[..oh * ow * columns];
    super::rows::for_row_chunks(patches, ow * columns, oh, 1, |first, rows| {
        rows.fill(fill);
        for (p, patch) in rows.chunks_exact_mut(columns).enumerate() {
            let (oy, ox) = (first + p / ow, p % ow);
            for ky in 0..3 {
                let Some(iy) = (oy * stride + ky).checked_sub(pad_top) else {
                    continue;
                };
                if iy >= h {
                    continue;
                }
                for kx in 0..3 {
                    let Some(ix) = (ox * stride + kx).checked_sub(pad_left) else {
                        continue;
                    };
                    if ix >= w {
                        continue;
                    }
                    let from = &image[(iy * w + ix) * c..][..c];
                    // A loop, not `copy_from_slice`: three values do not pay for a call to
                    // memmove.
                    for (p, v) in patch[(ky * 3 + kx) * c..][..c].iter_mut().zip(from) {
                        *p = *v;
                    }
                }
            }
        }
    });
    patches
}

/// Appends NHWC activations `x` of `c` channels in Burn's channels-first layout, the one the
/// trainable top reads.
pub(crate) fn channels_first(x: &[f32], c: usize, out: &mut Vec<f32>) {
    let positions = x.len() / c.max(1);
    out.extend((0..c).flat_map(|ch| (0..positions).map(move |p| x[p * c + ch])));
}
