//! The integer GEMM tile with AVX-512 VNNI: `vpdpbusd` multiplies four uint8 activations by
//! four int8 weights and adds them to an int32 lane, sixteen lanes at a time, and the tile's
//! tail requantizes sixteen channels at a time (see [`super::qgemm`], [`super::qpanels`]).

use core::arch::x86_64::{
    __m512, __m512i, __mmask16, _mm512_add_epi32, _mm512_cvtepi32_ps, _mm512_cvtps_epi32,
    _mm512_dpbusd_epi32, _mm512_loadu_epi8, _mm512_loadu_epi32, _mm512_loadu_ps,
    _mm512_mask_cvtusepi32_storeu_epi8, _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps,
    _mm512_mullo_epi32, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_si512, _mm512_sub_epi32,
};

use super::isa::Avx512Vnni;
use super::qpanels::{DEPTH, PANEL, QPanels};

/// Rows of a tile.
const ROWS: usize = 4;

/// Rows of an integer GEMM (`a`: `rows × k`) into `out` (`rows × n`).
pub(super) fn qgemm_rows(_isa: Avx512Vnni, gemm: &QPanels, a: &[u8], out: &mut [u8]) {
    // SAFETY: an `Avx512Vnni` token is only made by `Avx512::vnni`, from a detected `Avx512`
    // (avx512f, avx2, fma), after this CPU reported avx512bw and avx512vnni: every feature
    // that `rows` enables.
    unsafe { rows(gemm, a, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn rows(g: &QPanels, a: &[u8], out: &mut [u8]) {
    let (k, n) = (g.k, g.n);
    let panels = n.div_ceil(PANEL);
    for (a, out) in a.chunks(ROWS * k).zip(out.chunks_mut(ROWS * n)) {
        let rows = a.len() / k.max(1);
        let sums: [i32; ROWS] = g.row_sums(a);
        let mut p = 0;
        while p + 2 <= panels {
            tile::<2>(g, a, rows, &sums, p, out);
            p += 2;
        }
        if p < panels {
            tile::<1>(g, a, rows, &sums, p, out);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn tile<const P: usize>(
    g: &QPanels,
    a: &[u8],
    rows: usize,
    sums: &[i32; ROWS],
    p: usize,
    out: &mut [u8],
) {
    match rows {
        4 => tile_rows::<P, 4>(g, a, sums, p, out),
        3 => tile_rows::<P, 3>(g, a, sums, p, out),
        2 => tile_rows::<P, 2>(g, a, sums, p, out),
        1 => tile_rows::<P, 1>(g, a, sums, p, out),
        _ => {}
    }
}

/// `R` rows × `P` panels from panel `p`: int32 sums in registers, then finished.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
fn tile_rows<const P: usize, const R: usize>(
    g: &QPanels,
    a: &[u8],
    sums: &[i32; ROWS],
    p: usize,
    out: &mut [u8],
) {
    let k = g.k;
    let panel = PANEL * k;
    let panels = &g.weights[p * panel..][..P * panel];
    let mut acc = [[_mm512_setzero_si512(); P]; R];
    for group in 0..k / DEPTH {
        let w: [__m512i; P] = core::array::from_fn(|q| {
            let w = &panels[q * panel + group * PANEL * DEPTH..][..PANEL * DEPTH];
            // SAFETY: `w` is a live slice of exactly 64 bytes (checked by the indexing
            // above); `loadu` reads unaligned addresses.
            unsafe { _mm512_loadu_epi8(w.as_ptr()) }
        });
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = &a[r * k + group * DEPTH..][..DEPTH];
            let x = _mm512_set1_epi32(i32::from_le_bytes([x[0], x[1], x[2], x[3]]));
            for (acc, w) in acc.iter_mut().zip(&w) {
                *acc = _mm512_dpbusd_epi32(*acc, x, *w);
            }
        }
    }
    let low = _mm512_set1_ps((i32::from(g.min) - g.zero_point) as f32);
    let high = _mm512_set1_ps((i32::from(g.max) - g.zero_point) as f32);
    let zero_point = _mm512_set1_epi32(g.zero_point);
    for (r, acc) in acc.iter().enumerate() {
        for (q, acc) in acc.iter().enumerate() {
            let j = (p + q) * PANEL;
            let bias = &g.bias[j..][..PANEL];
            let scales = &g.scales[j..][..PANEL];
            // SAFETY: `bias` and `scales` are live slices of exactly 16 values (checked by
            // the indexing above); `loadu` reads unaligned addresses.
            let (bias, scales) = unsafe {
                (
                    _mm512_loadu_epi32(bias.as_ptr()),
                    _mm512_loadu_ps(scales.as_ptr()),
                )
            };
            let mut sum = _mm512_add_epi32(*acc, bias);
            if g.offsets {
                let offset = &g.offset[j..][..PANEL];
                // SAFETY: as above, 16 live values.
                let offset = unsafe { _mm512_loadu_epi32(offset.as_ptr()) };
                let taken = _mm512_mullo_epi32(offset, _mm512_set1_epi32(sums[r]));
                sum = _mm512_sub_epi32(sum, taken);
            }
            let v = requantize_lanes(sum, scales, (low, high), zero_point);
            let columns = PANEL.min(g.n - j);
            let row = &mut out[r * g.n + j..][..columns];
            let mask: __mmask16 = (((1u32 << columns) - 1) & 0xffff) as u16;
            // SAFETY: the mask stores only the first `columns` bytes, all inside `row`, a live
            // and exclusively borrowed slice of `columns` bytes.
            unsafe { _mm512_mask_cvtusepi32_storeu_epi8(row.as_mut_ptr().cast(), mask, v) }
        }
    }
}

/// Sixteen int32 sums as [`super::requantize::requantize`] finishes them: times the scale,
/// clamped to `bounds` (the range less the zero point), rounded to nearest even (the default
/// rounding of `cvtps`), plus the zero point.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn requantize_lanes(
    sum: __m512i,
    scales: __m512,
    (low, high): (__m512, __m512),
    zero_point: __m512i,
) -> __m512i {
    let v = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), scales);
    let v = _mm512_min_ps(_mm512_max_ps(v, low), high);
    _mm512_add_epi32(_mm512_cvtps_epi32(v), zero_point)
}
