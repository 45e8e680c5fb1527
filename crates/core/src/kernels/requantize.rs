//! How an int32 sum becomes the next layer's uint8, as XNNPACK (LiteRT's CPU path) does it:
//! the sum times a float32 scale, rounded to nearest even, plus the output's zero point,
//! clamped to the fused activation's range; and the residual add's fixed-point sum. Written
//! once, for the plain loops and for every kernel's tail.

use super::dispatch::Kernel;
use crate::tflite::{ActivationQuantization, QuantizedConv};

/// Requantization of a convolution's output channels.
#[derive(Debug, Clone)]
pub struct Requantization {
    /// Per output channel: `input.scale · weight_scale[c] / output.scale`.
    pub scales: Vec<f32>,
    pub zero_point: i32,
    pub min: u8,
    pub max: u8,
}

impl Requantization {
    /// Its bounds, for blocks of channels.
    pub fn blocks(&self) -> BlockRequantization {
        BlockRequantization::new(self.zero_point, self.min, self.max)
    }

    pub fn of(conv: &QuantizedConv) -> Self {
        let (min, max) = conv.output.range(conv.spec.activation);
        Self {
            scales: conv.requantization_scales(),
            zero_point: conv.output.zero_point,
            min,
            max,
        }
    }

    /// Whether every channel's scale is a number (a crafted file's may not be).
    pub fn is_finite(&self) -> bool {
        self.scales.iter().all(|s| s.is_finite())
    }

    /// Channel `c`'s int32 sum as the output's uint8.
    #[inline]
    pub fn apply(&self, sum: i32, c: usize) -> u8 {
        requantize(sum, self.scales[c], self.zero_point, self.min, self.max)
    }
}

/// `sum · scale`, clamped to `min..=max` less the zero point, rounded to nearest even, plus
/// the zero point. The clamp before the rounding keeps the float far from `i32`'s ends.
#[inline(always)]
pub fn requantize(sum: i32, scale: f32, zero_point: i32, min: u8, max: u8) -> u8 {
    let low = (i32::from(min) - zero_point) as f32;
    let high = (i32::from(max) - zero_point) as f32;
    let v = (sum as f32 * scale).clamp(low, high);
    (round(v) + zero_point) as u8
}

/// 1.5 · 2^23: added to a float of magnitude under 2^22, the sum's last bit is a unit, so the
/// addition itself rounds to the nearest integer, ties to even (and it vectorizes, where
/// `round_ties_even` and a float-to-int cast may not).
pub(super) const MAGIC: f32 = 12_582_912.0;

/// `v` rounded to nearest even, for `|v| < 2^22`.
#[inline(always)]
fn round(v: f32) -> i32 {
    (v + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32
}

/// [`requantize`] for blocks of channels, its bounds worked out once.
#[derive(Debug, Clone, Copy)]
pub struct BlockRequantization {
    low: f32,
    high: f32,
    zero_point: i32,
}

impl BlockRequantization {
    pub fn new(zero_point: i32, min: u8, max: u8) -> Self {
        Self {
            low: (i32::from(min) - zero_point) as f32,
            high: (i32::from(max) - zero_point) as f32,
            zero_point,
        }
    }

    /// The clamp's bounds less the zero point, and the zero point.
    pub fn bounds(self) -> (f32, f32, i32) {
        (self.low, self.high, self.zero_point)
    }

    /// `out[l]` = `sums[l]` requantized with `scales[l]`.
    #[inline(always)]
    pub fn apply<const N: usize>(self, sums: &[i32; N], scales: &[f32; N], out: &mut [u8; N]) {
        // Three plain passes over fixed-size arrays, comparisons rather than `max`/`min`
        // (whose NaN rules cost blends): each pass is a handful of vector instructions.
        let mut v = [0.0f32; N];
        for ((v, sum), scale) in v.iter_mut().zip(sums).zip(scales) {
            let x = *sum as f32 * scale;
            let x = if x < self.low { self.low } else { x };
            *v = if x > self.high { self.high } else { x };
        }
        let mut q = [0i32; N];
        for (q, v) in q.iter_mut().zip(&v) {
            *q = round(*v) + self.zero_point;
        }
        for (o, q) in out.iter_mut().zip(&q) {
            *o = *q as u8;
        }
    }
}

/// A residual addition `out = a + b` in fixed point: `(bias + a·a_multiplier +
/// b·b_multiplier) >> shift`, clamped, plus the output's zero point, where the multipliers
/// carry each input's scale over the output's in about 20 bits.
#[derive(Debug, Clone, Copy)]
pub struct ResidualAdd {
    bias: i32,
    a_multiplier: i32,
    b_multiplier: i32,
    shift: u32,
    zero_point: i32,
}

impl ResidualAdd {
    /// `None` where the scales cannot be carried in 32 bits (one input's scale over 2^8 times
    /// the output's, or under 2^-10 of it): a file of such scales runs in float32.
    pub fn new(
        a: ActivationQuantization,
        b: ActivationQuantization,
        out: ActivationQuantization,
    ) -> Option<Self> {
        let (a_scale, b_scale) = (a.scale / out.scale, b.scale / out.scale);
        let largest = a_scale.max(b_scale);
        if !(largest.is_finite() && (2f32.powi(-10)..2f32.powi(8)).contains(&largest)) {
            return None;
        }
        // The largest multiplier gets 20 bits: room for 255 · 2^20 twice in an i32.
        let exponent = largest.log2().floor() as i32;
        let shift = u32::try_from(20 - exponent).ok()?;
        let multiplier = |s: f32| (s * 2f32.powi(shift as i32)).round_ties_even() as i32;
        let (a_multiplier, b_multiplier) = (multiplier(a_scale), multiplier(b_scale));
        let rounding = 1i32 << (shift - 1);
        Some(Self {
            bias: rounding - a_multiplier * a.zero_point - b_multiplier * b.zero_point,
            a_multiplier,
            b_multiplier,
            shift,
            zero_point: out.zero_point,
        })
    }

    #[inline(always)]
    pub fn apply(&self, a: u8, b: u8) -> u8 {
        let sum = self.bias + i32::from(a) * self.a_multiplier + i32::from(b) * self.b_multiplier;
        ((sum >> self.shift) + self.zero_point).clamp(0, 255) as u8
    }

    /// The kernel that replaces each `a` with its sum with `b`, value by value.
    pub(super) fn rows<'a>(&'a self, a: &'a mut [u8], b: &'a [u8]) -> ResidualRows<'a> {
        ResidualRows { add: self, a, b }
    }
}

/// [`ResidualAdd`] over many values, compiled for each instruction set.
pub(super) struct ResidualRows<'a> {
    add: &'a ResidualAdd,
    a: &'a mut [u8],
    b: &'a [u8],
}

impl Kernel for ResidualRows<'_> {
    type Output = ();

    #[inline(always)]
    fn portable(self) -> Self::Output {
        for (a, b) in self.a.iter_mut().zip(self.b) {
            *a = self.add.apply(*a, *b);
        }
    }
}
