//! A depthwise [`Strip`] with wasm `simd128`, two taps at a time: their sixteen channels'
//! activations interleaved byte by byte and widened, so that `i32x4.dot_i16x8_s` multiplies
//! each channel's two activations by its two weights ([`ChannelBlock::pairs`]) and adds them:
//! eight multiply-adds per instruction.
//!
//! [`ChannelBlock::pairs`]: super::strip::ChannelBlock

use core::arch::wasm32::{
    i8x16_shuffle, i16x8_narrow_i32x4, i32x4_add, i32x4_dot_i16x8, u8x16_narrow_i16x8,
    u16x8_extend_high_u8x16, u16x8_extend_low_u8x16, v128, v128_load, v128_store,
};

use super::strip::{LANES, Strip};
use crate::kernels::isa::Simd128;
use crate::kernels::qsimd128::{Bounds, load_i32, requantize_lanes};
use crate::kernels::simd128::load;

/// Runs `strip`.
pub(super) fn strip(_isa: Simd128, s: Strip<'_>) {
    let block = s.block;
    let bias: [v128; 4] = core::array::from_fn(|v| load_i32(&block.bias, 4 * v));
    let scales: [v128; 4] = core::array::from_fn(|v| load(&block.scales, 4 * v));
    let bounds = Bounds::new(s.finish);
    let reach = s.reach();
    for p in 0..s.pixels {
        let Some((at, to)) = s.pixel(p, reach) else {
            debug_assert!(false, "a strip reaches past its input or output");
            return;
        };
        let window = &s.values[at..at + reach];
        let mut acc = bias;
        for (pair, weights) in block.pairs.iter().enumerate() {
            let a = s.taps[2 * pair];
            // The ninth tap pairs with itself; its partner's weights are zero.
            let b = s.taps.get(2 * pair + 1).copied().unwrap_or(a);
            // SAFETY: every tap is at most `reach − 16` (`reach` is the largest tap plus 16)
            // and `window` is `reach` bytes, so both 16-byte loads lie inside it; wasm loads
            // take unaligned addresses. (Raw reads: checked ones cost as much as the
            // arithmetic here.)
            let (a, b) = unsafe {
                (
                    v128_load(window.as_ptr().add(a).cast()),
                    v128_load(window.as_ptr().add(b).cast()),
                )
            };
            let low = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(a, b);
            let high =
                i8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(a, b);
            let x = [
                u16x8_extend_low_u8x16(low),
                u16x8_extend_high_u8x16(low),
                u16x8_extend_low_u8x16(high),
                u16x8_extend_high_u8x16(high),
            ];
            for (v, (acc, x)) in acc.iter_mut().zip(x).enumerate() {
                let w = &weights[8 * v..][..8];
                // SAFETY: `w` is a live slice of exactly 8 i16 (16 bytes), checked by the
                // indexing above; wasm loads take unaligned addresses.
                let w = unsafe { v128_load(w.as_ptr().cast()) };
                *acc = i32x4_add(*acc, i32x4_dot_i16x8(x, w));
            }
        }
        let v: [v128; 4] = core::array::from_fn(|v| requantize_lanes(acc[v], scales[v], bounds));
        // The values are already within 0..=255: the narrowing does not saturate.
        let bytes = u8x16_narrow_i16x8(
            i16x8_narrow_i32x4(v[0], v[1]),
            i16x8_narrow_i32x4(v[2], v[3]),
        );
        let out = &mut s.out[to..to + LANES];
        // SAFETY: `out` is a live, exclusively borrowed slice of 16 bytes, what the store
        // writes; wasm stores take unaligned addresses.
        unsafe { v128_store(out.as_mut_ptr().cast(), bytes) }
    }
}
