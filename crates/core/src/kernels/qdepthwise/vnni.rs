//! A depthwise [`Strip`] with AVX-512 VNNI: the sixteen channels' nine weights held in
//! registers across the strip. `vpdpwssd` multiplies each uint8 activation,
//! zero-extended to 32 bits, by its weight, sign-extended: the lanes' upper halves are zero
//! on the activations' side, so each lane's pair of 16-bit products is the one product.

use core::arch::x86_64::{
    __m512i, _mm_loadu_si128, _mm_storeu_si128, _mm256_loadu_si256, _mm512_cvtepi16_epi32,
    _mm512_cvtepu8_epi32, _mm512_cvtusepi32_epi8, _mm512_dpwssd_epi32, _mm512_loadu_epi32,
    _mm512_loadu_ps, _mm512_set1_epi32, _mm512_set1_ps,
};

use super::strip::{LANES, Strip, TAPS};
use crate::kernels::isa::Avx512Vnni;
use crate::kernels::vnni::requantize_lanes;

/// Runs `strip`.
pub(super) fn strip(_isa: Avx512Vnni, strip: Strip<'_>) {
    // SAFETY: an `Avx512Vnni` token is only made by `Avx512::vnni`, from a detected `Avx512`
    // (avx512f, avx2, fma), after this CPU reported avx512bw and avx512vnni: every feature
    // that `run` enables.
    unsafe { run(strip) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn run(s: Strip<'_>) {
    let weights: [__m512i; TAPS] = core::array::from_fn(|t| {
        // SAFETY: `s.block.weights[t]` is a live array of 16 `i16` (32 bytes, what the load
        // reads); `loadu` reads unaligned addresses.
        let w = unsafe { _mm256_loadu_si256(s.block.weights[t].as_ptr().cast()) };
        _mm512_cvtepi16_epi32(w)
    });
    // SAFETY: `s.block.bias` and `s.block.scales` are live arrays of 16 four-byte values (64
    // bytes each, what the loads read); `loadu` reads unaligned addresses.
    let (bias, scales) = unsafe {
        (
            _mm512_loadu_epi32(s.block.bias.as_ptr()),
            _mm512_loadu_ps(s.block.scales.as_ptr()),
        )
    };
    let (low, high, zero_point) = s.finish.bounds();
    let (low, high) = (_mm512_set1_ps(low), _mm512_set1_ps(high));
    let zero_point = _mm512_set1_epi32(zero_point);
    let reach = s.reach();
    for p in 0..s.pixels {
        let Some((at, to)) = s.pixel(p, reach) else {
            debug_assert!(false, "a strip reaches past its input or output");
            return;
        };
        let window = &s.values[at..at + reach];
        let out = &mut s.out[to..to + LANES];
        let mut acc = bias;
        for (&tap, w) in s.taps.iter().zip(&weights) {
            // SAFETY: `tap + 16 ≤ reach = window.len()` (`reach` is the largest tap plus 16), so the
            // 16 bytes read lie inside `window`, a live slice; `loadu` reads unaligned.
            let x = unsafe { _mm_loadu_si128(window.as_ptr().add(tap).cast()) };
            acc = _mm512_dpwssd_epi32(acc, _mm512_cvtepu8_epi32(x), *w);
        }
        let v = requantize_lanes(acc, scales, (low, high), zero_point);
        // SAFETY: `out` is a live, exclusively borrowed slice of 16 bytes.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), _mm512_cvtusepi32_epi8(v)) }
    }
}
