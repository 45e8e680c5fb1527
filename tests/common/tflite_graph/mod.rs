//! `.tflite` files of MobileNetV2's shape, written with the flatbuffer schema from a plain
//! description: every convolution of the architecture with real shapes, weights in float32 or
//! quantized as TFLite stores them (uint8 per tensor, int8 per channel with int32 biases), a
//! classifier or a head on top, and edits that break one thing (a shape, a scale, a type, an
//! operator's input...). The synthetic-model tests build their files with it, and the
//! structure-aware fuzz target (`fuzz/fuzz_targets/tflite_graph.rs`) builds a file from each
//! plan the fuzzer makes, so that its inputs reach the classifier and dequantization code
//! instead of stopping at the flatbuffer's verification.

use afinar::architecture::{Activation, BackboneSpec, ConvKind, FEATURE_DIM, INPUT_SIZE};
use afinar::tflite::ExportedClassifier;
use afinar::{Classifier, MobileNetV2Weights, ModelInput};
use afinar_tflite_schema::tflite;

mod edit;
mod write;

/// How the weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, arbitrary::Arbitrary)]
pub enum Weights {
    /// Buffers without bytes: the structure alone (small).
    Empty,
    /// float32: zero kernels; biases 0.5 in the backbone and `i / 1000` in the classifier.
    Float32,
    /// uint8 with one scale and zero point per tensor, int32 biases (the same values).
    Uint8,
    /// int8 with a scale and a zero point per output channel, int32 biases (the same values).
    Int8,
}

/// What follows the backbone.
#[derive(Clone, Copy, Debug, PartialEq, arbitrary::Arbitrary)]
pub enum Top {
    /// A 1×1 convolution to `classes` outputs (TF-slim's and TF2's files).
    Conv { classes: u16 },
    /// A dense layer to `classes` outputs (Keras's files).
    Dense { classes: u16 },
    /// Two dense layers, the second to `classes` outputs (a classifier Afinar exported).
    Head { hidden: u16, classes: u16 },
}

/// One thing changed. Convolutions, tensors and operators are chosen by index modulo their
/// count, so that every edit lands somewhere.
#[derive(Clone, Debug, PartialEq, arbitrary::Arbitrary)]
pub enum Edit {
    /// The number of residual additions (MobileNetV2 has 10).
    Adds(u8),
    /// VALID padding everywhere.
    ValidPadding,
    /// A backbone convolution's stride.
    Stride {
        conv: u8,
        stride: i32,
    },
    /// A standard convolution where a depthwise one belongs, or the other way round.
    Kind {
        conv: u8,
    },
    /// A backbone convolution left out.
    DropConv {
        conv: u8,
    },
    /// An operator's fused activation (TFLite's code).
    Activation {
        op: u16,
        code: i8,
    },
    /// A convolution's dilation.
    Dilation {
        op: u16,
        dilation: i32,
    },
    Shape {
        tensor: u16,
        dims: Vec<i32>,
    },
    /// A tensor's type (TFLite's code).
    Type {
        tensor: u16,
        code: i8,
    },
    Scales {
        tensor: u16,
        scales: Vec<f32>,
    },
    ZeroPoints {
        tensor: u16,
        zero_points: Vec<i64>,
    },
    QuantizedDimension {
        tensor: u16,
        dimension: i32,
    },
    NoQuantization {
        tensor: u16,
    },
    /// A tensor pointing at another buffer (any index).
    Buffer {
        tensor: u16,
        buffer: u32,
    },
    /// A tensor's own data cut short or grown by `bytes` (modulo its length plus 64).
    Resize {
        tensor: u16,
        bytes: u32,
    },
    /// An operator's input (any index, negative included).
    Input {
        op: u16,
        slot: u8,
        tensor: i32,
    },
    /// An operator's operator-code index (any index).
    Opcode {
        op: u16,
        index: u32,
    },
}

/// A file to build.
#[derive(Clone, Debug, PartialEq, arbitrary::Arbitrary)]
pub struct GraphPlan {
    pub weights: Weights,
    pub top: Top,
    pub edits: Vec<Edit>,
}

/// The most outputs and hidden units a plan asks for (more than ImageNet's 1001).
const MAX_UNITS: usize = 1024;
/// The most dimensions, scales or zero points an edit writes.
const MAX_EDIT_LEN: usize = 2048;

impl GraphPlan {
    /// MobileNetV2 as it is, with `top`.
    pub fn new(weights: Weights, top: Top) -> Self {
        Self {
            weights,
            top,
            edits: Vec::new(),
        }
    }

    pub fn with(mut self, edit: Edit) -> Self {
        self.edits.push(edit);
        self
    }

    /// The `.tflite` file.
    pub fn to_tflite(&self) -> Vec<u8> {
        let mut graph = Graph::mobilenet_v2(self);
        for edit in &self.edits {
            graph.apply(edit);
        }
        graph.write()
    }
}

