//! Writes a classifier (MobileNetV2's backbone, a dense head, softmax) as a `.tflite` file,
//! with the TFLite schema bindings the reader uses: the graph LiteRT, MediaPipe and tract run.
//! Either every layer is float32, or the layers below the freeze boundary are the base model
//! file's own (quantized ops and buffers kept, [`super::cut`]) and only the trained part is
//! float32.
//!
//! Activations are NHWC as TFLite wants them; weights arrive in Burn's layout
//! ([`ConvWeights`], [`DenseWeights`]) and are transposed here.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};
use tract_tflite::tflite;

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
                let x = g.conv(0, &self.convs[0], input, &mut shape);
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
                let cut = g.copy_base(base.file, kept_convs)?;
                let x = g.dequantize(&cut);
                (cut.input, x, cut.shape, first_block, base.unfrozen == 0)
            }
        };
        let mut index = first_conv_of_block(&spec, first_block);
        let mut conv = |g: &mut Graph, x: i32, shape: &mut [usize; 3]| {
            let out = g.conv(index, &self.convs[index], x, shape);
            index += 1;
            out
        };
        for (b, block) in spec.blocks.iter().enumerate().skip(first_block) {
            let block_input = x;
            if block.expand.is_some() {
                x = conv(&mut g, x, &mut shape);
            }
            x = conv(&mut g, x, &mut shape);
            x = conv(&mut g, x, &mut shape);
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
            x = conv(&mut g, x, &mut shape);
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
            x = g.dense(index, layer, x);
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

/// One subgraph under construction: tensors, operators and the buffers they point at.
pub(super) struct Graph<'b> {
    pub(super) fbb: FlatBufferBuilder<'b>,
    /// Buffer 0 is the empty one every activation points at (the schema's convention).
    buffers: Vec<WIPOffset<tflite::Buffer<'b>>>,
    tensors: Vec<WIPOffset<tflite::Tensor<'b>>>,
    operators: Vec<WIPOffset<tflite::Operator<'b>>>,
    /// Operator codes with their versions, in `opcode_index` order.
    codes: Vec<(tflite::BuiltinOperator, i32)>,
}

