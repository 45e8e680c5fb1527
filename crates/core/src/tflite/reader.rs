//! Reads a MobileNetV2 1.0/224 `.tflite` file into float32 weights in Burn's layout.
//!
//! The flatbuffer is parsed (and verified) with the TFLite schema bindings ([`super::schema`]);
//! nothing here walks raw bytes by hand. Convolutions are matched to the architecture
//! by execution order and every shape is checked, so a file of another network is refused with
//! a message instead of producing nonsense.

use super::dequantize::{FloatTensor, dequantize};
use super::error::ModelError;
use super::schema::{at, builtin_code, shape, tflite};
use super::weights::{ConvWeights, DenseWeights};
use crate::architecture::{
    Activation, BACKBONE_CONVS, BackboneSpec, ConvKind, ConvSpec, FEATURE_DIM, INPUT_SIZE,
    RESIDUAL_ADDS,
};
use crate::preprocess::InputScaling;

fn corrupt(what: &str) -> ModelError {
    ModelError::Corrupt(format!("{what} is missing"))
}

/// A parsed `.tflite` file, read layer by layer.
pub(super) struct Reader<'a> {
    pub model: tflite::Model<'a>,
}

/// The operators of a MobileNetV2 graph, checked against the architecture.
pub(super) struct CheckedOps<'a> {
    /// The 52 backbone convolutions in execution order, each with its weights' shape as stored.
    pub backbone: Vec<(tflite::Operator<'a>, [usize; 4])>,
    /// The layers above the backbone, each with whether it is a 1×1 conv.
    pub top: Vec<(tflite::Operator<'a>, bool)>,
    /// The residual additions in execution order.
    pub adds: Vec<tflite::Operator<'a>>,
}

/// An operator of the graph, by kind, with its options.
enum Op<'a> {
    Conv(tflite::Operator<'a>, ConvKind),
    FullyConnected(tflite::Operator<'a>),
    Add(tflite::Operator<'a>),
    Other,
}

impl<'a> Reader<'a> {
    /// Checks the file's identifier and verifies the flatbuffer.
    pub(super) fn parse(bytes: &'a [u8]) -> Result<Self, ModelError> {
        if bytes.len() < 8 || !tflite::model_buffer_has_identifier(bytes) {
            return Err(ModelError::NotTflite);
        }
        let model = tflite::root_as_model(bytes).map_err(|e| ModelError::Corrupt(e.to_string()))?;
        Ok(Self { model })
    }

    pub(super) fn subgraph(&self) -> Result<tflite::SubGraph<'a>, ModelError> {
        let subgraphs = self
            .model
            .subgraphs()
            .ok_or_else(|| corrupt("subgraph list"))?;
        if subgraphs.is_empty() {
            return Err(corrupt("main subgraph"));
        }
        Ok(subgraphs.get(0))
    }

    pub(super) fn tensor(&self, index: i32) -> Result<tflite::Tensor<'a>, ModelError> {
        let tensors = self
            .subgraph()?
            .tensors()
            .ok_or_else(|| corrupt("tensor list"))?;
        at(tensors, index.into(), "tensor")
    }

    fn operators(&self) -> Result<Vec<Op<'a>>, ModelError> {
        let codes = self
            .model
            .operator_codes()
            .ok_or_else(|| corrupt("operator code list"))?;
        let ops = self
            .subgraph()?
            .operators()
            .ok_or_else(|| corrupt("operator list"))?;
        ops.iter()
            .map(|op| {
                let code = at(codes, op.opcode_index().into(), "operator code")?;
                Ok(match builtin_code(code) {
                    tflite::BuiltinOperator::CONV_2D => Op::Conv(op, ConvKind::Standard),
                    tflite::BuiltinOperator::DEPTHWISE_CONV_2D => Op::Conv(op, ConvKind::Depthwise),
                    tflite::BuiltinOperator::FULLY_CONNECTED => Op::FullyConnected(op),
                    tflite::BuiltinOperator::ADD => Op::Add(op),
                    _ => Op::Other,
                })
            })
            .collect()
    }

    /// The 52 backbone convolutions and the classifier, checked against the architecture.
    pub(super) fn layers(&self) -> Result<(Vec<ConvWeights>, DenseWeights), ModelError> {
        let (backbone, top) = self.backbone_and_top()?;
        match top.as_slice() {
            [(op, conv)] => Ok((backbone, self.classifier(*op, *conv, FEATURE_DIM)?)),
            _ => Err(ModelError::WrongArchitecture(format!(
                "{} dense layers after the backbone: a classifier Afinar exported, not a base model",
                top.len()
            ))),
        }
    }

    /// The backbone's convolutions (checked against the architecture, then read) and the
    /// layers above them, each with whether it is a 1×1 conv: one classifier (a 1×1 conv or a
    /// dense layer), or the two dense layers of a head in a classifier Afinar exported.
    #[allow(clippy::type_complexity)]
    pub(super) fn backbone_and_top(
        &self,
    ) -> Result<(Vec<ConvWeights>, Vec<(tflite::Operator<'a>, bool)>), ModelError> {
        let checked = self.checked_ops()?;
        let backbone = BackboneSpec::mobilenet_v2()
            .convs()
            .iter()
            .zip(&checked.backbone)
            .map(|(spec, (op, file_shape))| self.load_conv(*spec, *op, *file_shape))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((backbone, checked.top))
    }

    /// The graph's operators, checked against the architecture (no weights read yet).
    pub(super) fn checked_ops(&self) -> Result<CheckedOps<'a>, ModelError> {
        let ops = self.operators()?;
        let adds: Vec<_> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Add(op) => Some(*op),
                _ => None,
            })
            .collect();
        if adds.len() != RESIDUAL_ADDS {
            return Err(ModelError::WrongArchitecture(format!(
                "{} residual additions, MobileNetV2 has {RESIDUAL_ADDS}",
                adds.len()
            )));
        }
        let convs: Vec<_> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Conv(op, kind) => Some((*op, *kind)),
                _ => None,
            })
            .collect();
        let fully_connected: Vec<_> = ops
            .iter()
            .filter_map(|op| match op {
                Op::FullyConnected(op) => Some(*op),
                _ => None,
            })
            .collect();
        // The classifier is a 1×1 conv (TF-slim and TF2 exports) or a dense layer (Keras).
        let expected_convs = BACKBONE_CONVS + usize::from(fully_connected.is_empty());
        if convs.len() != expected_convs || fully_connected.len() > 2 {
            return Err(ModelError::WrongArchitecture(format!(
                "{} convolutions and {} dense layers, MobileNetV2 has {BACKBONE_CONVS} convolutions and a 1×1 conv or dense classifier",
                convs.len(),
                fully_connected.len()
            )));
        }
        let specs = BackboneSpec::mobilenet_v2().convs();
        let backbone = specs
            .iter()
            .zip(&convs)
            .enumerate()
            .map(|(i, (spec, (op, kind)))| Ok((*op, self.check_conv(i, *spec, *op, *kind)?)))
            .collect::<Result<Vec<_>, ModelError>>()?;
        let top = match fully_connected.is_empty() {
            true => vec![(convs[BACKBONE_CONVS].0, true)],
            false => fully_connected.into_iter().map(|op| (op, false)).collect(),
        };
        Ok(CheckedOps {
            backbone,
            top,
            adds,
        })
    }

    /// Checks a convolution's kind, options and shapes against the architecture (no weights are
    /// read yet, so a file of another network gets an architecture error, not a data error).
    /// Returns the weight shape as stored in the file.
    fn check_conv(
        &self,
        index: usize,
        spec: ConvSpec,
        op: tflite::Operator<'a>,
        kind: ConvKind,
    ) -> Result<[usize; 4], ModelError> {
        let wrong = |what: String| {
            ModelError::WrongArchitecture(format!("convolution {index}: {what}, expected {spec:?}"))
        };
        if kind != spec.kind {
            return Err(wrong(format!("found a {kind:?} convolution")));
        }
        // The two option tables have these fields in common, but no trait to reach them by.
        macro_rules! padding_stride_activation {
            ($options:expr, $what:literal) => {{
                let o = $options.ok_or_else(|| corrupt($what))?;
                let dilation = (o.dilation_h_factor(), o.dilation_w_factor());
                if dilation != (1, 1) {
                    return Err(wrong(format!("dilation {dilation:?}")));
                }
                let stride = (o.stride_h(), o.stride_w());
                (o.padding(), stride, o.fused_activation_function())
            }};
        }
        let (padding, stride, activation) = match kind {
            ConvKind::Standard => {
                padding_stride_activation!(op.builtin_options_as_conv_2_doptions(), "conv options")
            }
            ConvKind::Depthwise => padding_stride_activation!(
                op.builtin_options_as_depthwise_conv_2_doptions(),
                "depthwise conv options"
            ),
        };
        let stride_wanted = i32::try_from(spec.stride).unwrap_or(i32::MAX);
        if stride != (stride_wanted, stride_wanted) {
            return Err(wrong(format!("stride {stride:?}")));
        }
        if padding != tflite::Padding::SAME {
            return Err(ModelError::Unsupported(format!(
                "convolution {index} uses {} padding; only SAME is supported",
                padding.variant_name().unwrap_or("unknown")
            )));
        }
        let activation = match activation {
            tflite::ActivationFunctionType::NONE => Activation::None,
            tflite::ActivationFunctionType::RELU6 => Activation::Relu6,
            other => {
                return Err(wrong(format!(
                    "activation {}",
                    other.variant_name().unwrap_or("unknown")
                )));
            }
        };
        if activation != spec.activation {
            return Err(wrong(format!("activation {activation:?}")));
        }
        let [out, _, kh, kw] = spec.weight_shape();
        // TFLite: regular conv OHWI, depthwise 1HWC. Burn: OIHW, depthwise C1HW.
        let file_shape = match kind {
            ConvKind::Standard => [out, kh, kw, spec.in_channels],
            ConvKind::Depthwise => [1, kh, kw, out],
        };
        let (weight, bias) = self.weight_and_bias_tensors(op)?;
        let (weight_shape, bias_shape) = (shape(&weight)?, shape(&bias)?);
        if weight_shape != file_shape || bias_shape != [out] {
            return Err(wrong(format!(
                "weight shape {weight_shape:?} and bias shape {bias_shape:?}"
            )));
        }
        Ok(file_shape)
    }

    /// Dequantizes a checked convolution into Burn's layout.
    fn load_conv(
        &self,
        spec: ConvSpec,
        op: tflite::Operator<'a>,
        file_shape: [usize; 4],
    ) -> Result<ConvWeights, ModelError> {
        let (weight, bias) = self.weight_and_bias(op)?;
        Ok(ConvWeights {
            spec,
            weight: permute_to_oihw(weight.values, file_shape),
            bias: bias.values,
        })
    }

    /// The classifier, as `[in, out]`. `conv` tells whether it is a 1×1 conv (`[out,1,1,in]`)
    /// or a dense layer (`[out, in]`); both store the weights output-major.
    pub(super) fn classifier(
        &self,
        op: tflite::Operator<'a>,
        conv: bool,
        expected_inputs: usize,
    ) -> Result<DenseWeights, ModelError> {
        let (weight, bias) = self.weight_and_bias(op)?;
        let (outputs, inputs) = match (conv, weight.shape.as_slice()) {
            (true, [o, 1, 1, i]) | (false, [o, i]) => (*o, *i),
            (_, shape) => {
                return Err(ModelError::WrongArchitecture(format!(
                    "classifier weight shape {shape:?}"
                )));
            }
        };
        if inputs != expected_inputs || outputs == 0 || bias.shape != [outputs] {
            return Err(ModelError::WrongArchitecture(format!(
                "classifier maps {inputs} features to {outputs} outputs (bias {:?}); {expected_inputs} expected",
                bias.shape
            )));
        }
        let mut transposed = vec![0.0; weight.values.len()];
        for o in 0..outputs {
            for i in 0..inputs {
                transposed[i * outputs + o] = weight.values[o * inputs + i];
            }
        }
        Ok(DenseWeights {
            weight: transposed,
            bias: bias.values,
            inputs,
            outputs,
        })
    }

    pub(super) fn weight_and_bias_tensors(
        &self,
        op: tflite::Operator<'a>,
    ) -> Result<(tflite::Tensor<'a>, tflite::Tensor<'a>), ModelError> {
        let inputs = op.inputs().ok_or_else(|| corrupt("operator inputs"))?;
        if inputs.len() < 3 || inputs.get(2) < 0 {
            return Err(ModelError::WrongArchitecture(
                "a convolution without weights and bias".into(),
            ));
        }
        Ok((self.tensor(inputs.get(1))?, self.tensor(inputs.get(2))?))
    }

    fn weight_and_bias(
        &self,
        op: tflite::Operator<'a>,
    ) -> Result<(FloatTensor, FloatTensor), ModelError> {
        let (weight, bias) = self.weight_and_bias_tensors(op)?;
        Ok((
            dequantize(&self.model, &weight)?,
            dequantize(&self.model, &bias)?,
        ))
    }

    /// The input tensor's quantization tells how pixels become real values.
    pub(super) fn input_scaling(&self) -> Result<InputScaling, ModelError> {
        let subgraph = self.subgraph()?;
        let inputs = subgraph.inputs().ok_or_else(|| corrupt("graph inputs"))?;
        if inputs.len() != 1 {
            return Err(ModelError::WrongArchitecture(format!(
                "{} graph inputs, expected one image",
                inputs.len()
            )));
        }
        let input = self.tensor(inputs.get(0))?;
        let shape = shape(&input)?;
        let side = INPUT_SIZE;
        if shape.len() != 4 || shape[1..] != [side, side, 3] {
            return Err(ModelError::WrongArchitecture(format!(
                "input shape {shape:?}, expected [1, {side}, {side}, 3]"
            )));
        }
        let quantization = input
            .quantization()
            .and_then(|q| Some((q.scale()?, q.zero_point()?)))
            .filter(|(s, z)| s.len() == 1 && z.len() == 1);
        // A float input's quantization, if any, is not used.
        if let Some((scale, _)) = quantization
            && input.type_() != tflite::TensorType::FLOAT32
            && !(scale.get(0).is_finite() && scale.get(0) > 0.0)
        {
            return Err(ModelError::Corrupt(format!(
                "the input's quantization scale is {}",
                scale.get(0)
            )));
        }
        match (input.type_(), quantization) {
            (tflite::TensorType::FLOAT32, _) => Ok(InputScaling::MOBILENET),
            (tflite::TensorType::UINT8, Some((scale, zero))) => Ok(InputScaling {
                scale: scale.get(0),
                zero_point: zero.get(0) as f32,
            }),
            // An int8 input stores p - 128: the same real value for pixel p.
            (tflite::TensorType::INT8, Some((scale, zero))) => Ok(InputScaling {
                scale: scale.get(0),
                zero_point: zero.get(0) as f32 + 128.0,
            }),
            (ty, _) => Err(ModelError::Unsupported(format!(
                "input of type {} without one scale and zero point",
                ty.variant_name().unwrap_or("unknown")
            ))),
        }
    }
}