/// What every reader makes of `bytes`: the base model reader, and when it accepts them, a
/// classifier made from them that classifies one photo; the exported classifier's reader.
/// Refusals are fine; a panic (or an allocation without bound) is what the fuzzer finds.
pub fn read_with_every_reader(bytes: &[u8]) {
    if let Ok(weights) = MobileNetV2Weights::from_tflite(bytes) {
        let labels = (0..weights.num_classes())
            .map(|i| format!("class {i}"))
            .collect();
        let classifier = Classifier::new(&weights, labels, &afinar::device::cpu());
        let input = ModelInput::from_rgb(vec![77; INPUT_SIZE * INPUT_SIZE * 3]);
        if let Ok(input) = input {
            let _ = futures_lite::future::block_on(classifier.classify(&[input], 5));
        }
    }
    let _ = ExportedClassifier::from_tflite(bytes);
}

/// A tensor as it will be written.
struct Tensor {
    shape: Vec<i32>,
    ty: tflite::TensorType,
    /// `None`: no bytes (an activation, or [`Weights::Empty`]).
    data: Option<Vec<u8>>,
    /// Set by an edit: this buffer index instead of the tensor's own.
    buffer: Option<u32>,
    quantization: Option<Quantization>,
}

struct Quantization {
    scales: Vec<f32>,
    zero_points: Vec<i64>,
    dimension: i32,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Conv,
    Depthwise,
    FullyConnected,
    Add,
}

const CODES: [(Kind, tflite::BuiltinOperator); 4] = [
    (Kind::Conv, tflite::BuiltinOperator::CONV_2D),
    (Kind::Depthwise, tflite::BuiltinOperator::DEPTHWISE_CONV_2D),
    (
        Kind::FullyConnected,
        tflite::BuiltinOperator::FULLY_CONNECTED,
    ),
    (Kind::Add, tflite::BuiltinOperator::ADD),
];

struct Operator {
    kind: Kind,
    /// Set by an edit: this operator-code index instead of the kind's own.
    opcode: Option<u32>,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    stride: i32,
    dilation: i32,
    activation: tflite::ActivationFunctionType,
}

struct Graph {
    tensors: Vec<Tensor>,
    ops: Vec<Operator>,
    /// How many of `ops` are the backbone's convolutions (the rest: the top, then the adds).
    backbone: usize,
    adds: usize,
    padding: tflite::Padding,
    output: i32,
}

/// Bytes of `values` as little-endian.
fn le_bytes<T: Copy, const N: usize>(values: &[T], bytes: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| bytes(v)).collect()
}

