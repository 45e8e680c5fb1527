//! The integer arithmetic of a quantized file in plain loops, one layer at a time: the
//! definition the integer kernels are held to, exactly (every sum is an integer, every
//! rounding is [`super::requantize`]'s), on every instruction set this CPU runs (in the unit
//! tests natively, in `tests/web.rs` in the browser).

use super::depthwise::same_padding;
use super::isa::CpuKernels;
use super::qdepthwise::PackedQDepthwise;
use super::qgemm::PackedQGemm;
use super::requantize::{Requantization, ResidualAdd, requantize};
use crate::architecture::{Activation, ConvKind, ConvSpec, INPUT_SIZE};
use crate::tflite::{ActivationQuantization, QuantizedConv, QuantizedMobileNetV2};

/// A convolution (regular or depthwise, any kernel size and stride, TF `SAME` padding) on
/// `h × w` uint8 activations (NHWC): positions outside the image count as the input's zero
/// point, as TFLite pads. Returns the output and its side lengths.
pub fn conv(input: &[u8], h: usize, w: usize, conv: &QuantizedConv) -> (Vec<u8>, usize, usize) {
    let spec = conv.spec;
    let requantization = Requantization::of(conv);
    let (k, stride, cin, cout) = (
        spec.kernel,
        spec.stride,
        spec.in_channels,
        spec.out_channels,
    );
    let (oh, pad_top) = pad(h, k, stride);
    let (ow, pad_left) = pad(w, k, stride);
    let zero = conv.input.zero_point;
    let mut out = Vec::with_capacity(oh * ow * cout);
    for oy in 0..oh {
        for ox in 0..ow {
            for o in 0..cout {
                let mut sum = conv.bias[o];
                for ky in 0..k {
                    let Some(iy) = (oy * stride + ky).checked_sub(pad_top).filter(|&y| y < h)
                    else {
                        continue;
                    };
                    for kx in 0..k {
                        let Some(ix) = (ox * stride + kx).checked_sub(pad_left).filter(|&x| x < w)
                        else {
                            continue;
                        };
                        let pixel = &input[(iy * w + ix) * cin..][..cin];
                        match spec.kind {
                            ConvKind::Standard => {
                                let weights = &conv.weight[((o * k + ky) * k + kx) * cin..][..cin];
                                for (x, wt) in pixel.iter().zip(weights) {
                                    sum += (i32::from(*x) - zero) * i32::from(*wt);
                                }
                            }
                            ConvKind::Depthwise => {
                                let wt = conv.weight[(ky * k + kx) * cout + o];
                                sum += (i32::from(pixel[o]) - zero) * i32::from(wt);
                            }
                        }
                    }
                }
                out.push(requantization.apply(sum, o));
            }
        }
    }
    (out, oh, ow)
}

/// TF `SAME` padding of a `k`-wide kernel: the output length and the padding before.
fn pad(input: usize, k: usize, stride: usize) -> (usize, usize) {
    if k == 3 {
        return same_padding(input, stride);
    }
    let output = input.div_ceil(stride);
    let total = ((output - 1) * stride + k).saturating_sub(input);
    (output, total / 2)
}

/// `a + b` element by element ([`ResidualAdd`]).
pub fn add(a: &[u8], b: &[u8], add: &ResidualAdd) -> Vec<u8> {
    a.iter().zip(b).map(|(a, b)| add.apply(*a, *b)).collect()
}

/// The mean over positions of `c`-channel activations `x` (of quantization `input`): as real
/// values (the head's features), and requantized to `out` as XNNPACK's global average pooling
/// does (the classifier's input).
pub fn pool(
    x: &[u8],
    c: usize,
    input: ActivationQuantization,
    out: ActivationQuantization,
) -> (Vec<f32>, Vec<u8>) {
    let positions = x.len() / c.max(1);
    let mut sums = vec![0u32; c];
    for pixel in x.chunks_exact(c.max(1)) {
        for (sum, q) in sums.iter_mut().zip(pixel) {
            *sum += u32::from(*q);
        }
    }
    let real = sums
        .iter()
        .map(|&sum| input.scale * (sum as f32 / positions as f32 - input.zero_point as f32))
        .collect();
    let scale = input.scale / (out.scale * positions as f32);
    let offset = positions as i32 * input.zero_point;
    let requantized = sums
        .iter()
        .map(|&sum| requantize(sum as i32 - offset, scale, out.zero_point, 0, 255))
        .collect();
    (real, requantized)
}