/// `[a, b, c, d]` row-major → `[a, d, b, c]`: OHWI → OIHW, and 1HWC → 1CHW, which for a
/// depthwise kernel is the same memory as Burn's `[C, 1, H, W]`.
fn permute_to_oihw(values: Vec<f32>, [a, b, c, d]: [usize; 4]) -> Vec<f32> {
    debug_assert_eq!(values.len(), a * b * c * d);
    // A 1×1 kernel (most of the weights): the two layouts are the same.
    if b * c == 1 {
        return values;
    }
    let mut out = vec![0.0; values.len()];
    for ia in 0..a {
        for ib in 0..b {
            for ic in 0..c {
                for id in 0..d {
                    out[((ia * d + id) * b + ib) * c + ic] =
                        values[((ia * b + ib) * c + ic) * d + id];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tflite::weights::MobileNetV2Weights;

    #[test]
    fn permute_moves_the_channel_axis_second() {
        // [1, 1, 2, 3] OHWI: w=0 → (0,1,2), w=1 → (3,4,5); OIHW puts channels before width.
        let v: Vec<f32> = (0..6).map(|x| x as f32).collect();
        assert_eq!(
            permute_to_oihw(v.clone(), [1, 1, 2, 3]),
            [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        // A 1×1 kernel: [2, 1, 1, 3] OHWI is [2, 3, 1, 1] OIHW as it is.
        assert_eq!(permute_to_oihw(v.clone(), [2, 1, 1, 3]), v);
    }

    /// A model of one float32 tensor of `shape` whose buffer holds `bytes`.
    #[test]
    fn garbage_is_refused_without_panicking() {
        assert_eq!(
            MobileNetV2Weights::from_tflite(&[]).unwrap_err(),
            ModelError::Empty
        );
        assert_eq!(
            MobileNetV2Weights::from_tflite(b"\x89PNG\r\n\x1a\n0000").unwrap_err(),
            ModelError::NotTflite
        );
        let mut fake = vec![0u8; 64];
        fake[4..8].copy_from_slice(b"TFL3");
        assert!(matches!(
            MobileNetV2Weights::from_tflite(&fake),
            Err(ModelError::Corrupt(_))
        ));
    }
}
