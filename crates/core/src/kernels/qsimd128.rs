//! The integer GEMM tile with wasm `simd128`: `i32x4.dot_i16x8_s` multiplies eight pairs of
//! 16-bit values and adds each pair, eight multiply-adds in one instruction (float32 takes two
//! for four). It reads the panels the VNNI tile reads (see [`super::qpanels`]): the eight
//! weights of two columns' groups of four inputs, sign-extended, against the row's four
//! inputs twice, give each column two partial sums, added once the row's inputs are done.

use core::arch::wasm32::{
    f32x4_add, f32x4_convert_i32x4, f32x4_mul, f32x4_pmax, f32x4_pmin, f32x4_splat,
    i16x8_load_extend_i8x8, i16x8_narrow_i32x4, i32x4_add, i32x4_dot_i16x8, i32x4_mul,
    i32x4_shuffle, i32x4_splat, i32x4_sub, u8x16_narrow_i16x8, u16x8_extend_low_u8x16, v128,
    v128_load, v128_load32_splat, v128_store, v128_store64_lane,
};

use super::isa::Simd128;
use super::qpanels::{DEPTH, PANEL, QPanels};
use super::requantize::{BlockRequantization, MAGIC};
use super::simd128::load;

/// Rows of a tile.
const ROWS: usize = 2;
/// Columns of a tile: half a panel, in four vectors of two columns' partial sums.
const COLUMNS: usize = 8;
/// Vectors of sums per row of a tile.
const PAIRS: usize = COLUMNS / 2;

/// Rows of an integer GEMM (`a`: `rows × k`) into `out` (`rows × n`).
pub(super) fn qgemm_rows(_isa: Simd128, g: &QPanels, a: &[u8], out: &mut [u8]) {
    let (k, n) = (g.k, g.n);
    for (a, out) in a.chunks(ROWS * k).zip(out.chunks_mut(ROWS * n)) {
        let rows = a.len() / k.max(1);
        let sums: [i32; ROWS] = g.row_sums(a);
        for first in (0..n).step_by(COLUMNS) {
            match rows {
                2 => tile::<2>(g, a, &sums, first, out),
                1 => tile::<1>(g, a, &sums, first, out),
                _ => {}
            }
        }
    }
}

