//! Plain loops that compute what the kernels compute, one multiply-add at a time in the same
//! order: the definition every kernel is held to, on every instruction set this CPU runs (in
//! the unit tests natively, in `tests/web.rs` in the browser).

use super::depthwise::{PackedDepthwise, same_padding};
use super::gemm::PackedGemm;
use super::isa::CpuKernels;

/// `rows × n` values: `act(bias[j] + Σ_kk a[r·k + kk] · weight(kk, j) (+ residual))`, ReLU6
/// where `relu6`; also each value's magnitude (the sum of its terms' absolute values), which
/// bounds its rounding.
pub fn gemm(
    a: &[f32],
    k: usize,
    n: usize,
    weight: impl Fn(usize, usize) -> f32,
    bias: &[f32],
    residual: Option<&[f32]>,
    relu6: bool,
) -> (Vec<f32>, Vec<f32>) {
    let rows = a.len() / k.max(1);
    let mut out = Vec::with_capacity(rows * n);
    let mut magnitude = Vec::with_capacity(rows * n);
    for r in 0..rows {
        for j in 0..n {
            let (mut v, mut m) = (bias[j], bias[j].abs());
            for kk in 0..k {
                let term = a[r * k + kk] * weight(kk, j);
                v += term;
                m += term.abs();
            }
            if let Some(res) = residual {
                v += res[r * n + j];
                m += res[r * n + j].abs();
            }
            out.push(if relu6 { v.clamp(0.0, 6.0) } else { v });
            magnitude.push(m);
        }
    }
    (out, magnitude)
}

/// A 3×3 depthwise convolution with TF `SAME` padding, bias and ReLU6 over `h × w × c` NHWC
/// `input`; `weight` in Burn's `[C, 1, 3, 3]` layout. Returns the `oh × ow × c` output and
/// each value's magnitude, as [`gemm`].
pub fn depthwise(
    input: &[f32],
    (h, w, c): (usize, usize, usize),
    weight: &[f32],
    bias: &[f32],
    stride: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (oh, pad_top) = same_padding(h, stride);
    let (ow, pad_left) = same_padding(w, stride);
    let mut out = Vec::with_capacity(oh * ow * c);
    let mut magnitude = Vec::with_capacity(oh * ow * c);
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let (mut v, mut m) = (bias[ch], bias[ch].abs());
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (Some(iy), Some(ix)) = (
                            (oy * stride + ky).checked_sub(pad_top),
                            (ox * stride + kx).checked_sub(pad_left),
                        ) else {
                            continue;
                        };
                        if iy < h && ix < w {
                            let term = input[(iy * w + ix) * c + ch] * weight[ch * 9 + ky * 3 + kx];
                            v += term;
                            m += term.abs();
                        }
                    }
                }
                out.push(v.clamp(0.0, 6.0));
                magnitude.push(m);
            }
        }
    }
    (out, magnitude)
}

/// Runs every kernel on `kernels`' instruction set (the portable one where this CPU lacks it)
/// over shapes chosen for their edges (a single row or column, sizes that are not a multiple
/// of a tile, stride 2 on odd sides, the padding, a residual, ReLU6 on values past both of its
/// ends) and compares with the plain loops. Returns how many cases agreed, or the first that
/// did not.
pub fn check_kernels(kernels: CpuKernels) -> Result<usize, String> {
    let mut values = Values(0x2545_f491);
    let mut cases = 0;
    for k in [1, 3, 16, 27, 70] {
        for n in [1, 7, 8, 16, 33, 69] {
            for rows in [1, 5, 12, 13, 37] {
                for (residual, relu6) in
                    [(false, false), (false, true), (true, false), (true, true)]
                {
                    let a = values.take(rows * k, 2.0);
                    let weights = values.take(k * n, 1.0);
                    let bias = values.take(n, 1.0);
                    let res = residual.then(|| values.take(rows * n, 3.0));
                    let weight = |kk: usize, j: usize| weights[kk * n + j];
                    let packed = PackedGemm::pack(k, n, weight, &bias, kernels);
                    let mut out = vec![f32::NAN; rows * n];
                    packed.run(&a, &mut out, res.as_deref(), relu6);
                    let expected = gemm(&a, k, n, weight, &bias, res.as_deref(), relu6);
                    let case =
                        format!("gemm k {k} n {n} rows {rows} residual {residual} relu6 {relu6}");
                    compare(&case, &out, expected)?;
                    cases += 1;
                }
            }
        }
    }
    for c in [16, 48] {
        for (h, w) in [(1, 1), (2, 3), (5, 4), (7, 7), (8, 9)] {
            for stride in [1, 2] {
                let input = values.take(h * w * c, 4.0);
                let weight = values.take(c * 9, 1.0);
                let bias = values.take(c, 1.0);
                let packed = PackedDepthwise::pack(&weight, &bias, stride, kernels)
                    .ok_or("depthwise: channels in whole blocks were refused")?;
                let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
                let mut out = vec![f32::NAN; oh * ow * c];
                let side = packed.run(&input, h, w, &mut out);
                let case = format!("depthwise {h}×{w}×{c} stride {stride}");
                if side != (oh, ow) {
                    return Err(format!("{case}: output side {side:?}, not {:?}", (oh, ow)));
                }
                compare(
                    &case,
                    &out,
                    depthwise(&input, (h, w, c), &weight, &bias, stride),
                )?;
                cases += 1;
            }
        }
    }
    Ok(cases)
}

