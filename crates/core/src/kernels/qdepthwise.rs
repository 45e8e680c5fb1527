//! The 3×3 depthwise convolution in a quantized file's own integers: per channel, the nine
//! taps' `(x − input zero point) · weight` summed in int32 with the bias, requantized to
//! uint8. Sixteen channels at a time in plain lanes that the compiler vectorizes for the
//! instruction set [`super::dispatch`] compiles them for.

use super::depthwise::same_padding;
use super::dispatch::{Kernel, dispatch};
use super::isa::CpuKernels;
use super::requantize::Requantization;
use super::rows::for_row_chunks;
use crate::architecture::ConvKind;
use crate::tflite::QuantizedConv;

/// Channels of a block: one AVX-512 register of int32 lanes.
const BLOCK: usize = 16;
const TAPS: usize = 9;

/// A depthwise convolution's weights, widened once, with what finishes each channel.
#[derive(Debug)]
pub struct PackedQDepthwise {
    pub channels: usize,
    pub stride: usize,
    /// `[tap][channel]`, each minus its zero point.
    weights: Vec<i32>,
    /// Per channel: the bias less the input's zero point times the channel's nine weights.
    /// The input is padded with its zero point, so every tap of every pixel counts and the
    /// zero point comes out once, here.
    bias: Vec<i32>,
    input_zero_point: u8,
    requantization: Requantization,
    kernels: CpuKernels,
}

/// The input with a border of its zero point, one pixel wide: every tap of a `SAME`
/// convolution lands inside it.
struct Padded<'a> {
    values: &'a [u8],
    /// Pixels per padded row.
    width: usize,
    /// Where output pixel (0, 0)'s first tap is: `(row, column)` in the padded input.
    origin: (usize, usize),
}

impl PackedQDepthwise {
    /// `None` unless `conv` is a 3×3 depthwise convolution over whole blocks of channels
    /// whose input zero point and folded biases fit.
    pub fn pack(conv: &QuantizedConv, kernels: CpuKernels) -> Option<Self> {
        let c = conv.spec.out_channels;
        let fits = conv.spec.kind == ConvKind::Depthwise
            && conv.spec.kernel == 3
            && c.is_multiple_of(BLOCK)
            && conv.weight.len() == TAPS * c
            && conv.bias.len() == c
            && conv.requantization_scales().iter().all(|s| s.is_finite());
        if !fits {
            return None;
        }
        let zero = conv.input.zero_point;
        let bias = (0..c)
            .map(|ch| {
                let sum: i64 = (0..TAPS).map(|t| i64::from(conv.weight[t * c + ch])).sum();
                i32::try_from(i64::from(conv.bias[ch]) - i64::from(zero) * sum).ok()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            channels: c,
            stride: conv.spec.stride,
            weights: conv.weight.iter().map(|&w| i32::from(w)).collect(),
            bias,
            input_zero_point: u8::try_from(zero).ok()?,
            requantization: Requantization::of(conv),
            kernels: kernels.runnable(),
        })
    }

    /// The convolution of `h × w` activations (NHWC) into `out` (`oh × ow × channels`), with
    /// `padded` as room for the padded input; returns `(oh, ow)`.
    pub fn run(
        &self,
        input: &[u8],
        h: usize,
        w: usize,
        padded: &mut Vec<u8>,
        out: &mut [u8],
    ) -> (usize, usize) {
        let c = self.channels;
        let (oh, pad_top) = same_padding(h, self.stride);
        let (ow, pad_left) = same_padding(w, self.stride);
        let width = w + 2;
        padded.clear();
        padded.resize((h + 2) * width * c, self.input_zero_point);
        for (row, from) in input.chunks_exact(w * c).take(h).enumerate() {
            padded[((row + 1) * width + 1) * c..][..w * c].copy_from_slice(from);
        }
        let padded = Padded {
            values: padded,
            width,
            origin: (1 - pad_top, 1 - pad_left),
        };
        let out = &mut out[..oh * ow * c];
        for_row_chunks(out, ow * c, oh, 1, |first, rows| {
            let kernel = DepthwiseRows {
                conv: self,
                input: &padded,
                ow,
                first,
                out: rows,
            };
            dispatch(self.kernels.isa(), kernel);
        });
        (oh, ow)
    }
}

