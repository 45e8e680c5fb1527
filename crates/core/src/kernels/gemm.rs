//! 1×1 convolutions as GEMMs over NHWC pixel rows: `out = act(bias + a · W (+ residual))`.
//!
//! The weights are packed once, in panels of `NR` output channels (`[bias | k × NR]`), so the
//! kernel's accumulators start from the bias and stream one contiguous panel; the activations
//! are read in place (a pixel's channels are contiguous in NHWC). Residual add and ReLU6 happen
//! in the same pass, while the tile is in registers. The tile loop is plain Rust that the
//! compiler vectorizes for each target feature set it is compiled for (see [`super::isa`]),
//! except where the compiler's choice fell short: the AVX-512 tile (`avx512.rs`) and the
//! browser's `simd128` kernels (`simd128.rs`) spell out their vectors in intrinsics.

use super::dispatch::{Kernel, dispatch};
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use super::isa::Simd128;
#[cfg(target_arch = "x86_64")]
use super::isa::{Avx2, Avx512};
use super::isa::{CpuKernels, Isa};
use super::lanes::{Lanes, madd};
use super::rows::for_row_chunks;

/// Output tile of each kernel: `MR` pixels × `NR` channels of accumulators, sized to the
/// registers of its instruction set (32 zmm, 16 ymm, 16 xmm / wasm v128).
#[cfg(target_arch = "x86_64")]
const AVX512_TILE: (usize, usize) = (super::avx512::MR, super::avx512::NR);
#[cfg(target_arch = "x86_64")]
const AVX2_TILE: (usize, usize) = (6, 16);
const PORTABLE_TILE: (usize, usize) = (4, 8);
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
const SIMD128_TILE: (usize, usize) = (4, super::simd128::NR);

fn tile_shape(isa: Isa) -> (usize, usize) {
    match isa {
        Isa::Portable => PORTABLE_TILE,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(_) => AVX2_TILE,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512(_) => AVX512_TILE,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128(_) => SIMD128_TILE,
    }
}

/// A `k × n` weight matrix with its bias, packed for one kernel.
#[derive(Debug, Clone)]
pub struct PackedGemm {
    pub k: usize,
    pub n: usize,
    isa: Isa,
    /// `ceil(n / NR)` panels of `NR + k·NR` values; columns past `n` are zero.
    panels: Vec<f32>,
}

impl PackedGemm {
    /// Packs `weight(kk, j)` (input channel `kk`, output channel `j`) and `bias` for `kernels`.
    pub fn pack(
        k: usize,
        n: usize,
        weight: impl Fn(usize, usize) -> f32,
        bias: &[f32],
        kernels: CpuKernels,
    ) -> Self {
        let isa = kernels.isa();
        let (_, nr) = tile_shape(isa);
        let mut panels = Vec::with_capacity(n.div_ceil(nr) * (nr + k * nr));
        for c0 in (0..n).step_by(nr) {
            panels.extend((0..nr).map(|j| bias.get(c0 + j).copied().unwrap_or(0.0)));
            for kk in 0..k {
                panels.extend((0..nr).map(|j| {
                    let col = c0 + j;
                    if col < n { weight(kk, col) } else { 0.0 }
                }));
            }
        }
        Self { k, n, isa, panels }
    }

    /// `out` (`rows × n`) = `act(bias + a · W (+ residual))`, `a` being `rows × k`.
    pub fn run(&self, a: &[f32], out: &mut [f32], residual: Option<&[f32]>, relu6: bool) {
        let rows = out.len() / self.n;
        assert_eq!(a.len(), rows * self.k, "GEMM input size");
        assert_eq!(out.len(), rows * self.n, "GEMM output size");
        if let Some(r) = residual {
            assert_eq!(r.len(), out.len(), "residual size");
        }
        let (mr, _) = tile_shape(self.isa);
        let (k, n) = (self.k, self.n);
        for_row_chunks(out, n, rows, mr, |first, out| {
            let count = out.len() / n;
            let a = &a[first * k..(first + count) * k];
            let residual = residual.map(|r| &r[first * n..(first + count) * n]);
            let rows = GemmRows {
                packed: self,
                a,
                out,
                residual,
                relu6,
            };
            dispatch(self.isa, rows);
        });
    }
}

