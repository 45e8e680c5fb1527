//! The frozen backbone and the ImageNet classifier of a quantized file on the integer kernels:
//! uint8 activations from the photo's pixels to the logits, NHWC, weights packed once, the
//! file's own arithmetic ([`super::integer_reference`] is its definition). Where the float
//! world begins (the head's pooled features) the last conv's output is dequantized.

use std::sync::Mutex;

use super::backbone::im2col;
use super::integer_reference::{IntegerOutputs, pool};
use super::isa::CpuKernels;
use super::qdepthwise::PackedQDepthwise;
use super::qgemm::PackedQGemm;
use super::qpanels::DEPTH;
use super::requantize::{Requantization, ResidualAdd};
use super::rows::for_row_chunks;
use crate::architecture::INPUT_SIZE;
use crate::tflite::{ActivationQuantization, QuantizedMobileNetV2};

struct Block {
    /// The quantization of the block's input: how the activations below it read as reals.
    input: ActivationQuantization,
    expand: Option<PackedQGemm>,
    depthwise: PackedQDepthwise,
    project: PackedQGemm,
    residual: Option<ResidualAdd>,
}

/// Activation buffers reused from photo to photo.
#[derive(Default)]
struct Scratch {
    input: Vec<u8>,
    patches: Vec<u8>,
    x: Vec<u8>,
    y: Vec<u8>,
    expanded: Vec<u8>,
    filtered: Vec<u8>,
}

/// A quantized MobileNetV2 packed for one [`CpuKernels`] path's integer kernels.
pub struct IntegerBackbone {
    kernels: CpuKernels,
    /// Each pixel value's `q` in the stem's input quantization.
    pixels: [u8; 256],
    stem_input: ActivationQuantization,
    /// The stem as a GEMM over 3×3×3 patches padded to a whole dot product.
    stem: PackedQGemm,
    stem_stride: usize,
    blocks: Vec<Block>,
    last: PackedQGemm,
    last_input: ActivationQuantization,
    last_output: ActivationQuantization,
    pooled: ActivationQuantization,
    classifier: PackedQGemm,
    logits: ActivationQuantization,
    scratch: Mutex<Scratch>,
}

impl std::fmt::Debug for IntegerBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IntegerBackbone({})", self.kernels.name())
    }
}

/// Columns of the stem's patches: 3×3×3 values and zeros up to a whole dot product.
const STEM_COLUMNS: usize = 27usize.div_ceil(DEPTH) * DEPTH;

