//! 3×3 depthwise convolution over NHWC activations, with bias and ReLU6 in the same pass: each
//! output pixel's channels start from the bias, take the 9 taps (vectorized over channels, which
//! are contiguous in NHWC), and are clamped while still in cache. TensorFlow's `SAME` padding:
//! the output side is `ceil(in / stride)`, and the padding's odd pixel goes after (bottom/right).

use super::dispatch::{Kernel, dispatch};
#[cfg(target_arch = "x86_64")]
use super::isa::Avx2;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use super::isa::Simd128;
use super::isa::{CpuKernels, Isa};
use super::lanes::{Lanes, madd};
use super::rows::for_row_chunks;

/// The weights of one depthwise layer: `taps[(ky·3 + kx)·C + c]` and the bias per channel.
#[derive(Debug, Clone)]
pub struct PackedDepthwise {
    pub channels: usize,
    pub stride: usize,
    isa: Isa,
    taps: Vec<f32>,
    bias: Vec<f32>,
}

/// Side of the output and padding before the input, for TF `SAME` with a 3-wide kernel.
pub fn same_padding(input: usize, stride: usize) -> (usize, usize) {
    let output = input.div_ceil(stride);
    let total = ((output - 1) * stride + 3).saturating_sub(input);
    (output, total / 2)
}

impl PackedDepthwise {
    /// From Burn's layout `[C, 1, 3, 3]` (`weight[c·9 + ky·3 + kx]`); `None` unless the
    /// channels come in whole blocks of [`BLOCK`].
    pub fn pack(weight: &[f32], bias: &[f32], stride: usize, kernels: CpuKernels) -> Option<Self> {
        let channels = bias.len();
        if !channels.is_multiple_of(BLOCK) || weight.len() != channels * 9 {
            return None;
        }
        let isa = kernels.isa();
        let mut taps = vec![0.0; 9 * channels];
        for c in 0..channels {
            for t in 0..9 {
                taps[t * channels + c] = weight[c * 9 + t];
            }
        }
        Some(Self {
            channels,
            stride,
            isa,
            taps,
            bias: bias.to_vec(),
        })
    }

    /// `input` is `h × w × C`; returns the output side `(oh, ow)` written to `out` (which must
    /// hold `oh × ow × C`).
    pub fn run(&self, input: &[f32], h: usize, w: usize, out: &mut [f32]) -> (usize, usize) {
        let c = self.channels;
        assert_eq!(input.len(), h * w * c, "depthwise input size");
        let (oh, pad_top) = same_padding(h, self.stride);
        let (ow, pad_left) = same_padding(w, self.stride);
        let out = &mut out[..oh * ow * c];
        let geometry = Geometry {
            h,
            w,
            c,
            ow,
            stride: self.stride,
            pad_top,
            pad_left,
        };
        for_row_chunks(out, ow * c, oh, 1, |first, rows| {
            let rows = DepthwiseRows {
                layer: self,
                g: &geometry,
                input,
                first,
                rows,
            };
            dispatch(self.isa, rows);
        });
        (oh, ow)
    }
}

struct Geometry {
    h: usize,
    w: usize,
    c: usize,
    ow: usize,
    stride: usize,
    pad_top: usize,
    pad_left: usize,
}

/// One run of whole output rows.
struct DepthwiseRows<'a> {
    layer: &'a PackedDepthwise,
    g: &'a Geometry,
    input: &'a [f32],
    /// The first output row of `rows`.
    first: usize,
    rows: &'a mut [f32],
}

impl Kernel for DepthwiseRows<'_> {
    type Output = ();

    #[inline(always)]
    fn portable(self) {
        depthwise_rows(self, Lanes::<false>);
    }

    /// AVX-512 runs this too: the compiler keeps these loops to 256-bit registers anyway.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx2(self, _isa: Avx2) {
        depthwise_rows(self, Lanes::<true>);
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    fn simd128(self, isa: Simd128) {
        depthwise_rows(self, isa);
    }
}

/// Channels per block: every MobileNetV2 depthwise layer has a multiple of 16 channels (the
/// packing checks it), one or two vector registers per block.
pub(super) const BLOCK: usize = 16;

