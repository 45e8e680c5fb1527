//! A quantized `.tflite` file as its own 8-bit integers: the weights minus their zero points,
//! the int32 biases, and the scale and zero point of every activation the backbone and the
//! classifier produce, for the integer kernels to run the file's own arithmetic.
//!
//! Activations are always read as uint8: an int8 tensor is the same real values with its
//! zero point moved by 128 (`q + 128`, `zero_point + 128`), and TFLite's integer arithmetic
//! only ever uses `q − zero_point`, so one set of kernels serves both kinds of file.

use super::dequantize::stored;
use super::reader::Reader;
use super::schema::{shape, tflite};
use super::weights::ModelError;
use crate::architecture::{Activation, BackboneSpec, ConvKind, ConvSpec, FEATURE_DIM};
use crate::preprocess::InputScaling;

/// How an 8-bit activation maps to real values, as uint8: `real = scale · (q − zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationQuantization {
    pub scale: f32,
    /// In `0..=255`.
    pub zero_point: i32,
}

impl ActivationQuantization {
    /// The real value of `q`.
    pub fn real(self, q: u8) -> f32 {
        self.scale * (i32::from(q) - self.zero_point) as f32
    }

    /// The nearest `q` of a real value, clamped to the 8-bit range.
    pub fn quantize(self, real: f32) -> u8 {
        let q = (real / self.scale).round_ties_even() + self.zero_point as f32;
        q.clamp(0.0, 255.0) as u8
    }

    /// The range of `q` a fused activation keeps, as TFLite computes it
    /// (`CalculateActivationRangeQuantized`): ReLU6 keeps the `q` of `0..=6`.
    pub fn range(self, activation: Activation) -> (u8, u8) {
        match activation {
            Activation::None => (0, 255),
            Activation::Relu6 => {
                let six = self.zero_point as f32 + (6.0 / self.scale).round();
                let top = six.clamp(0.0, 255.0) as u8;
                let bottom = self.zero_point.clamp(0, 255) as u8;
                (bottom, top.max(bottom))
            }
        }
    }
}

/// A convolution in the file's integers.
#[derive(Debug, Clone)]
pub struct QuantizedConv {
    pub spec: ConvSpec,
    /// The stored weights minus their zero point, in the file's layout: `[out, kh, kw, in]`
    /// for a regular convolution, `[kh, kw, channels]` for a depthwise one.
    pub weight: Vec<i16>,
    /// The weights' scale for each output channel.
    pub weight_scale: Vec<f32>,
    /// `[out]`, in steps of `input.scale · weight_scale[c]`.
    pub bias: Vec<i32>,
    pub input: ActivationQuantization,
    pub output: ActivationQuantization,
}

impl QuantizedConv {
    /// What multiplies an output channel's int32 sum into steps of the output:
    /// `input.scale · weight_scale[c] / output.scale`, in float32 as XNNPACK computes it.
    pub fn requantization_scales(&self) -> Vec<f32> {
        self.weight_scale
            .iter()
            .map(|w| self.input.scale * w / self.output.scale)
            .collect()
    }
}

/// An inverted-residual block in the file's integers.
#[derive(Debug, Clone)]
pub struct QuantizedBlock {
    pub expand: Option<QuantizedConv>,
    pub depthwise: QuantizedConv,
    pub project: QuantizedConv,
    /// The residual sum's quantization, for a block that adds its input to its output.
    pub residual: Option<ActivationQuantization>,
}

/// The backbone and the ImageNet classifier of a quantized MobileNetV2 file, in its integers.
#[derive(Debug, Clone)]
pub struct QuantizedMobileNetV2 {
    pub stem: QuantizedConv,
    pub blocks: Vec<QuantizedBlock>,
    pub last: QuantizedConv,
    /// The classifier: pooled features → logits, as a 1×1 convolution.
    pub classifier: QuantizedConv,
    /// How a photo's pixels become the graph's input (before any QUANTIZE of its own).
    pub input_scaling: InputScaling,
}

impl QuantizedMobileNetV2 {
    /// Reads a quantized file's integers; a float32 file, or one whose classifier is not a
    /// single layer, is refused with the reason (it runs in float32).
    pub fn from_tflite(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.is_empty() {
            return Err(ModelError::Empty);
        }
        Self::from_reader(&Reader::parse(bytes)?)
    }