impl IntegerBackbone {
    /// `None` where a layer does not fit the integer kernels (the file then runs in float32).
    pub fn pack(model: &QuantizedMobileNetV2, kernels: CpuKernels) -> Option<Self> {
        let kernels = kernels.runnable();
        // The mean's requantization, as `pass` computes it, must be a number.
        if !(model.last.output.scale / model.classifier.input.scale).is_finite() {
            return None;
        }
        let stem = &model.stem;
        let taps = 9 * stem.spec.in_channels;
        if taps > STEM_COLUMNS || stem.spec.kernel != 3 {
            return None;
        }
        let stem_gemm = PackedQGemm::pack(
            STEM_COLUMNS,
            stem.spec.out_channels,
            // Patch column `(ky·3 + kx)·cin + ci` is the file's OHWI order.
            |kk, o| match kk < taps {
                true => stem.weight[o * taps + kk],
                false => 0,
            },
            &stem.bias,
            stem.input.zero_point,
            &Requantization::of(stem),
            kernels,
        )?;
        let blocks = model
            .blocks
            .iter()
            .map(|b| {
                let shortcut = b.expand.as_ref().unwrap_or(&b.depthwise).input;
                Some(Block {
                    input: shortcut,
                    expand: match &b.expand {
                        Some(e) => Some(PackedQGemm::pointwise(e, kernels)?),
                        None => None,
                    },
                    depthwise: PackedQDepthwise::pack(&b.depthwise, kernels)?,
                    project: PackedQGemm::pointwise(&b.project, kernels)?,
                    residual: match b.residual {
                        Some(sum) => Some(ResidualAdd::new(b.project.output, shortcut, sum)?),
                        None => None,
                    },
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            kernels,
            pixels: model.pixel_table(),
            stem_input: stem.input,
            stem: stem_gemm,
            stem_stride: stem.spec.stride,
            blocks,
            last: PackedQGemm::pointwise(&model.last, kernels)?,
            last_input: model.last.input,
            last_output: model.last.output,
            pooled: model.classifier.input,
            classifier: PackedQGemm::pointwise(&model.classifier, kernels)?,
            logits: model.classifier.output,
            scratch: Mutex::new(Scratch::default()),
        })
    }

    pub fn kernels(&self) -> CpuKernels {
        self.kernels
    }

    /// Outputs of the ImageNet classifier.
    pub fn outputs(&self) -> usize {
        self.classifier.n()
    }

    /// The real value of a logit.
    pub fn logit(&self, q: u8) -> f32 {
        self.logits.real(q)
    }

    /// One photo (`224 × 224 × 3` pixels) through the whole network.
    pub fn run(&self, rgb: &[u8]) -> IntegerOutputs {
        let (_, outputs) = super::rows::on_workers(|| self.pass(rgb, None, true));
        outputs.unwrap_or_else(|| IntegerOutputs {
            pooled: Vec::new(),
            logits: Vec::new(),
        })
    }

    /// One photo's real activations below the last `unfrozen` blocks (where a fine-tuned
    /// top takes over), and, where `whole`, the rest of the pass too.
    pub fn run_to_boundary(
        &self,
        rgb: &[u8],
        unfrozen: usize,
        whole: bool,
    ) -> (Activations, Option<IntegerOutputs>) {
        let at = self.blocks.len().saturating_sub(unfrozen);
        let (boundary, outputs) = super::rows::on_workers(|| self.pass(rgb, Some(at), whole));
        (boundary.unwrap_or_default(), outputs)
    }

    /// The pass: the activations in front of block `boundary` where asked for (dequantized,
    /// NHWC), and the pooled features and logits where `whole` (else it stops there).
    fn pass(
        &self,
        rgb: &[u8],
        boundary: Option<usize>,
        whole: bool,
    ) -> (Option<Activations>, Option<IntegerOutputs>) {
        // A photo is `224 × 224 × 3` pixels ([`crate::ModelInput`] makes sure); anything else
        // gets no answer rather than another photo's leftovers in the reused buffers.
        if rgb.len() != INPUT_SIZE * INPUT_SIZE * 3 {
            return (None, None);
        }
        // Never waits for the shared buffers: the pass runs on a pool thread, which, while its
        // layers' halves run, may be handed another photo's pass on this backbone; waiting on
        // its own lock there would never end. That pass gets buffers of its own.
        let mut own = Scratch::default();
        let mut guard = match self.scratch.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        let s = guard.as_deref_mut().unwrap_or(&mut own);
        let (mut h, mut w, mut c) = self.stem(rgb, s);
        let mut kept = None;
        for (index, block) in self.blocks.iter().enumerate() {
            if boundary == Some(index) {
                kept = Some(Activations::of(&s.x[..h * w * c], h, c, block.input));
                if !whole {
                    return (kept, None);
                }
            }
            let input = &s.x[..h * w * c];
            let expanded: &[u8] = match &block.expand {
                Some(expand) => {
                    let len = h * w * expand.n();
                    grow(&mut s.expanded, len);
                    expand.run(input, &mut s.expanded[..len]);
                    &s.expanded[..len]
                }
                None => input,
            };
            let hidden = block.depthwise.channels;
            let stride = block.depthwise.stride;
            grow(
                &mut s.filtered,
                h.div_ceil(stride) * w.div_ceil(stride) * hidden,
            );
            let (oh, ow) = block.depthwise.run(expanded, h, w, &mut s.filtered);
            let cout = block.project.n();
            let len = oh * ow * cout;
            grow(&mut s.y, len);
            let filtered = &s.filtered[..oh * ow * hidden];
            match &block.residual {
                Some(add) => block
                    .project
                    .run_adding(filtered, &mut s.y[..len], add, &s.x[..len]),
                None => block.project.run(filtered, &mut s.y[..len]),
            }
            std::mem::swap(&mut s.x, &mut s.y);
            (h, w, c) = (oh, ow, cout);
        }
        if boundary == Some(self.blocks.len()) {
            kept = Some(Activations::of(&s.x[..h * w * c], h, c, self.last_input));
            if !whole {
                return (kept, None);
            }
        }
        let features = self.last.n();
        let positions = h * w;
        grow(&mut s.y, positions * features);
        self.last
            .run(&s.x[..h * w * c], &mut s.y[..positions * features]);
        let last = &s.y[..positions * features];
        let (pooled, pooled_q) = pool(last, features, self.last_output, self.pooled);
        let mut logits = vec![0u8; self.classifier.n()];
        self.classifier.run(&pooled_q, &mut logits);
        (kept, Some(IntegerOutputs { pooled, logits }))
    }

    /// The stem on a photo's pixels into `s.x`; returns the activations' shape.
    fn stem(&self, rgb: &[u8], s: &mut Scratch) -> (usize, usize, usize) {
        let side = INPUT_SIZE;
        let row = side * 3;
        grow(&mut s.input, side * row);
        let input = &mut s.input[..side * row];
        for_row_chunks(input, row, side, 1, |first, rows| {
            for (q, &p) in rows.iter_mut().zip(&rgb[first * row..]) {
                *q = self.pixels[usize::from(p)];
            }
        });
        let stride = self.stem_stride;
        let (out, _) = super::depthwise::same_padding(side, stride);
        // Outside the image counts as the input's zero point, as TFLite pads.
        let patches = im2col(
            input,
            (side, side, 3),
            stride,
            STEM_COLUMNS,
            self.stem_input.zero_point as u8,
            &mut s.patches,
        );
        let c = self.stem.n();
        grow(&mut s.x, out * out * c);
        self.stem.run(patches, &mut s.x[..out * out * c]);
        (out, out, c)
    }
}

/// Real activations at a freeze boundary, NHWC: where a fine-tuned top (float32) takes over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activations {
    pub values: Vec<f32>,
    /// Pixels per side.
    pub side: usize,
    pub channels: usize,
}

impl Activations {
    fn of(x: &[u8], side: usize, channels: usize, q: ActivationQuantization) -> Self {
        Self {
            values: x.iter().map(|&v| q.real(v)).collect(),
            side,
            channels,
        }
    }
}

fn grow(buffer: &mut Vec<u8>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
}
