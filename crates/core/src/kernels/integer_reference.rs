//! The integer arithmetic of a quantized file in plain loops, one layer at a time: the
//! definition the integer kernels are held to, exactly (every sum is an integer, every
//! rounding is [`super::requantize`]'s).

use super::depthwise::same_padding;
use super::requantize::{Requantization, ResidualAdd, requantize};
use crate::architecture::{ConvKind, INPUT_SIZE};
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