/// `actual` against the plain loops' values, within the rounding that fused multiply-adds
/// may change (a few units in the last place of the terms' magnitude).
fn compare(
    case: &str,
    actual: &[f32],
    (expected, magnitude): (Vec<f32>, Vec<f32>),
) -> Result<(), String> {
    if actual.len() != expected.len() {
        return Err(format!(
            "{case}: {} values, not {}",
            actual.len(),
            expected.len()
        ));
    }
    for (i, ((a, e), m)) in actual.iter().zip(&expected).zip(&magnitude).enumerate() {
        let tolerance = 1e-6 * (1.0 + m);
        // NaN (a value never written) fails too.
        let close = (a - e).abs() <= tolerance;
        if !close {
            return Err(format!(
                "{case}: value {i} is {a}, the plain loop gives {e}"
            ));
        }
    }
    Ok(())
}

/// A fixed stream of values in `[-scale, scale)` (the same on every machine).
struct Values(u32);

impl Values {
    fn take(&mut self, count: usize, scale: f32) -> Vec<f32> {
        (0..count)
            .map(|_| {
                // xorshift32
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 17;
                self.0 ^= self.0 << 5;
                (self.0 >> 8) as f32 / (1u32 << 23) as f32 * scale - scale
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_loops_compute_known_values() {
        // [1 2; 3 4] · [1 0 -1; 2 1 0] + [0.5 0 1]
        let (a, w) = ([1.0, 2.0, 3.0, 4.0], [1.0, 0.0, -1.0, 2.0, 1.0, 0.0]);
        let (out, _) = gemm(
            &a,
            2,
            3,
            |kk, j| w[kk * 3 + j],
            &[0.5, 0.0, 1.0],
            None,
            false,
        );
        assert_eq!(out, [5.5, 2.0, 0.0, 11.5, 4.0, -2.0]);
        let (out, _) = gemm(
            &a,
            2,
            3,
            |kk, j| w[kk * 3 + j],
            &[0.5, 0.0, 1.0],
            None,
            true,
        );
        assert_eq!(out, [5.5, 2.0, 0.0, 6.0, 4.0, 0.0]);
        // A 2×2 single-channel image, all taps 1: each output sums its padded neighbourhood.
        let (out, _) = depthwise(&[1.0, 2.0, 3.0, 4.0], (2, 2, 1), &[1.0; 9], &[0.0], 1);
        assert_eq!(out, [6.0, 6.0, 6.0, 6.0]);
        let (out, _) = depthwise(&[0.1, 0.2, 0.3, 0.4], (2, 2, 1), &[1.0; 9], &[0.0], 2);
        assert!((out[0] - 1.0).abs() < 1e-6, "{out:?}");
    }

    #[test]
    fn every_path_this_cpu_runs_matches_the_plain_loops() {
        let paths: Vec<_> = CpuKernels::ALL
            .into_iter()
            .filter(|k| *k != CpuKernels::Burn && k.is_supported())
            .collect();
        assert!(paths.contains(&CpuKernels::Portable));
        for kernels in paths {
            let cases =
                check_kernels(kernels).unwrap_or_else(|e| panic!("{}: {e}", kernels.name()));
            println!(
                "kernels {}: {cases} cases as the plain loops",
                kernels.name()
            );
        }
    }
}
