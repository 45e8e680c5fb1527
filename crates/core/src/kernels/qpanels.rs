//! How the integer GEMM's weights are laid out once packed ([`super::qgemm`] packs them, the
//! tiles of every instruction set read them): panels of [`PANEL`] output channels ×
//! [`DEPTH`] inputs, 64 bytes, one AVX-512 register in the operand order of a VNNI dot
//! product.

/// Output channels per panel.
pub const PANEL: usize = 16;
/// Inputs per dot product.
pub const DEPTH: usize = 4;

/// Packed int8 weights and what finishes each output channel.
#[derive(Debug)]
pub struct QPanels {
    /// Inputs per row: a multiple of [`DEPTH`].
    pub k: usize,
    pub n: usize,
    /// `n.div_ceil(PANEL)` panels of `k / DEPTH` groups of `PANEL × DEPTH` weights.
    pub weights: Vec<i8>,
    /// Per column, padded to whole panels: the bias less the input's zero point times the
    /// column's weights.
    pub bias: Vec<i32>,
    /// Per column: the offset added to its stored weights (0 where they fit int8 as they are).
    pub offset: Vec<i32>,
    /// Whether any offset is not 0 (then each row's sum is needed).
    pub offsets: bool,
    /// Per column: the requantization's scale.
    pub scales: Vec<f32>,
    pub zero_point: i32,
    pub min: u8,
    pub max: u8,
}

impl QPanels {
    /// The uint8 sum of each of the `k`-long rows of `a` (at most `N`), where a column's
    /// stored weights carry an offset that the sum takes back out; zeros where none does.
    #[inline(always)]
    pub fn row_sums<const N: usize>(&self, a: &[u8]) -> [i32; N] {
        let mut sums = [0i32; N];
        if self.offsets {
            for (s, row) in sums.iter_mut().zip(a.chunks_exact(self.k.max(1))) {
                *s = row.iter().map(|&x| i32::from(x)).sum();
            }
        }
        sums
    }
}
