//! Writes a [`Graph`] as a `.tflite` flatbuffer.

use afinar_tflite_schema::tflite;
use flatbuffers::FlatBufferBuilder;

use super::{CODES, Graph, Kind};

impl Graph {
    pub(super) fn write(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        // Buffer 0 is empty, as TFLite's converter writes it: activations point at it.
        let mut buffers = vec![tflite::Buffer::create(
            &mut fbb,
            &tflite::BufferArgs { data: None },
        )];
        let mut tensors = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let own = match &t.data {
                Some(bytes) => {
                    let data = Some(fbb.create_vector(bytes));
                    buffers.push(tflite::Buffer::create(
                        &mut fbb,
                        &tflite::BufferArgs { data },
                    ));
                    buffers.len() as u32 - 1
                }
                None => 0,
            };
            let shape = Some(fbb.create_vector(&t.shape));
            let quantization = t.quantization.as_ref().map(|q| {
                let scale = Some(fbb.create_vector(&q.scales));
                let zero_point = Some(fbb.create_vector(&q.zero_points));
                tflite::QuantizationParameters::create(
                    &mut fbb,
                    &tflite::QuantizationParametersArgs {
                        scale,
                        zero_point,
                        quantized_dimension: q.dimension,
                        ..Default::default()
                    },
                )
            });
            tensors.push(tflite::Tensor::create(
                &mut fbb,
                &tflite::TensorArgs {
                    shape,
                    type_: t.ty,
                    buffer: t.buffer.unwrap_or(own),
                    quantization,
                    ..Default::default()
                },
            ));
        }
        let mut ops = Vec::with_capacity(self.ops.len() + self.adds);
        for op in &self.ops {
            let opcode_index = op.opcode.unwrap_or_else(|| {
                CODES.iter().position(|(k, _)| *k == op.kind).unwrap_or(0) as u32
            });
            let (options_type, options) = match op.kind {
                Kind::Conv => {
                    let args = tflite::Conv2DOptionsArgs {
                        padding: self.padding,
                        stride_w: op.stride,
                        stride_h: op.stride,
                        fused_activation_function: op.activation,
                        dilation_w_factor: op.dilation,
                        dilation_h_factor: op.dilation,
                    };
                    let o = tflite::Conv2DOptions::create(&mut fbb, &args);
                    (
                        tflite::BuiltinOptions::Conv2DOptions,
                        Some(o.as_union_value()),
                    )
                }
                Kind::Depthwise => {
                    let args = tflite::DepthwiseConv2DOptionsArgs {
                        padding: self.padding,
                        stride_w: op.stride,
                        stride_h: op.stride,
                        depth_multiplier: 1,
                        fused_activation_function: op.activation,
                        dilation_w_factor: op.dilation,
                        dilation_h_factor: op.dilation,
                    };
                    let o = tflite::DepthwiseConv2DOptions::create(&mut fbb, &args);
                    (
                        tflite::BuiltinOptions::DepthwiseConv2DOptions,
                        Some(o.as_union_value()),
                    )
                }
                Kind::FullyConnected => {
                    let args = tflite::FullyConnectedOptionsArgs {
                        fused_activation_function: op.activation,
                        ..Default::default()
                    };
                    let o = tflite::FullyConnectedOptions::create(&mut fbb, &args);
                    (
                        tflite::BuiltinOptions::FullyConnectedOptions,
                        Some(o.as_union_value()),
                    )
                }
                Kind::Add => (tflite::BuiltinOptions::NONE, None),
            };
            let inputs = Some(fbb.create_vector(&op.inputs));
            let outputs = Some(fbb.create_vector(&op.outputs));
            ops.push(tflite::Operator::create(
                &mut fbb,
                &tflite::OperatorArgs {
                    opcode_index,
                    inputs,
                    outputs,
                    builtin_options_type: options_type,
                    builtin_options: options,
                    ..Default::default()
                },
            ));
        }
        let add = CODES.iter().position(|(k, _)| *k == Kind::Add).unwrap_or(0) as u32;
        for _ in 0..self.adds {
            let inputs = Some(fbb.create_vector(&[self.output, self.output]));
            let outputs = Some(fbb.create_vector(&[self.output]));
            ops.push(tflite::Operator::create(
                &mut fbb,
                &tflite::OperatorArgs {
                    opcode_index: add,
                    inputs,
                    outputs,
                    ..Default::default()
                },
            ));
        }
        let codes: Vec<_> = CODES
            .iter()
            .map(|(_, code)| {
                let args = tflite::OperatorCodeArgs {
                    deprecated_builtin_code: code.0 as i8,
                    builtin_code: *code,
                    version: 1,
                    custom_code: None,
                };
                tflite::OperatorCode::create(&mut fbb, &args)
            })
            .collect();
        let tensors = fbb.create_vector(&tensors);
        let ops = fbb.create_vector(&ops);
        let graph_inputs = fbb.create_vector(&[0]);
        let graph_outputs = fbb.create_vector(&[self.output]);
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
}