/// What the integer path gives for one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegerOutputs {
    /// The real mean of the last conv's output over positions: the head's features.
    pub pooled: Vec<f32>,
    /// The classifier's uint8 logits, in the steps of its output quantization.
    pub logits: Vec<u8>,
}

/// The whole quantized network on one photo's uint8 input (`224 × 224 × 3`, already in the
/// input's quantization).
pub fn forward(model: &QuantizedMobileNetV2, input: &[u8]) -> Option<IntegerOutputs> {
    let (mut x, mut h, mut w) = conv(input, INPUT_SIZE, INPUT_SIZE, &model.stem);
    for block in &model.blocks {
        let block_input = x.clone();
        let expanded = match &block.expand {
            Some(expand) => conv(&x, h, w, expand).0,
            None => x,
        };
        let (filtered, oh, ow) = conv(&expanded, h, w, &block.depthwise);
        let (projected, _, _) = conv(&filtered, oh, ow, &block.project);
        x = match block.residual {
            Some(sum) => {
                let shortcut = block.expand.as_ref().unwrap_or(&block.depthwise).input;
                let residual = ResidualAdd::new(block.project.output, shortcut, sum)?;
                add(&projected, &block_input, &residual)
            }
            None => projected,
        };
        (h, w) = (oh, ow);
    }
    let (last, _, _) = conv(&x, h, w, &model.last);
    let c = model.last.spec.out_channels;
    let (pooled, pooled_q) = pool(&last, c, model.last.output, model.classifier.input);
    let (logits, _, _) = conv(&pooled_q, 1, 1, &model.classifier);
    Some(IntegerOutputs { pooled, logits })
}

/// Runs every integer kernel on `kernels`' instruction set (the portable one where this CPU
/// lacks it) over shapes chosen for their edges (one row, channel counts that are not a whole
/// panel, weights that fit int8 and ones that need an offset, stride 1 and 2 on odd and even
/// sides, the smallest images, a residual add) and compares with the plain loops, exactly.
/// Returns how many cases agreed, or the first that did not.
pub fn check_kernels(kernels: CpuKernels) -> Result<usize, String> {
    let mut cases = 0;
    let compare = |case: String, got: &[u8], want: &[u8]| match got == want {
        true => Ok(()),
        false => {
            let at = got.iter().zip(want).position(|(a, b)| a != b);
            Err(format!(
                "{case}: differs first at {at:?} (of {})",
                want.len()
            ))
        }
    };
    let add = ResidualAdd::new(
        quantization(0.1, 120),
        quantization(0.07, 9),
        quantization(0.12, 100),
    )
    .ok_or("the residual's scales were refused")?;
    for (k, n, low, high, relu6, rows) in [
        (16, 24, -128, 127, true, 1),
        (24, 144, -120, 135, false, 7),
        (96, 1001, -255, 0, true, 13),
        (4, 16, 0, 255, true, 4),
        (8, 8, -200, 50, false, 3),
        (36, 40, -120, 135, false, 11),
    ] {
        let conv = pointwise(k, n, low, high, relu6);
        let x = values(rows * k, 31);
        let (want, _, _) = self::conv(&x, 1, rows, &conv);
        let packed = PackedQGemm::pointwise(&conv, kernels).ok_or("a GEMM was refused")?;
        let mut got = vec![0u8; rows * n];
        packed.run(&x, &mut got);
        compare(format!("gemm k {k} n {n} rows {rows}"), &got, &want)?;
        let shortcut = values(rows * n, 53);
        let want = self::add(&want, &shortcut, &add);
        packed.run_adding(&x, &mut got, &add, &shortcut);
        compare(format!("gemm + add k {k} n {n} rows {rows}"), &got, &want)?;
        cases += 2;
    }
    for (c, stride, h, w) in [
        (16, 1, 5, 7),
        (32, 2, 8, 6),
        (48, 2, 7, 7),
        (16, 1, 1, 1),
        (16, 2, 1, 1),
        (16, 2, 2, 2),
        (32, 1, 2, 2),
        (16, 1, 3, 3),
        (16, 2, 3, 4),
        (64, 1, 9, 5),
    ] {
        let conv = depthwise(c, stride);
        let x = values(h * w * c, 37);
        let (want, oh, ow) = self::conv(&x, h, w, &conv);
        let packed = PackedQDepthwise::pack(&conv, kernels).ok_or("a depthwise was refused")?;
        let mut got = vec![0u8; want.len()];
        let case = format!("depthwise {h}×{w}×{c} stride {stride}");
        if packed.run(&x, h, w, &mut got) != (oh, ow) {
            return Err(format!("{case}: the output's side is not {oh}×{ow}"));
        }
        compare(case, &got, &want)?;
        cases += 1;
    }
    Ok(cases)
}

