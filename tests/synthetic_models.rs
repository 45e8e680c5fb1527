//! TFLite files built here with the flatbuffer schema: a float32 MobileNetV2 that loads and runs,
//! and broken variants that must be refused with the right message. With
//! `AFINAR_FUZZ_SEEDS=DIR` the small variants are also written there as fuzzing seeds.

use afinar::architecture::{Activation, BackboneSpec, ConvKind, ConvSpec, FEATURE_DIM};
use afinar::{Classifier, InputScaling, MobileNetV2Weights, ModelError, ModelInput};
use flatbuffers::FlatBufferBuilder;
use tract_tflite::tflite;

#[derive(Clone, Copy, PartialEq)]
enum Data {
    /// Buffers without bytes: the structure alone (small, for fuzzing seeds).
    Empty,
    /// float32 zeros for every weight; biases 0.5 in the backbone and `i / 1000` in the classifier.
    Float32,
}

/// A MobileNetV2-shaped graph. `edit` may change the conv specs before they are written.
fn build(
    data: Data,
    adds: usize,
    padding: tflite::Padding,
    edit: impl Fn(&mut Vec<ConvSpec>),
) -> Vec<u8> {
    let mut convs = BackboneSpec::mobilenet_v2().convs();
    edit(&mut convs);
    let classes = 1001;
    let mut fbb = FlatBufferBuilder::new();
    let mut buffers = vec![tflite::Buffer::create(
        &mut fbb,
        &tflite::BufferArgs { data: None },
    )];
    let mut tensors = Vec::new();
    let mut ops = Vec::new();

    let input_shape = fbb.create_vector(&[1, 224, 224, 3]);
    tensors.push(tflite::Tensor::create(
        &mut fbb,
        &tflite::TensorArgs {
            shape: Some(input_shape),
            type_: tflite::TensorType::FLOAT32,
            ..Default::default()
        },
    ));
    let mut previous = 0i32;
    let layers: Vec<(ConvSpec, bool)> = convs
        .iter()
        .map(|c| (*c, false))
        .chain([(
            ConvSpec {
                kind: ConvKind::Standard,
                in_channels: FEATURE_DIM,
                out_channels: classes,
                kernel: 1,
                stride: 1,
                activation: Activation::None,
            },
            true,
        )])
        .collect();
    for (spec, is_classifier) in layers {
        let [out, _, kh, kw] = spec.weight_shape();
        let weight_shape: Vec<i32> = match spec.kind {
            ConvKind::Standard => vec![out, kh, kw, spec.in_channels],
            ConvKind::Depthwise => vec![1, kh, kw, out],
        }
        .into_iter()
        .map(|d| d as i32)
        .collect();
        let count: usize = weight_shape.iter().map(|&d| d as usize).product();
        let floats = |values: Vec<f32>| {
            values
                .into_iter()
                .flat_map(f32::to_le_bytes)
                .collect::<Vec<u8>>()
        };
        let (weight_bytes, bias_bytes) = match data {
            Data::Empty => (None, None),
            Data::Float32 => {
                let bias: Vec<f32> = if is_classifier {
                    (0..out).map(|i| i as f32 / 1000.0).collect()
                } else {
                    vec![0.5; out]
                };
                (Some(floats(vec![0.0; count])), Some(floats(bias)))
            }
        };
        let weight = add_tensor(
            &mut fbb,
            &mut buffers,
            &mut tensors,
            &weight_shape,
            weight_bytes,
        );
        let bias = add_tensor(
            &mut fbb,
            &mut buffers,
            &mut tensors,
            &[out as i32],
            bias_bytes,
        );
        let output = add_tensor(
            &mut fbb,
            &mut buffers,
            &mut tensors,
            &[1, 1, 1, out as i32],
            None,
        );
        let inputs = fbb.create_vector(&[previous, weight, bias]);
        let outputs = fbb.create_vector(&[output]);
        let activation = match spec.activation {
            Activation::Relu6 => tflite::ActivationFunctionType::RELU6,
            Activation::None => tflite::ActivationFunctionType::NONE,
        };
        let stride = spec.stride as i32;
        let (opcode_index, options_type, options) = match spec.kind {
            ConvKind::Standard => {
                let args = tflite::Conv2DOptionsArgs {
                    padding,
                    stride_w: stride,
                    stride_h: stride,
                    fused_activation_function: activation,
                    dilation_w_factor: 1,
                    dilation_h_factor: 1,
                };
                let o = tflite::Conv2DOptions::create(&mut fbb, &args);
                (0, tflite::BuiltinOptions::Conv2DOptions, o.as_union_value())
            }
            ConvKind::Depthwise => {
                let args = tflite::DepthwiseConv2DOptionsArgs {
                    padding,
                    stride_w: stride,
                    stride_h: stride,
                    depth_multiplier: 1,
                    fused_activation_function: activation,
                    dilation_w_factor: 1,
                    dilation_h_factor: 1,
                };
                let o = tflite::DepthwiseConv2DOptions::create(&mut fbb, &args);
                (
                    1,
                    tflite::BuiltinOptions::DepthwiseConv2DOptions,
                    o.as_union_value(),
                )
            }
        };
        ops.push(tflite::Operator::create(
            &mut fbb,
            &tflite::OperatorArgs {
                opcode_index,
                inputs: Some(inputs),
                outputs: Some(outputs),
                builtin_options_type: options_type,
                builtin_options: Some(options),
                ..Default::default()
            },
        ));
        previous = output;
    }
    for _ in 0..adds {
        let inputs = fbb.create_vector(&[previous, previous]);
        let outputs = fbb.create_vector(&[previous]);
        ops.push(tflite::Operator::create(
            &mut fbb,
            &tflite::OperatorArgs {
                opcode_index: 2,
                inputs: Some(inputs),
                outputs: Some(outputs),
                ..Default::default()
            },
        ));
    }
    let codes: Vec<_> = [
        tflite::BuiltinOperator::CONV_2D,
        tflite::BuiltinOperator::DEPTHWISE_CONV_2D,
        tflite::BuiltinOperator::ADD,
    ]
    .into_iter()
    .map(|code| {
        let args = tflite::OperatorCodeArgs {
            deprecated_builtin_code: code.0 as i8,
            builtin_code: code,
            version: 1,
            custom_code: None,
        };
        tflite::OperatorCode::create(&mut fbb, &args)
    })
    .collect();
    let tensors = fbb.create_vector(&tensors);
    let ops = fbb.create_vector(&ops);
    let graph_inputs = fbb.create_vector(&[0]);
    let graph_outputs = fbb.create_vector(&[previous]);
    let subgraph = tflite::SubGraph::create(
        &mut fbb,
        &tflite::SubGraphArgs {
            tensors: Some(tensors),
            inputs: Some(graph_inputs),
            outputs: Some(graph_outputs),
            operators: Some(ops),
            ..Default::default()
        },
    );
    let subgraphs = fbb.create_vector(&[subgraph]);
    let codes = fbb.create_vector(&codes);
    let buffers = fbb.create_vector(&buffers);
    let model = tflite::Model::create(
        &mut fbb,
        &tflite::ModelArgs {
            version: 3,
            operator_codes: Some(codes),
            subgraphs: Some(subgraphs),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    tflite::finish_model_buffer(&mut fbb, model);
    fbb.finished_data().to_vec()
}

/// Appends a float32 tensor with its own buffer; returns the tensor's index.
fn add_tensor<'a>(
    fbb: &mut FlatBufferBuilder<'a>,
    buffers: &mut Vec<flatbuffers::WIPOffset<tflite::Buffer<'a>>>,
    tensors: &mut Vec<flatbuffers::WIPOffset<tflite::Tensor<'a>>>,
    shape: &[i32],
    bytes: Option<Vec<u8>>,
) -> i32 {
    let data = bytes.map(|b| fbb.create_vector(&b));
    buffers.push(tflite::Buffer::create(fbb, &tflite::BufferArgs { data }));
    let shape = fbb.create_vector(shape);
    let args = tflite::TensorArgs {
        shape: Some(shape),
        type_: tflite::TensorType::FLOAT32,
        buffer: (buffers.len() - 1) as u32,
        ..Default::default()
    };
    tensors.push(tflite::Tensor::create(fbb, &args));
    (tensors.len() - 1) as i32
}

fn standard(data: Data) -> Vec<u8> {
    build(data, 10, tflite::Padding::SAME, |_| {})
}

fn save_seed(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("AFINAR_FUZZ_SEEDS") {
        std::fs::create_dir_all(&dir).expect("seed dir");
        std::fs::write(std::path::Path::new(&dir).join(name), bytes).expect("seed");
    }
}

#[test]
fn a_float32_model_loads_and_runs() {
    let bytes = standard(Data::Float32);
    let weights = MobileNetV2Weights::from_tflite(&bytes).expect("float32 file loads");
    assert_eq!(weights.input_scaling, InputScaling::MOBILENET);
    assert_eq!(weights.labels, None);
    let labels: String = (0..1001).map(|i| format!("class {i}\n")).collect();
    let classifier =
        Classifier::from_tflite(&bytes, Some(&labels), &afinar::device::cpu()).expect("loads");
    // Zero kernels: every layer outputs its bias, so features are 0.5 and logits the classifier bias.
    let input = ModelInput::from_rgb(vec![77; 224 * 224 * 3]).expect("input");
    let features = classifier
        .model()
        .features(classifier.input_tensor(std::slice::from_ref(&input)));
    let features = features
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32");
    assert!(features.iter().all(|&f| (f - 0.5).abs() < 1e-6));
    let top =
        &futures_lite::future::block_on(classifier.classify(&[input], 2)).expect("classifies")[0];
    assert_eq!((top[0].index, top[0].label.as_str()), (1000, "class 1000"));
    assert_eq!(top[1].index, 999);
}

#[test]
fn the_structure_without_weights_is_corrupt() {
    let bytes = standard(Data::Empty);
    save_seed("structure-only.tflite", &bytes);
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(
        matches!(&err, ModelError::Corrupt(m) if m.contains("holds 0 bytes")),
        "{err}"
    );
}

#[test]
fn a_wrong_stride_is_refused() {
    let bytes = build(Data::Empty, 10, tflite::Padding::SAME, |convs| {
        convs[4].stride = 1
    });
    save_seed("wrong-stride.tflite", &bytes);
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(
        matches!(&err, ModelError::WrongArchitecture(m) if m.contains("convolution 4: stride (1, 1)")),
        "{err}"
    );
}

#[test]
fn a_missing_residual_is_refused() {
    let bytes = build(Data::Empty, 9, tflite::Padding::SAME, |_| {});
    save_seed("nine-adds.tflite", &bytes);
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert_eq!(
        err,
        ModelError::WrongArchitecture("9 residual additions, MobileNetV2 has 10".into())
    );
}

#[test]
fn a_standard_conv_where_a_depthwise_belongs_is_refused() {
    let bytes = build(Data::Empty, 10, tflite::Padding::SAME, |convs| {
        convs[1].kind = ConvKind::Standard
    });
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(
        matches!(&err, ModelError::WrongArchitecture(m) if m.starts_with("convolution 1: found a Standard")),
        "{err}"
    );
}

#[test]
fn valid_padding_is_refused_as_unsupported() {
    let bytes = build(Data::Empty, 10, tflite::Padding::VALID, |_| {});
    save_seed("valid-padding.tflite", &bytes);
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert_eq!(
        err,
        ModelError::Unsupported("convolution 0 uses VALID padding; only SAME is supported".into())
    );
}

#[test]
fn a_missing_layer_is_refused() {
    let bytes = build(Data::Empty, 10, tflite::Padding::SAME, |convs| {
        convs.pop();
    });
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(
        matches!(&err, ModelError::WrongArchitecture(m) if m.starts_with("52 convolutions")),
        "{err}"
    );
}