/// How one block of channels takes its taps.
trait Block: Copy {
    /// `bias` plus each `(input, tap)` pair's product, clamped to ReLU6's [0, 6].
    fn block<'a>(
        self,
        bias: &[f32; BLOCK],
        taps: impl Iterator<Item = (&'a [f32; BLOCK], &'a [f32; BLOCK])>,
    ) -> [f32; BLOCK];
}

impl<const FMA: bool> Block for Lanes<FMA> {
    #[inline(always)]
    fn block<'a>(
        self,
        bias: &[f32; BLOCK],
        taps: impl Iterator<Item = (&'a [f32; BLOCK], &'a [f32; BLOCK])>,
    ) -> [f32; BLOCK] {
        let mut acc = *bias;
        for (x, t) in taps {
            for j in 0..BLOCK {
                acc[j] = madd::<FMA>(x[j], t[j], acc[j]);
            }
        }
        for v in acc.iter_mut() {
            *v = v.clamp(0.0, 6.0);
        }
        acc
    }
}

/// The block in wasm `simd128` vectors, four lanes each (the compiler leaves the loop above
/// mostly scalar there).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Block for Simd128 {
    #[inline(always)]
    fn block<'a>(
        self,
        bias: &[f32; BLOCK],
        taps: impl Iterator<Item = (&'a [f32; BLOCK], &'a [f32; BLOCK])>,
    ) -> [f32; BLOCK] {
        use super::simd128::{load, relu6_lanes, store};
        use core::arch::wasm32::{f32x4_add, f32x4_mul, f32x4_splat, v128};
        const VECTORS: usize = BLOCK / 4;
        let mut acc: [v128; VECTORS] = core::array::from_fn(|i| load(bias, 4 * i));
        for (x, t) in taps {
            for (i, acc) in acc.iter_mut().enumerate() {
                *acc = f32x4_add(*acc, f32x4_mul(load(x, 4 * i), load(t, 4 * i)));
            }
        }
        let (zero, six) = (f32x4_splat(0.0), f32x4_splat(6.0));
        let mut out = [0.0; BLOCK];
        for (i, acc) in acc.into_iter().enumerate() {
            store(&mut out, 4 * i, relu6_lanes(acc, zero, six));
        }
        out
    }
}

#[inline(always)]
fn depthwise_rows<B: Block>(rows: DepthwiseRows<'_>, block: B) {
    let DepthwiseRows {
        layer,
        g,
        input,
        first,
        rows,
    } = rows;
    let c = g.c;
    let (taps, _) = layer.taps.as_chunks::<BLOCK>();
    let (bias, _) = layer.bias.as_chunks::<BLOCK>();
    let blocks = c / BLOCK;
    for (i, out_row) in rows.chunks_exact_mut(g.ow * c).enumerate() {
        let oy = first + i;
        for (ox, o) in out_row.chunks_exact_mut(c).enumerate() {
            // The taps that fall inside the input: (first block of the input pixel, of the tap).
            let mut inside = [(0usize, 0usize); 9];
            let mut count = 0;
            for ky in 0..3 {
                let iy = (oy * g.stride + ky)
                    .checked_sub(g.pad_top)
                    .filter(|&y| y < g.h);
                for kx in 0..3 {
                    let ix = (ox * g.stride + kx)
                        .checked_sub(g.pad_left)
                        .filter(|&x| x < g.w);
                    if let (Some(iy), Some(ix)) = (iy, ix) {
                        inside[count] = ((iy * g.w + ix) * blocks, (ky * 3 + kx) * blocks);
                        count += 1;
                    }
                }
            }
            let (x, _) = input.as_chunks::<BLOCK>();
            let (o, _) = o.as_chunks_mut::<BLOCK>();
            for (b, o) in o.iter_mut().enumerate() {
                let pairs = inside[..count]
                    .iter()
                    .map(|&(pixel, tap)| (&x[pixel + b], &taps[tap + b]));
                *o = block.block(&bias[b], pairs);
            }
        }
    }
}
