//! The 3×3 depthwise convolution in a quantized file's own integers: per channel, the nine
//! taps' `(x − input zero point) · weight` summed in int32 with the bias, requantized to
//! uint8. Sixteen channels at a time in plain lanes that the compiler vectorizes for the
//! instruction set [`super::dispatch`] compiles them for.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
mod strip;
#[cfg(target_arch = "x86_64")]
mod vnni;

use strip::{ChannelBlock, LANES, Strip, TAPS};

use super::depthwise::same_padding;
use super::dispatch::{Kernel, dispatch};
use super::isa::CpuKernels;
use super::requantize::{BlockRequantization, Requantization};
use super::rows::for_row_chunks;
use crate::architecture::ConvKind;
use crate::tflite::QuantizedConv;

/// A depthwise convolution's weights, widened once, with what finishes each channel.
#[derive(Debug)]
pub struct PackedQDepthwise {
    pub channels: usize,
    pub stride: usize,
    /// The channels in blocks of [`LANES`]: weights, biases (less the input's zero point
    /// times the channel's nine weights: a tap outside the image reads the zero point,
    /// [`Self::outside`], so every tap of every pixel counts and the zero point comes out once,
    /// here) and scales.
    blocks: Vec<ChannelBlock>,
    /// One pixel of the input's zero point: what a tap outside the image reads (TFLite pads
    /// with it), instead of a padded copy of the whole input.
    outside: Vec<u8>,
    finish: BlockRequantization,
    kernels: CpuKernels,
}

/// The input of a [`PackedQDepthwise`] and where its taps fall.
struct Input<'a> {
    values: &'a [u8],
    h: usize,
    w: usize,
    /// The padding above and left of the image (TF `SAME`).
    pad: (usize, usize),
}

impl PackedQDepthwise {
    /// `None` unless `conv` is a 3×3 depthwise convolution over whole blocks of channels
    /// whose input zero point and folded biases fit.
    pub fn pack(conv: &QuantizedConv, kernels: CpuKernels) -> Option<Self> {
        let c = conv.spec.out_channels;
        let fits = conv.spec.kind == ConvKind::Depthwise
            && conv.spec.kernel == 3
            && c.is_multiple_of(LANES)
            && conv.weight.len() == TAPS * c
            && conv.bias.len() == c;
        let requantization = Requantization::of(conv);
        if !fits || !requantization.is_finite() {
            return None;
        }
        let zero = i64::from(conv.input.zero_point);
        let bias = |ch: usize| {
            let sum: i64 = (0..TAPS).map(|t| i64::from(conv.weight[t * c + ch])).sum();
            i32::try_from(i64::from(conv.bias[ch]) - zero * sum).ok()
        };
        let blocks = (0..c / LANES)
            .map(|b| {
                let first = b * LANES;
                let bias: Vec<i32> = (first..first + LANES).map(bias).collect::<Option<_>>()?;
                Some(ChannelBlock::new(
                    std::array::from_fn(|t| {
                        std::array::from_fn(|l| conv.weight[t * c + first + l])
                    }),
                    bias.try_into().ok()?,
                    std::array::from_fn(|l| requantization.scales[first + l]),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            channels: c,
            stride: conv.spec.stride,
            blocks,
            outside: vec![u8::try_from(conv.input.zero_point).ok()?; c],
            finish: requantization.blocks(),
            kernels: kernels.runnable(),
        })
    }

    /// The convolution of `h × w` activations (NHWC) into `out` (`oh × ow × channels`);
    /// returns `(oh, ow)`.
    pub fn run(&self, input: &[u8], h: usize, w: usize, out: &mut [u8]) -> (usize, usize) {
        let c = self.channels;
        let (oh, pad_top) = same_padding(h, self.stride);
        let (ow, pad_left) = same_padding(w, self.stride);
        let input = Input {
            values: &input[..h * w * c],
            h,
            w,
            pad: (pad_top, pad_left),
        };
        let out = &mut out[..oh * ow * c];
        for_row_chunks(out, ow * c, oh, 1, |first, rows| {
            let kernel = DepthwiseRows {
                conv: self,
                input: &input,
                ow,
                first,
                out: rows,
            };
            dispatch(self.kernels.isa(), kernel);
        });
        (oh, ow)
    }

    /// The nine `channels`-long pixels that output pixel `(oy, ox)` reads, in tap order: the
    /// input's, or [`Self::outside`] where a tap falls off the image.
    #[inline(always)]
    fn taps<'a>(&'a self, input: &Input<'a>, oy: usize, ox: usize) -> [&'a [u8]; TAPS] {
        let c = self.channels;
        let (y, x) = (oy * self.stride, ox * self.stride);
        std::array::from_fn(|t| {
            let (iy, ix) = (
                (y + t / 3).wrapping_sub(input.pad.0),
                (x + t % 3).wrapping_sub(input.pad.1),
            );
            match iy < input.h && ix < input.w {
                true => &input.values[(iy * input.w + ix) * c..][..c],
                false => &self.outside[..],
            }
        })
    }
}

/// Output rows `first..` of a [`PackedQDepthwise`] into `out`.
struct DepthwiseRows<'a> {
    conv: &'a PackedQDepthwise,
    input: &'a Input<'a>,
    /// Output pixels per row.
    ow: usize,
    first: usize,
    out: &'a mut [u8],
}

