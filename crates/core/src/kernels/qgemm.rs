//! 1×1 convolutions (and the stem's 3×3 patches) in a quantized file's own integers: uint8
//! activations times 8-bit weights, summed in int32 with the bias, requantized to the next
//! layer's uint8 in the same pass ([`super::requantize`]).
//!
//! Weights are packed once, in panels of [`PANEL`] output channels × [`DEPTH`] inputs: 64
//! bytes, one AVX-512 register in the operand order of a VNNI dot product. A channel's weights
//! minus their zero point span up to `-255..=255`; each channel is stored plus the offset that
//! brings it into int8, and the offset times the row's sum is taken back out of the sum.

use super::dispatch::{Kernel, dispatch};
use super::isa::CpuKernels;
use super::qpanels::{DEPTH, PANEL, QPanels};
use super::requantize::{Requantization, ResidualAdd, requantize};
use super::rows::for_row_chunks;
use crate::tflite::QuantizedConv;

/// Rows (output pixels) per tile.
const ROWS: usize = 4;

/// A GEMM's int8 weights in panels, with what finishes each output channel, for one path.
#[derive(Debug)]
pub struct PackedQGemm {
    panels: QPanels,
    kernels: CpuKernels,
}

impl PackedQGemm {
    /// Packs `k × n` weights given as `weight(kk, j)`, each minus its zero point, with the
    /// int32 `bias`, the input's zero point and the output's requantization. `None` where `k`
    /// is not a multiple of [`DEPTH`], a channel's weights span more than 8 bits, its bias
    /// overflows or its scale is not a number.
    pub fn pack(
        k: usize,
        n: usize,
        weight: impl Fn(usize, usize) -> i16,
        bias: &[i32],
        input_zero_point: i32,
        requantization: &Requantization,
        kernels: CpuKernels,
    ) -> Option<Self> {
        if !k.is_multiple_of(DEPTH)
            || bias.len() != n
            || requantization.scales.len() != n
            || !requantization.is_finite()
        {
            return None;
        }
        let padded = n.div_ceil(PANEL) * PANEL;
        let mut offset = vec![0i32; padded];
        let mut folded = vec![0i32; padded];
        for j in 0..n {
            let (low, high, sum) = (0..k)
                .map(|kk| i32::from(weight(kk, j)))
                .fold((i32::MAX, i32::MIN, 0i64), |(lo, hi, s), w| {
                    (lo.min(w), hi.max(w), s + i64::from(w))
                });
            offset[j] = if k == 0 || (low >= -128 && high <= 127) {
                0
            } else {
                -128 - low
            };
            if k > 0 && high + offset[j] > 127 {
                return None;
            }
            let b = i64::from(bias[j]) - i64::from(input_zero_point) * sum;
            folded[j] = i32::try_from(b).ok()?;
        }
        let mut panels = vec![0i8; padded * k];
        for (p, panel) in panels.chunks_exact_mut(PANEL * k).enumerate() {
            for (g, group) in panel.chunks_exact_mut(PANEL * DEPTH).enumerate() {
                for (c, column) in group.chunks_exact_mut(DEPTH).enumerate() {
                    let j = p * PANEL + c;
                    if j < n {
                        for (t, w) in column.iter_mut().enumerate() {
                            // In range: checked above for every weight of the column.
                            *w = (i32::from(weight(g * DEPTH + t, j)) + offset[j]) as i8;
                        }
                    }
                }
            }
        }
        let mut scales = requantization.scales.clone();
        scales.resize(padded, 0.0);
        Some(Self {
            panels: QPanels {
                k,
                n,
                weights: panels,
                bias: folded,
                offsets: offset.iter().any(|&o| o != 0),
                offset,
                scales,
                zero_point: requantization.zero_point,
                min: requantization.min,
                max: requantization.max,
            },
            kernels: kernels.runnable(),
        })
    }

    /// A 1×1 convolution's weights (`[out, in]`, the file's layout) as a GEMM; `None` as
    /// [`Self::pack`].
    pub fn pointwise(conv: &QuantizedConv, kernels: CpuKernels) -> Option<Self> {
        let (k, n) = (conv.spec.in_channels, conv.spec.out_channels);
        Self::pack(
            k,
            n,
            |kk, j| conv.weight[j * k + kk],
            &conv.bias,
            conv.input.zero_point,
            &Requantization::of(conv),
            kernels,
        )
    }