/// Output rows `first..` of a [`PackedQDepthwise`] into `out`.
struct DepthwiseRows<'a> {
    conv: &'a PackedQDepthwise,
    input: &'a Padded<'a>,
    /// Output pixels per row.
    ow: usize,
    first: usize,
    out: &'a mut [u8],
}

impl Kernel for DepthwiseRows<'_> {
    type Output = ();

    #[inline(always)]
    fn portable(self) -> Self::Output {
        let DepthwiseRows {
            conv,
            input,
            ow,
            first,
            out,
        } = self;
        let (c, stride) = (conv.channels, conv.stride);
        let r = &conv.requantization;
        let finish = r.blocks();
        // Each tap's place relative to a pixel's first, in values.
        let taps: [usize; TAPS] = std::array::from_fn(|t| ((t / 3) * input.width + t % 3) * c);
        for (row, out) in out.chunks_exact_mut(ow * c).enumerate() {
            let oy = first + row;
            let top = (oy * stride + input.origin.0) * input.width;
            for (ox, out) in out.chunks_exact_mut(c).enumerate() {
                let at = (top + ox * stride + input.origin.1) * c;
                let Some(window) = input.values.get(at..at + taps[TAPS - 1] + c) else {
                    continue;
                };
                for b in (0..c).step_by(BLOCK) {
                    let (Some(bias), Some(scales), Some(out)) = (
                        conv.bias[b..].first_chunk::<BLOCK>(),
                        r.scales[b..].first_chunk::<BLOCK>(),
                        out[b..].first_chunk_mut::<BLOCK>(),
                    ) else {
                        continue;
                    };
                    let mut acc = *bias;
                    for (t, &offset) in taps.iter().enumerate() {
                        let (Some(x), Some(wt)) = (
                            window[offset + b..].first_chunk::<BLOCK>(),
                            conv.weights[t * c + b..].first_chunk::<BLOCK>(),
                        ) else {
                            continue;
                        };
                        for ((acc, x), wt) in acc.iter_mut().zip(x).zip(wt) {
                            *acc += i32::from(*x) * wt;
                        }
                    }
                    finish.apply(&acc, scales, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::{Activation, ConvSpec};
    use crate::kernels::integer_reference;
    use crate::tflite::ActivationQuantization;

    fn depthwise(c: usize, stride: usize) -> QuantizedConv {
        QuantizedConv {
            spec: ConvSpec {
                kind: ConvKind::Depthwise,
                in_channels: c,
                out_channels: c,
                kernel: 3,
                stride,
                activation: Activation::Relu6,
            },
            weight: (0..9 * c)
                .map(|i| ((i * 7919 % 511) as i32 - 255) as i16)
                .collect(),
            weight_scale: (0..c).map(|j| 0.01 + 0.001 * j as f32).collect(),
            bias: (0..c).map(|j| (j as i32 * 131) % 3001 - 1500).collect(),
            input: ActivationQuantization {
                scale: 0.02,
                zero_point: 7,
            },
            output: ActivationQuantization {
                scale: 0.03,
                zero_point: 2,
            },
        }
    }

    /// Every path this CPU runs, against the plain loops: stride 1 and 2, odd and even sides
    /// (TF's uneven padding), the smallest image.
    #[test]
    fn each_path_matches_the_plain_loops() {
        for kernels in CpuKernels::ALL
            .into_iter()
            .filter(|k| *k != CpuKernels::Burn && k.is_supported())
        {
            for (c, stride, h, w) in [(16, 1, 5, 7), (32, 2, 8, 6), (48, 2, 7, 7), (16, 1, 1, 1)] {
                let conv = depthwise(c, stride);
                let x: Vec<u8> = (0..h * w * c).map(|i| (i * 37 % 256) as u8).collect();
                let (want, oh, ow) = integer_reference::conv(&x, h, w, &conv);
                let packed = PackedQDepthwise::pack(&conv, kernels).expect("packs");
                let mut got = vec![0u8; want.len()];
                let mut padded = Vec::new();
                assert_eq!(packed.run(&x, h, w, &mut padded, &mut got), (oh, ow));
                assert_eq!(got, want, "{kernels:?} c {c} stride {stride} {h}×{w}");
            }
        }
    }
}