fn quantization(scale: f32, zero_point: i32) -> ActivationQuantization {
    ActivationQuantization { scale, zero_point }
}

/// `count` values that cover the uint8 range, `step` apart (mod 256).
fn values(count: usize, step: usize) -> Vec<u8> {
    (0..count).map(|i| (i * step % 256) as u8).collect()
}

/// A 1×1 convolution of `k → n` channels with weights spread as a quantized file's are
/// (`low..=high` minus their zero point), per-channel scales, and ReLU6 or none.
fn pointwise(k: usize, n: usize, low: i32, high: i32, relu6: bool) -> QuantizedConv {
    let span = (high - low + 1) as usize;
    QuantizedConv {
        spec: ConvSpec {
            kind: ConvKind::Standard,
            in_channels: k,
            out_channels: n,
            kernel: 1,
            stride: 1,
            activation: match relu6 {
                true => Activation::Relu6,
                false => Activation::None,
            },
        },
        weight: (0..k * n)
            .map(|i| (low + ((i * 7919 + i / 3) % span) as i32) as i16)
            .collect(),
        weight_scale: (0..n).map(|j| 0.002 + 0.0001 * j as f32).collect(),
        bias: (0..n).map(|j| (j as i32 * 997) % 4001 - 2000).collect(),
        input: quantization(0.05, 3),
        output: quantization(0.1, 120),
    }
}

/// A 3×3 depthwise convolution of `c` channels, weights over the whole 9-bit span.
fn depthwise(c: usize, stride: usize) -> QuantizedConv {
    QuantizedConv {
        spec: ConvSpec {
            kind: ConvKind::Depthwise,
            in_channels: c,
            out_channels: c,
            kernel: 3,
            stride,
            activation: Activation::Relu6,
        },
        weight: (0..9 * c)
            .map(|i| ((i * 7919 % 511) as i32 - 255) as i16)
            .collect(),
        weight_scale: (0..c).map(|j| 0.01 + 0.001 * j as f32).collect(),
        bias: (0..c).map(|j| (j as i32 * 131) % 3001 - 1500).collect(),
        input: quantization(0.02, 7),
        output: quantization(0.03, 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path this CPU runs.
    #[test]
    fn every_path_this_cpu_runs_matches_the_plain_loops() {
        for kernels in CpuKernels::ALL
            .into_iter()
            .filter(|k| *k != CpuKernels::Burn && k.is_supported())
        {
            let cases = check_kernels(kernels).unwrap_or_else(|e| panic!("{kernels:?}: {e}"));
            assert!(cases > 0);
        }
    }
}
