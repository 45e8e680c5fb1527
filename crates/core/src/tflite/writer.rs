//! Writes a classifier (MobileNetV2's backbone, a dense head, softmax) as a `.tflite` file,
//! with the TFLite schema bindings the reader uses: the graph LiteRT and MediaPipe run.
//! Either every layer is float32, or the layers below the freeze boundary are the base model
//! file's own (quantized ops and buffers kept, [`super::cut`]) and only the trained part is
//! float32.
//!
//! Activations are NHWC as TFLite wants them; weights arrive in Burn's layout
//! ([`ConvWeights`], [`DenseWeights`]) and are transposed here.

use super::cut::{self, BaseError};
use super::graph::Graph;
use super::schema::tflite;
use super::weights::{ConvWeights, DenseWeights};
use crate::architecture::{Activation, BACKBONE_CONVS, BackboneSpec, ConvKind, INPUT_SIZE};

/// A dense layer of the head, with its activation.
#[derive(Debug, Clone)]
pub struct DenseLayer {
    pub weights: DenseWeights,
    pub relu: bool,
}

/// Everything a classifier file holds.
#[derive(Debug, Clone)]
pub struct ClassifierGraph<'a> {
    /// The 52 backbone convolutions in execution order (stem, blocks, last 1×1); those below
    /// a kept base are not written.
    pub convs: &'a [ConvWeights],
    /// Dense layers from the pooled features to the logits.
    pub head: &'a [DenseLayer],
    /// The base model file whose layers below the last `unfrozen` blocks are copied as they are
    /// (`None`: every layer in float32 from `convs`).
    pub kept_base: Option<KeptBase<'a>>,
    /// Written into the file's description, for people reading it.
    pub description: &'a str,
    /// A `TFLITE_METADATA` flatbuffer ([`super::metadata`]) to carry, if any.
    pub metadata: Option<&'a [u8]>,
}

/// The part of a base model file a classifier keeps.
#[derive(Debug, Clone, Copy)]
pub struct KeptBase<'a> {
    /// The `.tflite` file's bytes.
    pub file: &'a [u8],
    /// Blocks above the boundary, trained (0: the whole backbone is kept, up to its last 1×1
    /// conv).
    pub unfrozen: usize,
}

/// Why a classifier cannot be written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WriteError {
    #[error("the backbone has {0} convolutions where MobileNetV2 has 52")]
    ConvCount(usize),
    #[error("convolution {index} is not the shape MobileNetV2 has there")]
    ConvShape { index: usize },
    #[error("dense layer {index} has {values} weights for {inputs} × {outputs}")]
    DenseShape {
        index: usize,
        values: usize,
        inputs: usize,
        outputs: usize,
    },
    #[error("the head has no layer")]
    NoHead,
    #[error("the base model's layers cannot be kept: {0}")]
    Base(String),
}

impl From<BaseError> for WriteError {
    fn from(e: BaseError) -> Self {
        WriteError::Base(e.0)
    }
}

/// Names of the file's input and output tensors (what LiteRT's signature lists).
pub const INPUT_NAME: &str = "image";
pub const OUTPUT_NAME: &str = "probabilities";

/// Index of the first convolution of block `block` (the last 1×1 conv's after the last block).
pub(super) fn first_conv_of_block(spec: &BackboneSpec, block: usize) -> usize {
    1 + spec.blocks[..block.min(spec.blocks.len())]
        .iter()
        .map(|b| usize::from(b.expand.is_some()) + 2)
        .sum::<usize>()
}