/// One run of whole rows of the output.
struct GemmRows<'a> {
    packed: &'a PackedGemm,
    a: &'a [f32],
    out: &'a mut [f32],
    residual: Option<&'a [f32]>,
    relu6: bool,
}

impl Kernel for GemmRows<'_> {
    type Output = ();

    #[inline(always)]
    fn portable(self) {
        gemm_rows::<{ PORTABLE_TILE.0 }, { PORTABLE_TILE.1 }, _>(self, Lanes::<false>);
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx2(self, _isa: Avx2) {
        gemm_rows::<{ AVX2_TILE.0 }, { AVX2_TILE.1 }, _>(self, Lanes::<true>);
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx512(self, isa: Avx512) {
        gemm_rows::<{ AVX512_TILE.0 }, { AVX512_TILE.1 }, _>(self, isa);
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    fn simd128(self, isa: Simd128) {
        gemm_rows::<{ SIMD128_TILE.0 }, { SIMD128_TILE.1 }, _>(self, isa);
    }
}

/// How a tile of `NR` output channels does its multiply-adds.
trait Tile<const NR: usize>: Copy {
    /// `bias` plus the `ROWS` interleaved rows times the panel, each row handed to `emit` while
    /// still in registers.
    fn tile<const ROWS: usize>(
        self,
        a_tile: &[[f32; ROWS]],
        weights: &[[f32; NR]],
        bias: &[f32; NR],
        emit: impl FnMut(usize, &[f32; NR]),
    );

    /// `out = act(acc (+ residual))` for a whole panel's width.
    #[inline(always)]
    fn finish(
        self,
        acc: &[f32; NR],
        out: &mut [f32; NR],
        residual: Option<&[f32; NR]>,
        relu6: bool,
    ) {
        let mut values = *acc;
        if let Some(res) = residual {
            for (v, r) in values.iter_mut().zip(res) {
                *v += r;
            }
        }
        if relu6 {
            for v in values.iter_mut() {
                *v = v.clamp(0.0, 6.0);
            }
        }
        // Element by element: a call to memcpy for a few values cost more than the copy.
        for (o, v) in out.iter_mut().zip(&values) {
            *o = *v;
        }
    }
}

impl<const NR: usize, const FMA: bool> Tile<NR> for Lanes<FMA> {
    #[inline(always)]
    fn tile<const ROWS: usize>(
        self,
        a_tile: &[[f32; ROWS]],
        weights: &[[f32; NR]],
        bias: &[f32; NR],
        mut emit: impl FnMut(usize, &[f32; NR]),
    ) {
        let mut acc = [*bias; ROWS];
        for (x, w) in a_tile.iter().zip(weights) {
            for r in 0..ROWS {
                for j in 0..NR {
                    acc[r][j] = madd::<FMA>(x[r], w[j], acc[r][j]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            emit(r, acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Tile<{ super::avx512::NR }> for Avx512 {
    #[inline(always)]
    fn tile<const ROWS: usize>(
        self,
        a_tile: &[[f32; ROWS]],
        weights: &[[f32; super::avx512::NR]],
        bias: &[f32; super::avx512::NR],
        emit: impl FnMut(usize, &[f32; super::avx512::NR]),
    ) {
        // SAFETY: `self` is an `Avx512` token, which only `Avx512::detect` makes, after this
        // CPU reported avx512f (the feature `gemm_tile` enables).
        unsafe { super::avx512::gemm_tile(a_tile, weights, bias, emit) }
    }

    #[inline(always)]
    fn finish(
        self,
        acc: &[f32; super::avx512::NR],
        out: &mut [f32; super::avx512::NR],
        residual: Option<&[f32; super::avx512::NR]>,
        relu6: bool,
    ) {
        // SAFETY: as in `tile`: the token proves avx512f.
        unsafe { super::avx512::gemm_finish(acc, out, residual, relu6) }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Tile<{ super::simd128::NR }> for Simd128 {
    #[inline(always)]
    fn tile<const ROWS: usize>(
        self,
        a_tile: &[[f32; ROWS]],
        weights: &[[f32; super::simd128::NR]],
        bias: &[f32; super::simd128::NR],
        emit: impl FnMut(usize, &[f32; super::simd128::NR]),
    ) {
        super::simd128::gemm_tile(a_tile, weights, bias, emit);
    }

    #[inline(always)]
    fn finish(
        self,
        acc: &[f32; super::simd128::NR],
        out: &mut [f32; super::simd128::NR],
        residual: Option<&[f32; super::simd128::NR]>,
        relu6: bool,
    ) {
        super::simd128::gemm_finish(acc, out, residual, relu6);
    }
}

/// The tile loop, inlined into each target-feature wrapper so that it is vectorized for it.
#[inline(always)]
fn gemm_rows<const MR: usize, const NR: usize, T: Tile<NR>>(rows: GemmRows<'_>, tile: T) {
    let GemmRows {
        packed,
        a,
        out,
        residual,
        relu6,
    } = rows;
    let (k, n) = (packed.k, packed.n);
    let rows = out.len() / n;
    let full = rows / MR * MR;
    // A tile's rows interleaved (`k × MR`), so the inner loop reads both operands in order.
    let mut a_tile = vec![[0.0f32; MR]; k];
    for r0 in (0..full).step_by(MR) {
        for r in 0..MR {
            let row = r0 + r;
            for (t, x) in a_tile.iter_mut().zip(&a[row * k..(row + 1) * k]) {
                t[r] = *x;
            }
        }
        for (p, panel) in packed.panels.chunks_exact(NR + k * NR).enumerate() {
            let (panel, _) = panel.as_chunks::<NR>();
            tile.tile::<MR>(&a_tile, &panel[1..], &panel[0], |r, acc| {
                let at = (r0 + r) * n + p * NR;
                store(tile, acc, at, n - p * NR, out, residual, relu6);
            });
        }
    }
    // The last rows one at a time (a GEMV each), rather than a tile of mostly wasted rows.
    for row in full..rows {
        let (a_row, _) = a[row * k..(row + 1) * k].as_chunks::<1>();
        for (p, panel) in packed.panels.chunks_exact(NR + k * NR).enumerate() {
            let (panel, _) = panel.as_chunks::<NR>();
            tile.tile::<1>(a_row, &panel[1..], &panel[0], |_, acc| {
                store(
                    tile,
                    acc,
                    row * n + p * NR,
                    n - p * NR,
                    out,
                    residual,
                    relu6,
                );
            });
        }
    }
}

/// Writes one row of a tile (`cols` values of `out` from `at`: a whole panel or the row's last
/// columns), with the residual added and ReLU6 applied; whole panels take the tile's own
/// (vector) path.
#[inline(always)]
fn store<const NR: usize, T: Tile<NR>>(
    tile: T,
    acc: &[f32; NR],
    at: usize,
    cols: usize,
    out: &mut [f32],
    residual: Option<&[f32]>,
    relu6: bool,
) {
    if cols >= NR
        && let Some(out) = out[at..].first_chunk_mut::<NR>()
    {
        let residual = residual.and_then(|r| r[at..].first_chunk::<NR>());
        return tile.finish(acc, out, residual, relu6);
    }
    let mut values = *acc;
    if let Some(res) = residual {
        for (v, r) in values.iter_mut().zip(&res[at..at + cols]) {
            *v += r;
        }
    }
    if relu6 {
        for v in values.iter_mut() {
            *v = v.clamp(0.0, 6.0);
        }
    }
    for (o, v) in out[at..at + cols].iter_mut().zip(&values) {
        *o = *v;
    }
}
