//! The kernels' inner loops written with wasm `simd128` intrinsics, for the browser: the
//! compiler leaves the portable loops mostly scalar there, so the GEMM tile (here) and the
//! depthwise channel block (in `depthwise`, with the lane helpers from here) spell out their
//! 4-lane vectors. Built only where the build enables `simd128`
//! (every wasm build of this project does: `.cargo/config.toml`), which every browser with
//! WebAssembly SIMD runs.

use core::arch::wasm32::{
    f32x4_add, f32x4_mul, f32x4_pmax, f32x4_pmin, f32x4_splat, v128, v128_load, v128_store,
};

/// Output channels of the GEMM tile: two vectors.
pub(super) const NR: usize = 8;

/// Four lanes of `values` from `at`.
#[inline(always)]
pub(super) fn load(values: &[f32], at: usize) -> v128 {
    let lanes = &values[at..at + 4];
    // SAFETY: `lanes` is a live slice of exactly 4 f32 (16 bytes), checked by the indexing
    // above; wasm's `v128.load` reads unaligned addresses, so any f32 slice start is valid.
    unsafe { v128_load(lanes.as_ptr().cast()) }
}

/// Stores `v` into `values[at..at + 4]`.
#[inline(always)]
pub(super) fn store(values: &mut [f32], at: usize, v: v128) {
    let lanes = &mut values[at..at + 4];
    // SAFETY: `lanes` is a live, exclusively borrowed slice of exactly 4 f32 (16 bytes);
    // `v128.store` writes unaligned addresses.
    unsafe { v128_store(lanes.as_mut_ptr().cast(), v) }
}

/// One GEMM tile (see [`super::gemm`]): `bias` plus `ROWS` interleaved rows times the panel,
/// each row handed to `emit` as `NR` values.
#[inline(always)]
pub(super) fn gemm_tile<const ROWS: usize>(
    a_tile: &[[f32; ROWS]],
    weights: &[[f32; NR]],
    bias: &[f32; NR],
    mut emit: impl FnMut(usize, &[f32; NR]),
) {
    let start = [load(bias, 0), load(bias, 4)];
    let mut acc = [start; ROWS];
    for (x, w) in a_tile.iter().zip(weights) {
        let w = [load(w, 0), load(w, 4)];
        for (acc, &x) in acc.iter_mut().zip(x) {
            let x = f32x4_splat(x);
            acc[0] = f32x4_add(acc[0], f32x4_mul(x, w[0]));
            acc[1] = f32x4_add(acc[1], f32x4_mul(x, w[1]));
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let mut row = [0.0; NR];
        store(&mut row, 0, acc[0]);
        store(&mut row, 4, acc[1]);
        emit(r, &row);
    }
}

/// `out = act(acc (+ residual))`, ReLU6 where `relu6`, two vectors at a time.
#[inline(always)]
pub(super) fn gemm_finish(
    acc: &[f32; NR],
    out: &mut [f32; NR],
    residual: Option<&[f32; NR]>,
    relu6: bool,
) {
    let (zero, six) = (f32x4_splat(0.0), f32x4_splat(6.0));
    for at in [0, 4] {
        let mut v = load(acc, at);
        if let Some(residual) = residual {
            v = f32x4_add(v, load(residual, at));
        }
        if relu6 {
            v = relu6_lanes(v, zero, six);
        }
        store(out, at, v);
    }
}

/// ReLU6 on four lanes: pmax/pmin are single instructions (the NaN-propagating min/max are
/// not).
#[inline(always)]
pub(super) fn relu6_lanes(v: v128, zero: v128, six: v128) -> v128 {
    f32x4_pmin(six, f32x4_pmax(zero, v))
}
