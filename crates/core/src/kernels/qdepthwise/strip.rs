//! A strip of a depthwise convolution's output: sixteen channels of a run of pixels of one
//! row whose taps lie at the same places relative to each pixel. Every pixel runs as part of
//! one: those inside the image straight from the input, those on its border from a copy of
//! their nine taps with the zero point where a tap falls off the image.

use crate::kernels::requantize::BlockRequantization;

/// Channels of a strip: one AVX-512 register of int32 lanes.
pub(super) const LANES: usize = 16;
pub(super) const TAPS: usize = 9;

/// What finishes sixteen channels, packed once.
#[derive(Debug)]
pub(super) struct ChannelBlock {
    /// Per tap, the sixteen channels' weights, each less its zero point. Kept as 16 bits (they
    /// fit: a uint8 less its zero point, or an int8), so that the products are 16 × 16-bit
    /// multiplies rather than 32-bit ones.
    pub weights: [[i16; LANES]; TAPS],
    /// The sixteen channels' biases, the input's zero point folded in.
    pub bias: [i32; LANES],
    pub scales: [f32; LANES],
    /// The weights by pairs of taps (the ninth with a zero), each channel's two side by side:
    /// what `i32x4.dot_i16x8_s` multiplies with two taps' interleaved activations.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub pairs: [[i16; 2 * LANES]; TAP_PAIRS],
}

/// Pairs of taps, the ninth with a zero weight.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) const TAP_PAIRS: usize = TAPS.div_ceil(2);

impl ChannelBlock {
    pub fn new(weights: [[i16; LANES]; TAPS], bias: [i32; LANES], scales: [f32; LANES]) -> Self {
        Self {
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            pairs: std::array::from_fn(|p| {
                std::array::from_fn(|i| {
                    let tap = 2 * p + i % 2;
                    weights.get(tap).map_or(0, |w| w[i / 2])
                })
            }),
            weights,
            bias,
            scales,
        }
    }
}

/// Sixteen channels of a run of output pixels of one row.
pub(super) struct Strip<'a> {
    /// The input activations (NHWC), or a border pixel's nine taps.
    pub values: &'a [u8],
    /// Each tap's place relative to its pixel's first tap, in values.
    pub taps: [usize; TAPS],
    /// Where the strip's first pixel's first tap reads (its first channel).
    pub first: usize,
    /// Values between one pixel's first tap and the next pixel's.
    pub step: usize,
    pub block: &'a ChannelBlock,
    pub finish: BlockRequantization,
    /// The output row's values from the strip's first pixel's first channel on.
    pub out: &'a mut [u8],
    /// Values between one output pixel's channels and the next one's.
    pub out_step: usize,
    pub pixels: usize,
}

impl Strip<'_> {
    /// Values from a pixel's first tap to the end of its farthest: what must lie inside
    /// `values` for each pixel.
    pub fn reach(&self) -> usize {
        self.taps.iter().max().map_or(0, |&t| t + LANES)
    }

    /// Where pixel `p` reads in `values` (its window of `reach` values, [`Self::reach`]) and
    /// writes in `out` (its sixteen channels), where both lie inside them. Plain comparisons,
    /// no `get(..)` chain: the instruction sets' loops hold weights in registers that a call
    /// the compiler leaves out of line would spill at every pixel.
    #[inline(always)]
    pub fn pixel(&self, p: usize, reach: usize) -> Option<(usize, usize)> {
        let (at, to) = (self.first + p * self.step, p * self.out_step);
        (at + reach <= self.values.len() && to + LANES <= self.out.len()).then_some((at, to))
    }
}

/// Runs `s` in plain lanes that the compiler vectorizes for the instruction set it is
/// compiled for.
#[inline(always)]
pub(super) fn portable(s: Strip<'_>) {
    let reach = s.reach();
    for p in 0..s.pixels {
        let (Some(window), Some(out)) = (
            s.values
                .get(s.first + p * s.step..)
                .and_then(|v| v.get(..reach)),
            s.out
                .get_mut(p * s.out_step..)
                .and_then(|o| o.first_chunk_mut::<LANES>()),
        ) else {
            debug_assert!(false, "a strip reaches past its input or output");
            return;
        };
        let mut acc = s.block.bias;
        for (&tap, w) in s.taps.iter().zip(&s.block.weights) {
            let Some(x) = window[tap..].first_chunk::<LANES>() else {
                continue;
            };
            for ((acc, x), w) in acc.iter_mut().zip(x).zip(w) {
                // Wrapping, as the VNNI lanes do: a folded bias near `i32`'s ends plus the taps
                // must not stop a debug build.
                *acc = acc.wrapping_add(i32::from(*x) * i32::from(*w));
            }
        }
        s.finish.apply(&acc, &s.block.scales, out);
    }
}