    /// The integers of a file already parsed (the float reader reads them on its way).
    pub(super) fn from_reader(reader: &Reader<'_>) -> Result<Self, ModelError> {
        let ops = reader.checked_ops()?;
        let spec = BackboneSpec::mobilenet_v2();
        let mut convs = spec
            .convs()
            .into_iter()
            .zip(&ops.backbone)
            .map(|(spec, (op, _))| read_conv(reader, spec, *op));
        let mut next = || {
            convs.next().unwrap_or_else(|| {
                Err(ModelError::WrongArchitecture("too few convolutions".into()))
            })
        };
        let stem = next()?;
        let mut adds = ops.adds.iter();
        let mut blocks = Vec::with_capacity(spec.blocks.len());
        for block in &spec.blocks {
            let expand = block.expand.map(|_| next()).transpose()?;
            let depthwise = next()?;
            let project = next()?;
            let residual = match block.residual {
                false => None,
                true => {
                    let add = adds.next().ok_or_else(|| {
                        ModelError::WrongArchitecture("too few residual additions".into())
                    })?;
                    let shortcut = expand.as_ref().unwrap_or(&depthwise).input;
                    Some(read_add(reader, *add, project.output, shortcut)?)
                }
            };
            blocks.push(QuantizedBlock {
                expand,
                depthwise,
                project,
                residual,
            });
        }
        let last = next()?;
        let classifier = match ops.top.as_slice() {
            [(op, _)] => {
                let classifier = ConvSpec {
                    kind: ConvKind::Standard,
                    in_channels: FEATURE_DIM,
                    out_channels: classifier_outputs(reader, *op)?,
                    kernel: 1,
                    stride: 1,
                    activation: Activation::None,
                };
                read_conv(reader, classifier, *op)?
            }
            top => {
                return Err(ModelError::WrongArchitecture(format!(
                    "{} dense layers after the backbone: a classifier Afinar exported, not a base model",
                    top.len()
                )));
            }
        };
        Ok(Self {
            input_scaling: reader.input_scaling()?,
            stem,
            blocks,
            last,
            classifier,
        })
    }

    /// Each pixel value's `q` in the stem's input quantization (the identity for the uint8
    /// file): a photo's input is its pixels looked up here.
    pub fn pixel_table(&self) -> [u8; 256] {
        let s = self.input_scaling;
        std::array::from_fn(|p| {
            self.stem
                .input
                .quantize(s.scale * (p as f32 - s.zero_point))
        })
    }
}

fn corrupt(what: String) -> ModelError {
    ModelError::Corrupt(what)
}

/// An 8-bit activation tensor's quantization, as uint8.
fn activation(tensor: &tflite::Tensor<'_>) -> Result<ActivationQuantization, ModelError> {
    let name = tensor.name().unwrap_or("?");
    let (scale, zero) = tensor
        .quantization()
        .and_then(|q| Some((q.scale()?, q.zero_point()?)))
        .filter(|(s, z)| !s.is_empty() && !z.is_empty())
        .map(|(s, z)| (s.get(0), z.get(0)))
        .ok_or_else(|| {
            ModelError::Unsupported(format!(
                "activation {name} is not quantized: the file runs in float32"
            ))
        })?;
    let zero_point = match tensor.type_() {
        tflite::TensorType::UINT8 => zero,
        tflite::TensorType::INT8 => zero + 128,
        other => {
            return Err(ModelError::Unsupported(format!(
                "activation {name} has type {}, not 8 bits",
                other.variant_name().unwrap_or("unknown")
            )));
        }
    };
    if !(scale.is_finite() && scale > 0.0 && (0..=255).contains(&zero_point)) {
        return Err(corrupt(format!(
            "activation {name} has scale {scale} and zero point {zero}"
        )));
    }
    Ok(ActivationQuantization {
        scale,
        zero_point: zero_point as i32,
    })
}

