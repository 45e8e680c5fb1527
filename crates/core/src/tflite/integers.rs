//! Reads a quantized file's integers ([`super::quantized`]) from a parsed file, layer by layer
//! in the order the float reader checked, every count bounded before anything is made.

use super::dequantize::stored;
use super::error::ModelError;
use super::quantized::{
    ActivationQuantization, QuantizedBlock, QuantizedConv, QuantizedMobileNetV2,
};
use super::reader::Reader;
use super::schema::{shape, tflite};
use crate::architecture::{Activation, BackboneSpec, ConvKind, ConvSpec, FEATURE_DIM};

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
}

fn corrupt(what: String) -> ModelError {
    ModelError::Corrupt(what)
}

/// The largest bias the integer kernels take (real files reach about 2^28): with it, a sum of
/// 1280 products of 8-bit values and the zero points' corrections (each under 2^27) stays
/// inside an i32.
const MAX_BIAS: u32 = 1 << 30;

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
        tflite::TensorType::INT8 => zero.saturating_add(128),
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
    let per_group = spec.in_channels / spec.groups().max(1);
    let expected = [per_group, spec.kernel, spec.kernel]
        .iter()
        .try_fold(out, |acc, &d| acc.checked_mul(d));
    // Every count below comes from the file: the weights must hold what the shape says
    // before anything of that size is made.
    if expected != Some(weight.shape.iter().product::<usize>()) || bias.shape != [out] {
        return Err(ModelError::WrongArchitecture(format!(
            "weights {} of shape {:?} and biases of shape {:?} for {spec:?}",
            weight.name, weight.shape, bias.shape
        )));
    }
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
    // A bias this large is no real model's, and would let the int32 sums overflow.
    if bias.iter().any(|b| b.unsigned_abs() > MAX_BIAS) {
        return Err(corrupt(format!("biases of {} out of range", weight.name)));
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