    /// Inputs per row.
    pub fn k(&self) -> usize {
        self.panels.k
    }

    /// Outputs per row.
    pub fn n(&self) -> usize {
        self.panels.n
    }

    /// `out[r·n + j]` for every row `r` of `a` (`rows × k` uint8), split over the cores.
    pub fn run(&self, a: &[u8], out: &mut [u8]) {
        self.run_rows(a, out, None);
    }

    /// [`Self::run`], then `add` of `shortcut` (`rows × n`, the block's input) to each row,
    /// while the rows are still in the core's cache.
    pub fn run_adding(&self, a: &[u8], out: &mut [u8], add: &ResidualAdd, shortcut: &[u8]) {
        self.run_rows(a, out, Some((add, shortcut)));
    }

    fn run_rows(&self, a: &[u8], out: &mut [u8], residual: Option<(&ResidualAdd, &[u8])>) {
        let (k, n) = (self.panels.k, self.panels.n);
        let rows = a.len() / k.max(1);
        let out = &mut out[..rows * n];
        for_row_chunks(out, n, rows, ROWS, |first, out| {
            let rows = out.len() / n;
            let a = &a[first * k..][..rows * k];
            let gemm = &self.panels;
            let isa = self.kernels.isa();
            dispatch(isa, QGemmRows { gemm, a, out });
            if let Some((add, shortcut)) = residual {
                let shortcut = &shortcut[first * n..][..rows * n];
                dispatch(isa, add.rows(out, shortcut));
            }
        });
    }
}

impl QPanels {
    fn panel(&self, p: usize) -> &[i8] {
        &self.weights[p * PANEL * self.k..][..PANEL * self.k]
    }

    /// The finished column `j` of a row whose dot product with the stored weights is `sum`
    /// and whose uint8 sum is `row_sum`.
    #[inline(always)]
    fn finish(&self, sum: i32, row_sum: i32, j: usize) -> u8 {
        let sum = sum + self.bias[j] - self.offset[j] * row_sum;
        requantize(sum, self.scales[j], self.zero_point, self.min, self.max)
    }
}

/// Some rows of a [`PackedQGemm`]: `a` holds them, `out` receives them.
struct QGemmRows<'a> {
    gemm: &'a QPanels,
    a: &'a [u8],
    out: &'a mut [u8],
}

impl Kernel for QGemmRows<'_> {
    type Output = ();

    #[inline(always)]
    fn portable(self) -> Self::Output {
        let QGemmRows { gemm, a, out } = self;
        let (k, n) = (gemm.k, gemm.n);
        for (a, out) in a.chunks(ROWS * k).zip(out.chunks_mut(ROWS * n)) {
            let rows = a.len() / k.max(1);
            let sums: [i32; ROWS] = gemm.row_sums(a);
            for p in 0..n.div_ceil(PANEL) {
                let panel = gemm.panel(p);
                let mut acc = [[0i32; PANEL]; ROWS];
                for (g, group) in panel.chunks_exact(PANEL * DEPTH).enumerate() {
                    for (r, acc) in acc.iter_mut().enumerate().take(rows) {
                        let x = &a[r * k + g * DEPTH..][..DEPTH];
                        for (acc, column) in acc.iter_mut().zip(group.chunks_exact(DEPTH)) {
                            for (x, w) in x.iter().zip(column) {
                                *acc += i32::from(*x) * i32::from(*w);
                            }
                        }
                    }
                }
                let columns = PANEL.min(n - p * PANEL);
                for (r, acc) in acc.iter().enumerate().take(rows) {
                    for (c, sum) in acc.iter().enumerate().take(columns) {
                        let j = p * PANEL + c;
                        out[r * n + j] = gemm.finish(*sum, sums[r], j);
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx512_vnni(self, isa: super::isa::Avx512Vnni) -> Self::Output {
        super::vnni::qgemm_rows(isa, self.gemm, self.a, self.out);
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    fn simd128(self, isa: super::isa::Simd128) -> Self::Output {
        super::qsimd128::qgemm_rows(isa, self.gemm, self.a, self.out);
    }
}