impl<'b> Graph<'b> {
    pub(super) fn new() -> Self {
        let mut fbb = FlatBufferBuilder::new();
        let empty = tflite::Buffer::create(&mut fbb, &Default::default());
        Self {
            fbb,
            buffers: vec![empty],
            tensors: Vec::new(),
            operators: Vec::new(),
            codes: Vec::new(),
        }
    }

    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        type_: tflite::TensorType,
        data: Option<&[u8]>,
    ) -> i32 {
        let buffer = data.map_or(0, |bytes| self.buffer(bytes));
        let dims: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        self.push_tensor(name, &dims, type_, buffer, None)
    }

    /// Appends a tensor whose buffer (0: none) and quantization are already written: its index.
    pub(super) fn push_tensor(
        &mut self,
        name: &str,
        dims: &[i32],
        type_: tflite::TensorType,
        buffer: u32,
        quantization: Option<WIPOffset<tflite::QuantizationParameters<'b>>>,
    ) -> i32 {
        let shape = self.fbb.create_vector(dims);
        let name = self.fbb.create_string(name);
        let tensor = tflite::Tensor::create(
            &mut self.fbb,
            &tflite::TensorArgs {
                shape: Some(shape),
                type_,
                buffer,
                name: Some(name),
                quantization,
                ..Default::default()
            },
        );
        self.tensors.push(tensor);
        (self.tensors.len() - 1) as i32
    }

    /// A new buffer holding `bytes`: its index.
    pub(super) fn buffer(&mut self, bytes: &[u8]) -> u32 {
        let data = self.fbb.create_vector(bytes);
        let buffer =
            tflite::Buffer::create(&mut self.fbb, &tflite::BufferArgs { data: Some(data) });
        self.buffers.push(buffer);
        (self.buffers.len() - 1) as u32
    }

    /// A tensor computed by an operator.
    pub(super) fn activation(&mut self, name: &str, shape: &[usize]) -> i32 {
        self.tensor(name, shape, tflite::TensorType::FLOAT32, None)
    }

    fn constant_f32(&mut self, name: &str, shape: &[usize], values: &[f32]) -> i32 {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, tflite::TensorType::FLOAT32, Some(&bytes))
    }

    fn constant_i32(&mut self, name: &str, shape: &[usize], values: &[i32]) -> i32 {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, tflite::TensorType::INT32, Some(&bytes))
    }

    /// Appends an operator (version 1 of `code`) with its options, if it has any.
    pub(super) fn op(
        &mut self,
        code: tflite::BuiltinOperator,
        inputs: &[i32],
        outputs: &[i32],
        options: Option<(tflite::BuiltinOptions, WIPOffset<UnionWIPOffset>)>,
    ) {
        self.op_version(code, 1, inputs, outputs, options);
    }

    pub(super) fn op_version(
        &mut self,
        code: tflite::BuiltinOperator,
        version: i32,
        inputs: &[i32],
        outputs: &[i32],
        options: Option<(tflite::BuiltinOptions, WIPOffset<UnionWIPOffset>)>,
    ) {
        let opcode_index = match self.codes.iter().position(|c| *c == (code, version)) {
            Some(i) => i,
            None => {
                self.codes.push((code, version));
                self.codes.len() - 1
            }
        };
        let inputs = self.fbb.create_vector(inputs);
        let outputs = self.fbb.create_vector(outputs);
        let (builtin_options_type, builtin_options) = match options {
            Some((kind, table)) => (kind, Some(table)),
            None => (tflite::BuiltinOptions::NONE, None),
        };
        let op = tflite::Operator::create(
            &mut self.fbb,
            &tflite::OperatorArgs {
                opcode_index: opcode_index as u32,
                inputs: Some(inputs),
                outputs: Some(outputs),
                builtin_options_type,
                builtin_options,
                ..Default::default()
            },
        );
        self.operators.push(op);
    }

    /// A convolution (SAME padding, its fused activation) of `x`, whose `[H, W, C]` is
    /// `shape` and becomes the output's.
    fn conv(&mut self, index: usize, conv: &ConvWeights, x: i32, shape: &mut [usize; 3]) -> i32 {
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
        let filter = self.constant_f32(&name("weight"), &weight_shape, &weight);
        let bias = self.constant_f32(&name("bias"), &[s.out_channels], &conv.bias);
        let (h, w) = (shape[0].div_ceil(s.stride), shape[1].div_ceil(s.stride));
        *shape = [h, w, s.out_channels];
        let out = self.activation(&name("out"), &[1, h, w, s.out_channels]);
        let stride = s.stride as i32;
        let (code, options_type, options) = match s.kind {
            ConvKind::Standard => {
                let options = tflite::Conv2DOptions::create(
                    &mut self.fbb,
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
                    &mut self.fbb,
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
        self.op(
            code,
            &[x, filter, bias],
            &[out],
            Some((options_type, options)),
        );
        out
    }

    /// A fully connected layer of `x` (`[1, inputs]`).
    fn dense(&mut self, index: usize, layer: &DenseLayer, x: i32) -> i32 {
        let w = &layer.weights;
        // Burn's [in, out] → TFLite's [out, in].
        let weight: Vec<f32> = (0..w.outputs)
            .flat_map(|o| (0..w.inputs).map(move |i| (i, o)))
            .map(|(i, o)| w.weight[i * w.outputs + o])
            .collect();
        let filter = self.constant_f32(
            &format!("dense{index}/weight"),
            &[w.outputs, w.inputs],
            &weight,
        );
        let bias = self.constant_f32(&format!("dense{index}/bias"), &[w.outputs], &w.bias);
        let out = self.activation(&format!("dense{index}/out"), &[1, w.outputs]);
        let activation = if layer.relu {
            tflite::ActivationFunctionType::RELU
        } else {
            tflite::ActivationFunctionType::NONE
        };
        let options = tflite::FullyConnectedOptions::create(
            &mut self.fbb,
            &tflite::FullyConnectedOptionsArgs {
                fused_activation_function: activation,
                ..Default::default()
            },
        );
        self.op(
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

    fn finish(
        mut self,
        inputs: &[i32],
        outputs: &[i32],
        description: &str,
        metadata: Option<&[u8]>,
    ) -> Vec<u8> {
        let metadata = metadata.map(|bytes| {
            let buffer = self.buffer(bytes);
            let name = self.fbb.create_string(super::metadata::METADATA_NAME);
            let entry = tflite::Metadata::create(
                &mut self.fbb,
                &tflite::MetadataArgs {
                    name: Some(name),
                    buffer,
                },
            );
            self.fbb.create_vector(&[entry])
        });
        let fbb = &mut self.fbb;
        let tensors = fbb.create_vector(&self.tensors);
        let operators = fbb.create_vector(&self.operators);
        let inputs = fbb.create_vector(inputs);
        let outputs = fbb.create_vector(outputs);
        let name = fbb.create_string("main");
        let subgraph = tflite::SubGraph::create(
            fbb,
            &tflite::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(operators),
                name: Some(name),
            },
        );
        let codes: Vec<_> = self
            .codes
            .iter()
            .map(|&(code, version)| {
                tflite::OperatorCode::create(
                    fbb,
                    &tflite::OperatorCodeArgs {
                        // Codes past 127 live only in `builtin_code`; the deprecated field
                        // takes PLACEHOLDER_FOR_GREATER_OP_CODES then.
                        deprecated_builtin_code: i8::try_from(code.0).unwrap_or(127),
                        custom_code: None,
                        version,
                        builtin_code: code,
                    },
                )
            })
            .collect();
        let codes = fbb.create_vector(&codes);
        let subgraphs = fbb.create_vector(&[subgraph]);
        let buffers = fbb.create_vector(&self.buffers);
        let description = fbb.create_string(description);
        let model = tflite::Model::create(
            fbb,
            &tflite::ModelArgs {
                version: 3,
                operator_codes: Some(codes),
                subgraphs: Some(subgraphs),
                description: Some(description),
                buffers: Some(buffers),
                metadata,
                ..Default::default()
            },
        );
        fbb.finish(model, Some("TFL3"));
        fbb.finished_data().to_vec()
    }
}