impl DepthwiseRows<'_> {
    /// The rows, each [`Strip`] run by `strip`: the pixels inside the image straight from the
    /// input, a block of channels at a time across the row; those on its border one by one
    /// from a copy of their taps.
    #[inline(always)]
    fn run(self, strip: impl Fn(Strip<'_>)) {
        let DepthwiseRows {
            conv,
            input,
            ow,
            first,
            out,
        } = self;
        let (c, stride) = (conv.channels, conv.stride);
        let (pad_top, pad_left) = input.pad;
        let inside = conv.inside_columns(input, ow);
        // Each tap's place relative to its pixel's first tap, in the input and in `window`.
        let offsets: [usize; TAPS] = std::array::from_fn(|t| ((t / 3) * input.w + t % 3) * c);
        let mut window = vec![0u8; TAPS * c];
        let window_offsets: [usize; TAPS] = std::array::from_fn(|t| t * c);
        // Every block of channels of `pixels` output pixels from `out[0]` on, whose first
        // taps read `values` from `first` on, `step` apart.
        let blocks = |values: &[u8], taps, first: usize, step, out: &mut [u8], pixels| {
            for (b, block) in conv.blocks.iter().enumerate() {
                strip(Strip {
                    values,
                    taps,
                    first: first + b * LANES,
                    step,
                    block,
                    finish: conv.finish,
                    out: &mut out[b * LANES..],
                    out_step: c,
                    pixels,
                });
            }
        };
        for (row, out) in out.chunks_exact_mut(ow * c).enumerate() {
            let oy = first + row;
            let top = (oy * stride).wrapping_sub(pad_top);
            let inside = match top < input.h && top + 2 < input.h {
                true => inside.clone(),
                false => 0..0,
            };
            for ox in (0..inside.start).chain(inside.end..ow) {
                for (tap, from) in window.chunks_exact_mut(c).zip(conv.taps(input, oy, ox)) {
                    tap.copy_from_slice(from);
                }
                blocks(&window, window_offsets, 0, 0, &mut out[ox * c..], 1);
            }
            if !inside.is_empty() {
                let start = (top * input.w + inside.start * stride - pad_left) * c;
                let out = &mut out[inside.start * c..];
                blocks(input.values, offsets, start, stride * c, out, inside.len());
            }
        }
    }
}

impl Kernel for DepthwiseRows<'_> {
    type Output = ();

    #[inline(always)]
    fn portable(self) -> Self::Output {
        self.run(strip::portable);
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx512_vnni(self, isa: super::isa::Avx512Vnni) -> Self::Output {
        self.run(|s| vnni::strip(isa, s));
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    fn simd128(self, isa: super::isa::Simd128) -> Self::Output {
        self.run(|s| simd128::strip(isa, s));
    }
}

impl PackedQDepthwise {
    /// The output columns whose three taps across all fall inside the image.
    fn inside_columns(&self, input: &Input<'_>, ow: usize) -> std::ops::Range<usize> {
        let (stride, pad_left) = (self.stride, input.pad.1);
        // From the first column at or past the padding to the last whose third tap is in.
        let start = pad_left.div_ceil(stride);
        let end = match (input.w + pad_left).checked_sub(3) {
            Some(last) => (last / stride + 1).min(ow),
            None => 0,
        };
        start..end.max(start)
    }
}