impl Graph {
    fn mobilenet_v2(plan: &GraphPlan) -> Self {
        let weights = plan.weights;
        let (activations, input_quantization) = match weights {
            Weights::Empty | Weights::Float32 => (tflite::TensorType::FLOAT32, None),
            Weights::Uint8 => (tflite::TensorType::UINT8, Some((1.0 / 128.0, 128))),
            Weights::Int8 => (tflite::TensorType::INT8, Some((1.0 / 128.0, 0))),
        };
        let activation_tensor = |shape: Vec<i32>, quantization: Option<(f32, i64)>| Tensor {
            shape,
            ty: activations,
            data: None,
            buffer: None,
            quantization: quantization.map(|(scale, zero)| Quantization {
                scales: vec![scale],
                zero_points: vec![zero],
                dimension: 0,
            }),
        };
        let mut graph = Self {
            tensors: vec![activation_tensor(vec![1, 224, 224, 3], input_quantization)],
            ops: Vec::new(),
            backbone: 0,
            adds: 10,
            padding: tflite::Padding::SAME,
            output: 0,
        };
        let units = |n: u16| (usize::from(n) % (MAX_UNITS + 1)).max(1);
        // (kind, weight shape, outputs, stride, activation, classifier bias)
        let mut layers: Vec<(Kind, Vec<usize>, usize, usize, Activation, bool)> =
            BackboneSpec::mobilenet_v2()
                .convs()
                .iter()
                .map(|spec| {
                    let [out, _, kh, kw] = spec.weight_shape();
                    match spec.kind {
                        ConvKind::Standard => (
                            Kind::Conv,
                            vec![out, kh, kw, spec.in_channels],
                            out,
                            spec.stride,
                            spec.activation,
                            false,
                        ),
                        ConvKind::Depthwise => (
                            Kind::Depthwise,
                            vec![1, kh, kw, out],
                            out,
                            spec.stride,
                            spec.activation,
                            false,
                        ),
                    }
                })
                .collect();
        graph.backbone = layers.len();
        let dense = |inputs: usize, outputs: usize, relu: bool| {
            let activation = if relu {
                Activation::Relu6
            } else {
                Activation::None
            };
            (
                Kind::FullyConnected,
                vec![outputs, inputs],
                outputs,
                1,
                activation,
                true,
            )
        };
        match plan.top {
            Top::Conv { classes } => {
                let classes = units(classes);
                layers.push((
                    Kind::Conv,
                    vec![classes, 1, 1, FEATURE_DIM],
                    classes,
                    1,
                    Activation::None,
                    true,
                ));
            }
            Top::Dense { classes } => layers.push(dense(FEATURE_DIM, units(classes), false)),
            Top::Head { hidden, classes } => {
                layers.push(dense(FEATURE_DIM, units(hidden), true));
                layers.push(dense(units(hidden), units(classes), false));
            }
        }
        let mut previous = 0;
        for (kind, shape, out, stride, activation, classifier) in layers {
            // Per channel: the output channel's axis (OHWI: 0; depthwise 1HWC: 3).
            let axis = if kind == Kind::Depthwise { 3 } else { 0 };
            let weight_scales = match weights {
                Weights::Int8 => (0..out).map(|c| 0.01 + c as f32 * 1e-5).collect(),
                _ => vec![0.02],
            };
            let count: usize = shape.iter().product();
            let bias: Vec<f32> = (0..out)
                .map(|i| if classifier { i as f32 / 1000.0 } else { 0.5 })
                .collect();
            let (weight, bias) = match weights {
                Weights::Empty => (
                    graph.constant(&shape, tflite::TensorType::FLOAT32, None, None),
                    graph.constant(&[out], tflite::TensorType::FLOAT32, None, None),
                ),
                Weights::Float32 => (
                    graph.constant(
                        &shape,
                        tflite::TensorType::FLOAT32,
                        Some(le_bytes(&vec![0.0f32; count], f32::to_le_bytes)),
                        None,
                    ),
                    graph.constant(
                        &[out],
                        tflite::TensorType::FLOAT32,
                        Some(le_bytes(&bias, f32::to_le_bytes)),
                        None,
                    ),
                ),
                Weights::Uint8 | Weights::Int8 => {
                    let (ty, zero) = match weights {
                        Weights::Uint8 => (tflite::TensorType::UINT8, 128u8),
                        _ => (tflite::TensorType::INT8, 0),
                    };
                    let bias_scales: Vec<f32> = weight_scales.iter().map(|s| s / 128.0).collect();
                    let quantized_bias: Vec<i32> = bias
                        .iter()
                        .enumerate()
                        .map(|(c, b)| (b / bias_scales[c % bias_scales.len()]).round() as i32)
                        .collect();
                    // Every kernel value is its channel's zero point, so a weight reads as 0
                    // only with the right zero point; int8 gives each channel its own, so
                    // reading along the wrong axis shows (features other than the biases).
                    let zeros: Vec<i64> = match weights {
                        Weights::Int8 => (0..out).map(|c| (c % 5) as i64 - 2).collect(),
                        _ => vec![i64::from(zero)],
                    };
                    let channel_of = |j: usize| match axis {
                        0 => j / (count / out),
                        _ => j % out,
                    };
                    let data = (0..count)
                        .map(|j| zeros[channel_of(j) % zeros.len()] as u8)
                        .collect();
                    (
                        graph.constant(
                            &shape,
                            ty,
                            Some(data),
                            Some(Quantization {
                                scales: weight_scales.clone(),
                                zero_points: zeros,
                                dimension: axis,
                            }),
                        ),
                        graph.constant(
                            &[out],
                            tflite::TensorType::INT32,
                            Some(le_bytes(&quantized_bias, i32::to_le_bytes)),
                            Some(Quantization {
                                zero_points: vec![0; bias_scales.len()],
                                scales: bias_scales,
                                dimension: 0,
                            }),
                        ),
                    )
                }
            };
            graph.tensors.push(activation_tensor(
                vec![1, 1, 1, out as i32],
                input_quantization,
            ));
            let output = graph.tensors.len() as i32 - 1;
            graph.ops.push(Operator {
                kind,
                opcode: None,
                inputs: vec![previous, weight, bias],
                outputs: vec![output],
                stride: stride as i32,
                dilation: 1,
                activation: match activation {
                    Activation::Relu6 => tflite::ActivationFunctionType::RELU6,
                    Activation::None => tflite::ActivationFunctionType::NONE,
                },
            });
            previous = output;
        }
        graph.output = previous;
        graph
    }

    /// Appends a constant tensor; returns its index.
    fn constant(
        &mut self,
        shape: &[usize],
        ty: tflite::TensorType,
        data: Option<Vec<u8>>,
        quantization: Option<Quantization>,
    ) -> i32 {
        self.tensors.push(Tensor {
            shape: shape.iter().map(|&d| d as i32).collect(),
            ty,
            data,
            buffer: None,
            quantization,
        });
        self.tensors.len() as i32 - 1
    }
}