impl ClassifierGraph<'_> {
    /// The `.tflite` bytes: input `[1, 224, 224, 3]` (float32 pixels already scaled, or the
    /// kept base's own input), output `[1, classes]` softmax probabilities.
    pub fn to_tflite(&self) -> Result<Vec<u8>, WriteError> {
        self.check()?;
        let spec = BackboneSpec::mobilenet_v2();
        let mut g = Graph::new();
        let (input, mut x, mut shape, first_block, last_kept) = match self.kept_base {
            None => {
                let input = g.activation(INPUT_NAME, &[1, INPUT_SIZE, INPUT_SIZE, 3]);
                let mut shape = [INPUT_SIZE, INPUT_SIZE, 3];
                let x = conv(&mut g, 0, &self.convs[0], input, &mut shape);
                (input, x, shape, 0, false)
            }
            Some(base) => {
                let blocks = spec.blocks.len();
                let first_block = blocks - base.unfrozen.min(blocks);
                let kept_convs = if base.unfrozen == 0 {
                    BACKBONE_CONVS
                } else {
                    first_conv_of_block(&spec, first_block)
                };
                let cut = cut::copy_base(&mut g, base.file, kept_convs)?;
                let x = cut::dequantize(&mut g, &cut);
                (cut.input, x, cut.shape, first_block, base.unfrozen == 0)
            }
        };
        let mut index = first_conv_of_block(&spec, first_block);
        let mut next_conv = |g: &mut Graph, x: i32, shape: &mut [usize; 3]| {
            let out = conv(g, index, &self.convs[index], x, shape);
            index += 1;
            out
        };
        for (b, block) in spec.blocks.iter().enumerate().skip(first_block) {
            let block_input = x;
            if block.expand.is_some() {
                x = next_conv(&mut g, x, &mut shape);
            }
            x = next_conv(&mut g, x, &mut shape);
            x = next_conv(&mut g, x, &mut shape);
            if block.residual {
                let sum =
                    g.activation(&format!("block{b}/add"), &[1, shape[0], shape[1], shape[2]]);
                let options = tflite::AddOptions::create(&mut g.fbb, &Default::default());
                g.op(
                    tflite::BuiltinOperator::ADD,
                    &[block_input, x],
                    &[sum],
                    Some((tflite::BuiltinOptions::AddOptions, options.as_union_value())),
                );
                x = sum;
            }
        }
        if !last_kept {
            x = next_conv(&mut g, x, &mut shape);
        }
        let axes = g.constant_i32("pool/axes", &[2], &[1, 2]);
        let pooled = g.activation("pooled", &[1, shape[2]]);
        let options = tflite::ReducerOptions::create(
            &mut g.fbb,
            &tflite::ReducerOptionsArgs { keep_dims: false },
        );
        g.op(
            tflite::BuiltinOperator::MEAN,
            &[x, axes],
            &[pooled],
            Some((
                tflite::BuiltinOptions::ReducerOptions,
                options.as_union_value(),
            )),
        );
        x = pooled;
        for (index, layer) in self.head.iter().enumerate() {
            x = dense(&mut g, index, layer, x);
        }
        let classes = self.head.last().map_or(0, |l| l.weights.outputs);
        let probs = g.activation(OUTPUT_NAME, &[1, classes]);
        let options =
            tflite::SoftmaxOptions::create(&mut g.fbb, &tflite::SoftmaxOptionsArgs { beta: 1.0 });
        g.op(
            tflite::BuiltinOperator::SOFTMAX,
            &[x],
            &[probs],
            Some((
                tflite::BuiltinOptions::SoftmaxOptions,
                options.as_union_value(),
            )),
        );
        Ok(g.finish(&[input], &[probs], self.description, self.metadata))
    }

    fn check(&self) -> Result<(), WriteError> {
        let specs = BackboneSpec::mobilenet_v2().convs();
        if self.convs.len() != specs.len() {
            return Err(WriteError::ConvCount(self.convs.len()));
        }
        for (index, (conv, spec)) in self.convs.iter().zip(&specs).enumerate() {
            let values: usize = spec.weight_shape().iter().product();
            if conv.spec != *spec
                || conv.weight.len() != values
                || conv.bias.len() != spec.out_channels
            {
                return Err(WriteError::ConvShape { index });
            }
        }
        if self.head.is_empty() {
            return Err(WriteError::NoHead);
        }
        for (index, layer) in self.head.iter().enumerate() {
            let w = &layer.weights;
            if w.weight.len() != w.inputs * w.outputs || w.bias.len() != w.outputs {
                return Err(WriteError::DenseShape {
                    index,
                    values: w.weight.len(),
                    inputs: w.inputs,
                    outputs: w.outputs,
                });
            }
        }
        Ok(())
    }
}