/// The quantization of an operator's `index`-th input and of its first output.
fn input_and_output(
    reader: &Reader<'_>,
    op: tflite::Operator<'_>,
    index: usize,
) -> Result<(ActivationQuantization, ActivationQuantization), ModelError> {
    let inputs = op
        .inputs()
        .filter(|i| i.len() > index)
        .ok_or_else(|| corrupt("an operator's inputs are missing".into()))?;
    let outputs = op
        .outputs()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| corrupt("an operator's output is missing".into()))?;
    Ok((
        activation(&reader.tensor(inputs.get(index))?)?,
        activation(&reader.tensor(outputs.get(0))?)?,
    ))
}

/// The classifier's output count, from its weights' first dimension.
fn classifier_outputs(reader: &Reader<'_>, op: tflite::Operator<'_>) -> Result<usize, ModelError> {
    let (weight, _) = reader.weight_and_bias_tensors(op)?;
    shape(&weight)?
        .first()
        .copied()
        .filter(|&o| o > 0)
        .ok_or_else(|| ModelError::WrongArchitecture("a classifier without outputs".into()))
}

/// A checked convolution (or the classifier, 1×1 or dense) in the file's integers.
fn read_conv(
    reader: &Reader<'_>,
    spec: ConvSpec,
    op: tflite::Operator<'_>,
) -> Result<QuantizedConv, ModelError> {
    let (weight, bias) = reader.weight_and_bias_tensors(op)?;
    let (weight, bias) = (
        stored(&reader.model, &weight)?,
        stored(&reader.model, &bias)?,
    );
    let out = spec.out_channels;
    let per_group = spec.in_channels / spec.groups();
    let expected = out * per_group * spec.kernel * spec.kernel;
    // Per-channel scales must run along the output channels: the first dimension of a
    // regular convolution's weights, the last of a depthwise one's.
    let channel_axis = match spec.kind {
        ConvKind::Standard => 0,
        ConvKind::Depthwise => weight.shape.len().saturating_sub(1),
    };
    let weight_scale = match (weight.scales(), weight.axis) {
        (Some([one]), _) => vec![*one; out],
        (Some(scales), Some(axis)) if axis == channel_axis && scales.len() == out => {
            scales.to_vec()
        }
        (Some(scales), axis) => {
            return Err(corrupt(format!(
                "weights {} have {} scales along dimension {axis:?}",
                weight.name,
                scales.len()
            )));
        }
        (None, _) => {
            return Err(ModelError::Unsupported(
                "float32 weights: the file runs in float32".into(),
            ));
        }
    };
    if !matches!(
        weight.ty,
        tflite::TensorType::UINT8 | tflite::TensorType::INT8
    ) || bias.ty != tflite::TensorType::INT32
    {
        return Err(ModelError::Unsupported(format!(
            "weights {} are not 8-bit integers with int32 biases",
            weight.name
        )));
    }
    let centered = weight.centered()?;
    let bias = bias.centered()?;
    if centered.len() != expected || bias.len() != out {
        return Err(ModelError::WrongArchitecture(format!(
            "weights {} hold {} values and {} biases, {expected} and {out} expected",
            weight.name,
            centered.len(),
            bias.len()
        )));
    }
    let weight = centered
        .into_iter()
        .map(i16::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            corrupt(format!(
                "weights {} have a zero point out of range",
                weight.name
            ))
        })?;
    let (input, output) = input_and_output(reader, op, 0)?;
    Ok(QuantizedConv {
        spec,
        weight,
        weight_scale,
        bias,
        input,
        output,
    })
}

/// A residual addition's output quantization, after checking that it adds two tensors of the
/// quantizations of the block's output and input, with no activation.
fn read_add(
    reader: &Reader<'_>,
    op: tflite::Operator<'_>,
    project: ActivationQuantization,
    shortcut: ActivationQuantization,
) -> Result<ActivationQuantization, ModelError> {
    let activation = op
        .builtin_options_as_add_options()
        .map_or(tflite::ActivationFunctionType::NONE, |o| {
            o.fused_activation_function()
        });
    let (left, output) = input_and_output(reader, op, 0)?;
    let (right, _) = input_and_output(reader, op, 1)?;
    let adds_the_block =
        (left, right) == (project, shortcut) || (left, right) == (shortcut, project);
    if activation != tflite::ActivationFunctionType::NONE || !adds_the_block {
        return Err(ModelError::WrongArchitecture(
            "a residual addition that does not add a block's input to its output".into(),
        ));
    }
    Ok(output)
}