/// `R` rows × the [`COLUMNS`] columns from `first` (a multiple of [`COLUMNS`]).
#[inline(always)]
fn tile<const R: usize>(g: &QPanels, a: &[u8], sums: &[i32; ROWS], first: usize, out: &mut [u8]) {
    let k = g.k;
    let panel = &g.weights[first / PANEL * PANEL * k..][..PANEL * k];
    // The tile's columns within each group of the panel.
    let half = first % PANEL * DEPTH;
    let rows: [&[u8]; R] = core::array::from_fn(|r| &a[r * k..][..k]);
    let mut acc = [[i32x4_splat(0); PAIRS]; R];
    // Raw reads in the loop: checked indexing there costs as many instructions as the
    // arithmetic.
    let (weights, rows) = (panel.as_ptr(), rows.map(<[u8]>::as_ptr));
    for group in 0..k / DEPTH {
        // SAFETY: `panel` holds `k / DEPTH` groups of `PANEL × DEPTH` bytes (sliced to
        // `PANEL · k` above); `half + COLUMNS · DEPTH ≤ PANEL · DEPTH`, so each 8-byte load
        // lies inside this group; wasm loads take unaligned addresses.
        let w: [v128; PAIRS] = core::array::from_fn(|q| unsafe {
            let at = group * PANEL * DEPTH + half + q * 2 * DEPTH;
            i16x8_load_extend_i8x8(weights.add(at))
        });
        for (acc, row) in acc.iter_mut().zip(rows) {
            // SAFETY: each row is `k` bytes (sliced above) and `group · DEPTH + DEPTH ≤ k`, so
            // the 4 bytes read lie inside it; wasm loads take unaligned addresses.
            let x = unsafe { v128_load32_splat(row.add(group * DEPTH).cast()) };
            let x = u16x8_extend_low_u8x16(x);
            for (acc, w) in acc.iter_mut().zip(&w) {
                *acc = i32x4_add(*acc, i32x4_dot_i16x8(x, *w));
            }
        }
    }
    let bounds = Bounds::new(BlockRequantization::new(g.zero_point, g.min, g.max));
    let columns = COLUMNS.min(g.n - first);
    // What finishes the tile's columns, four at a time, for all its rows.
    let bias = [0, 4].map(|h| load_i32(&g.bias, first + h));
    let scales = [0, 4].map(|h| load(&g.scales, first + h));
    let offset = [0, 4].map(|h| load_i32(&g.offset, first + h));
    for (r, &[a, b, c, d]) in acc.iter().enumerate() {
        // Each column's two partial sums added, four columns at a time, and finished. (Named
        // vectors, not an array indexed in a closure: the compiler kept such an array in
        // memory and cleared it with `memory.fill`, a call out of the compiled code, per tile.)
        let finish = |x: v128, y: v128, h: usize| {
            let sum = i32x4_add(
                i32x4_shuffle::<0, 2, 4, 6>(x, y),
                i32x4_shuffle::<1, 3, 5, 7>(x, y),
            );
            let mut sum = i32x4_add(sum, bias[h]);
            if g.offsets {
                sum = i32x4_sub(sum, i32x4_mul(offset[h], i32x4_splat(sums[r])));
            }
            requantize_lanes(sum, scales[h], bounds)
        };
        let v = [finish(a, b, 0), finish(c, d, 1)];
        // The values are already within 0..=255: the narrowing does not saturate.
        let bytes = u8x16_narrow_i16x8(i16x8_narrow_i32x4(v[0], v[1]), i32x4_splat(0));
        let out = &mut out[r * g.n + first..][..columns];
        if let Ok(out) = <&mut [u8; COLUMNS]>::try_from(&mut *out) {
            // SAFETY: `out` is a live, exclusively borrowed array of 8 bytes, what the store
            // writes; wasm stores take unaligned addresses.
            unsafe { v128_store64_lane::<0>(bytes, out.as_mut_ptr().cast()) };
        } else {
            // The last columns of a row whose width is not a whole tile. Stored by a plain
            // copy, not `v128.store` of the whole tile past the row's end.
            let mut row = [0u8; 16];
            // SAFETY: `row` is a live, exclusively borrowed array of 16 bytes, what the store
            // writes; wasm stores take unaligned addresses.
            unsafe { v128_store(row.as_mut_ptr().cast(), bytes) };
            out.copy_from_slice(&row[..out.len()]);
        }
    }
}

/// Four int32 lanes of `values` from `at`.
#[inline(always)]
pub(super) fn load_i32(values: &[i32], at: usize) -> v128 {
    let lanes = &values[at..at + 4];
    // SAFETY: `lanes` is a live slice of exactly 4 i32 (16 bytes), checked by the indexing
    // above; wasm loads take unaligned addresses.
    unsafe { v128_load(lanes.as_ptr().cast()) }
}

/// The clamp of a requantization less its zero point, and what rounds and adds the zero point
/// ([`MAGIC`]'s float, and its bits less the zero point), in lanes.
#[derive(Clone, Copy)]
pub(super) struct Bounds {
    low: v128,
    high: v128,
    magic: v128,
    magic_less_zero_point: v128,
}

impl Bounds {
    #[inline(always)]
    pub(super) fn new(requantization: BlockRequantization) -> Self {
        let (low, high, zero_point) = requantization.bounds();
        Self {
            low: f32x4_splat(low),
            high: f32x4_splat(high),
            magic: f32x4_splat(MAGIC),
            magic_less_zero_point: i32x4_splat(MAGIC.to_bits() as i32 - zero_point),
        }
    }
}

/// Four int32 sums as [`super::requantize::requantize`] finishes them: times the scale,
/// clamped (pmax/pmin are single instructions; no lane is NaN), rounded to nearest even and
/// the zero point added by [`MAGIC`]'s addition (two instructions, where `f32x4.nearest` and
/// `i32x4.trunc_sat_f32x4_s` take several).
#[inline(always)]
pub(super) fn requantize_lanes(sum: v128, scales: v128, b: Bounds) -> v128 {
    let v = f32x4_mul(f32x4_convert_i32x4(sum), scales);
    let v = f32x4_pmin(b.high, f32x4_pmax(b.low, v));
    i32x4_sub(f32x4_add(v, b.magic), b.magic_less_zero_point)
}
