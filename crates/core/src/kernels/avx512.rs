//! The GEMM tile written with AVX-512 intrinsics: 512-bit registers, which the compiler does
//! not pick for the portable loops by itself (it keeps to 256 bits there), and 32 of them for
//! the accumulators.

use core::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_max_ps, _mm512_min_ps,
    _mm512_set1_ps, _mm512_storeu_ps,
};

/// Output channels of the tile: two registers.
pub(super) const NR: usize = 32;
/// Pixel rows of the tile: 24 accumulators, with room for the weights and the broadcast.
pub(super) const MR: usize = 12;

/// Sixteen lanes of `values` from `at`.
#[target_feature(enable = "avx512f")]
#[inline]
fn load(values: &[f32], at: usize) -> __m512 {
    let lanes = &values[at..at + 16];
    // SAFETY: `lanes` is a live slice of exactly 16 f32 (64 bytes), checked by the indexing
    // above; `loadu` reads unaligned addresses.
    unsafe { _mm512_loadu_ps(lanes.as_ptr()) }
}

/// Stores `v` into `values[at..at + 16]`.
#[target_feature(enable = "avx512f")]
#[inline]
fn store(values: &mut [f32], at: usize, v: __m512) {
    let lanes = &mut values[at..at + 16];
    // SAFETY: `lanes` is a live, exclusively borrowed slice of exactly 16 f32; `storeu`
    // writes unaligned addresses.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), v) }
}

/// One GEMM tile (see [`super::gemm`]): `bias` plus `ROWS` interleaved rows times the panel,
/// each row handed to `emit` as `NR` values.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn gemm_tile<const ROWS: usize>(
    a_tile: &[[f32; ROWS]],
    weights: &[[f32; NR]],
    bias: &[f32; NR],
    mut emit: impl FnMut(usize, &[f32; NR]),
) {
    let start = [load(bias, 0), load(bias, 16)];
    let mut acc = [start; ROWS];
    for (x, w) in a_tile.iter().zip(weights) {
        let w = [load(w, 0), load(w, 16)];
        for (acc, &x) in acc.iter_mut().zip(x) {
            let x = _mm512_set1_ps(x);
            acc[0] = _mm512_fmadd_ps(x, w[0], acc[0]);
            acc[1] = _mm512_fmadd_ps(x, w[1], acc[1]);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let mut row = [0.0; NR];
        store(&mut row, 0, acc[0]);
        store(&mut row, 16, acc[1]);
        emit(r, &row);
    }
}

/// `out = act(acc (+ residual))`, ReLU6 where `relu6`, a register at a time.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn gemm_finish(
    acc: &[f32; NR],
    out: &mut [f32; NR],
    residual: Option<&[f32; NR]>,
    relu6: bool,
) {
    let (zero, six) = (_mm512_set1_ps(0.0), _mm512_set1_ps(6.0));
    for at in [0, 16] {
        let mut v = load(acc, at);
        if let Some(residual) = residual {
            v = _mm512_add_ps(v, load(residual, at));
        }
        if relu6 {
            v = _mm512_min_ps(six, _mm512_max_ps(zero, v));
        }
        store(out, at, v);
    }
}