/// A convolution (SAME padding, its fused activation) of `x`, whose `[H, W, C]` is
/// `shape` and becomes the output's.
fn conv(
    g: &mut Graph<'_>,
    index: usize,
    conv: &ConvWeights,
    x: i32,
    shape: &mut [usize; 3],
) -> i32 {
    let s = conv.spec;
    let k = s.kernel;
    let name = |what: &str| format!("conv{index}/{what}");
    let activation = match s.activation {
        Activation::Relu6 => tflite::ActivationFunctionType::RELU6,
        Activation::None => tflite::ActivationFunctionType::NONE,
    };
    let (weight, weight_shape) = match s.kind {
        // Burn's [out, in, kh, kw] → TFLite's [out, kh, kw, in].
        ConvKind::Standard => {
            let (o, i) = (s.out_channels, s.in_channels);
            let mut w = Vec::with_capacity(conv.weight.len());
            for oc in 0..o {
                for tap in 0..k * k {
                    for ic in 0..i {
                        w.push(conv.weight[(oc * i + ic) * k * k + tap]);
                    }
                }
            }
            (w, [o, k, k, i])
        }
        // Burn's [out, 1, kh, kw] → TFLite's [1, kh, kw, out].
        ConvKind::Depthwise => {
            let o = s.out_channels;
            let w = (0..k * k)
                .flat_map(|tap| (0..o).map(move |oc| (oc, tap)))
                .map(|(oc, tap)| conv.weight[oc * k * k + tap])
                .collect();
            (w, [1, k, k, o])
        }
    };
    let filter = g.constant_f32(&name("weight"), &weight_shape, &weight);
    let bias = g.constant_f32(&name("bias"), &[s.out_channels], &conv.bias);
    let (h, w) = (shape[0].div_ceil(s.stride), shape[1].div_ceil(s.stride));
    *shape = [h, w, s.out_channels];
    let out = g.activation(&name("out"), &[1, h, w, s.out_channels]);
    let stride = s.stride as i32;
    let (code, options_type, options) = match s.kind {
        ConvKind::Standard => {
            let options = tflite::Conv2DOptions::create(
                &mut g.fbb,
                &tflite::Conv2DOptionsArgs {
                    padding: tflite::Padding::SAME,
                    stride_w: stride,
                    stride_h: stride,
                    fused_activation_function: activation,
                    dilation_w_factor: 1,
                    dilation_h_factor: 1,
                },
            );
            (
                tflite::BuiltinOperator::CONV_2D,
                tflite::BuiltinOptions::Conv2DOptions,
                options.as_union_value(),
            )
        }
        ConvKind::Depthwise => {
            let options = tflite::DepthwiseConv2DOptions::create(
                &mut g.fbb,
                &tflite::DepthwiseConv2DOptionsArgs {
                    padding: tflite::Padding::SAME,
                    stride_w: stride,
                    stride_h: stride,
                    depth_multiplier: 1,
                    fused_activation_function: activation,
                    dilation_w_factor: 1,
                    dilation_h_factor: 1,
                },
            );
            (
                tflite::BuiltinOperator::DEPTHWISE_CONV_2D,
                tflite::BuiltinOptions::DepthwiseConv2DOptions,
                options.as_union_value(),
            )
        }
    };
    g.op(
        code,
        &[x, filter, bias],
        &[out],
        Some((options_type, options)),
    );
    out
}

/// A fully connected layer of `x` (`[1, inputs]`).
fn dense(g: &mut Graph<'_>, index: usize, layer: &DenseLayer, x: i32) -> i32 {
    let w = &layer.weights;
    // Burn's [in, out] → TFLite's [out, in].
    let weight: Vec<f32> = (0..w.outputs)
        .flat_map(|o| (0..w.inputs).map(move |i| (i, o)))
        .map(|(i, o)| w.weight[i * w.outputs + o])
        .collect();
    let filter = g.constant_f32(
        &format!("dense{index}/weight"),
        &[w.outputs, w.inputs],
        &weight,
    );
    let bias = g.constant_f32(&format!("dense{index}/bias"), &[w.outputs], &w.bias);
    let out = g.activation(&format!("dense{index}/out"), &[1, w.outputs]);
    let activation = if layer.relu {
        tflite::ActivationFunctionType::RELU
    } else {
        tflite::ActivationFunctionType::NONE
    };
    let options = tflite::FullyConnectedOptions::create(
        &mut g.fbb,
        &tflite::FullyConnectedOptionsArgs {
            fused_activation_function: activation,
            ..Default::default()
        },
    );
    g.op(
        tflite::BuiltinOperator::FULLY_CONNECTED,
        &[x, filter, bias],
        &[out],
        Some((
            tflite::BuiltinOptions::FullyConnectedOptions,
            options.as_union_value(),
        )),
    );
    out
}
