//! The layers of a base model file below the freeze boundary, copied into a classifier being
//! written as they are in the file: its operators, its tensors with their quantization and its
//! buffers, so that the exported model computes the frozen part exactly as the base does (and
//! stays as small), then a `DEQUANTIZE` hands the boundary to the float32 layers above it.

use std::collections::HashMap;

use super::graph::Graph;
use super::schema::{at, builtin_code, shape, tflite};
use crate::architecture::BACKBONE_CONVS;

/// Where the copied layers end.
pub(super) struct Cut {
    /// The copied input tensor (the base's own, quantized or float).
    pub input: i32,
    /// The boundary tensor, as the base computes it.
    pub boundary: i32,
    /// `[H, W, C]` of the boundary.
    pub shape: [usize; 3],
    /// The boundary's element type in the file.
    pub type_: tflite::TensorType,
}

/// Why the base file's layers cannot be kept (a reason for people).
#[derive(Debug)]
pub(super) struct BaseError(pub String);

fn base_error(what: impl Into<String>) -> BaseError {
    BaseError(what.into())
}

/// What the reader found wrong with the base file, as a reason it cannot be kept.
fn unreadable(e: super::ModelError) -> BaseError {
    BaseError(e.to_string())
}

/// Copies every operator of `file` up to the one that computes the input of its
/// convolution number `kept_convs` (in execution order), or the output of its last
/// backbone convolution when `kept_convs` is 52.
pub(super) fn copy_base(
    g: &mut Graph<'_>,
    file: &[u8],
    kept_convs: usize,
) -> Result<Cut, BaseError> {
    let model = tflite::root_as_model(file).map_err(|e| base_error(e.to_string()))?;
    let codes = model
        .operator_codes()
        .ok_or_else(|| base_error("no operator codes"))?;
    let graph = model
        .subgraphs()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| base_error("no subgraph"))?
        .get(0);
    let ops = graph
        .operators()
        .ok_or_else(|| base_error("no operators"))?;
    let tensors = graph.tensors().ok_or_else(|| base_error("no tensors"))?;
    let buffers = model.buffers().ok_or_else(|| base_error("no buffers"))?;
    let code_of = |op: &tflite::Operator<'_>| {
        at(codes, op.opcode_index().into(), "operator code").map_err(unreadable)
    };
    let is_conv = |op: &tflite::Operator<'_>| {
        code_of(op).map(builtin_code).is_ok_and(|c| {
            c == tflite::BuiltinOperator::CONV_2D || c == tflite::BuiltinOperator::DEPTHWISE_CONV_2D
        })
    };
    let conv_ops: Vec<usize> = (0..ops.len()).filter(|&i| is_conv(&ops.get(i))).collect();
    let first_tensor = |list: Option<flatbuffers::Vector<'_, i32>>| {
        list.filter(|l| !l.is_empty()).map(|l| l.get(0))
    };
    let (boundary, last_op) = if kept_convs >= BACKBONE_CONVS {
        let op = *conv_ops
            .get(kept_convs - 1)
            .ok_or_else(|| base_error("fewer convolutions than MobileNetV2"))?;
        let out = first_tensor(ops.get(op).outputs())
            .ok_or_else(|| base_error("a convolution without output"))?;
        (out, op)
    } else {
        let consumer = *conv_ops
            .get(kept_convs)
            .ok_or_else(|| base_error("fewer convolutions than MobileNetV2"))?;
        let input = first_tensor(ops.get(consumer).inputs())
            .ok_or_else(|| base_error("a convolution without input"))?;
        let producer = (0..consumer)
            .rev()
            .find(|&i| {
                ops.get(i)
                    .outputs()
                    .is_some_and(|o| o.iter().any(|t| t == input))
            })
            .ok_or_else(|| base_error("the boundary has no producer"))?;
        (input, producer)
    };
    let input = first_tensor(graph.inputs()).ok_or_else(|| base_error("no input"))?;

    let mut copied: HashMap<i32, i32> = HashMap::new();
    let mut copy = |g: &mut Graph<'_>, index: i32| -> Result<i32, BaseError> {
        if index < 0 {
            return Ok(index);
        }
        if let Some(&mine) = copied.get(&index) {
            return Ok(mine);
        }
        let tensor = at(tensors, index.into(), "tensor").map_err(unreadable)?;
        let data = at(buffers, tensor.buffer().into(), "buffer")
            .map_err(unreadable)?
            .data()
            .map(|d| d.bytes().to_vec());
        let mine = copy_tensor(g, &tensor, data.as_deref().filter(|d| !d.is_empty()));
        copied.insert(index, mine);
        Ok(mine)
    };
    let input = copy(g, input)?;
    for i in 0..=last_op {
        let op = ops.get(i);
        let code = code_of(&op)?;
        let mut remap = |g: &mut Graph<'_>, list: Option<flatbuffers::Vector<'_, i32>>| {
            list.map_or(Ok(Vec::new()), |l| l.iter().map(|t| copy(g, t)).collect())
        };
        let inputs = remap(g, op.inputs())?;
        let outputs = remap(g, op.outputs())?;
        let options = copy_options(g, &op, builtin_code(code))?;
        g.op_version(
            builtin_code(code),
            code.version(),
            &inputs,
            &outputs,
            options,
        );
    }
    let boundary_tensor = at(tensors, boundary.into(), "boundary tensor").map_err(unreadable)?;
    let shape = shape(&boundary_tensor).map_err(unreadable)?;
    let [1, h, w, c] = shape[..] else {
        return Err(base_error(format!("boundary of shape {shape:?}")));
    };
    Ok(Cut {
        input,
        boundary: copy(g, boundary)?,
        shape: [h, w, c],
        type_: boundary_tensor.type_(),
    })
}

/// The boundary in float32 (a `DEQUANTIZE`, unless the base is float already).
pub(super) fn dequantize(g: &mut Graph<'_>, cut: &Cut) -> i32 {
    if cut.type_ == tflite::TensorType::FLOAT32 {
        return cut.boundary;
    }
    let [h, w, c] = cut.shape;
    let out = g.activation("boundary/float", &[1, h, w, c]);
    // Version 2 reads int8.
    let version = if cut.type_ == tflite::TensorType::INT8 {
        2
    } else {
        1
    };
    g.op_version(
        tflite::BuiltinOperator::DEQUANTIZE,
        version,
        &[cut.boundary],
        &[out],
        None,
    );
    out
}

/// A copy of a source tensor: shape, type, name, quantization and (for constants) data.
fn copy_tensor(g: &mut Graph<'_>, tensor: &tflite::Tensor<'_>, data: Option<&[u8]>) -> i32 {
    let buffer = data.map_or(0, |bytes| g.buffer(bytes));
    let quantization = tensor.quantization().map(|q| {
        let min = q
            .min()
            .map(|v| g.fbb.create_vector(&v.iter().collect::<Vec<f32>>()));
        let max = q
            .max()
            .map(|v| g.fbb.create_vector(&v.iter().collect::<Vec<f32>>()));
        let scale = q
            .scale()
            .map(|v| g.fbb.create_vector(&v.iter().collect::<Vec<f32>>()));
        let zero_point = q
            .zero_point()
            .map(|v| g.fbb.create_vector(&v.iter().collect::<Vec<i64>>()));
        tflite::QuantizationParameters::create(
            &mut g.fbb,
            &tflite::QuantizationParametersArgs {
                min,
                max,
                scale,
                zero_point,
                quantized_dimension: q.quantized_dimension(),
                ..Default::default()
            },
        )
    });
    let dims: Vec<i32> = tensor
        .shape()
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    g.push_tensor(
        tensor.name().unwrap_or(""),
        &dims,
        tensor.type_(),
        buffer,
        quantization,
    )
}

/// The options of a copied operator. The frozen part of MobileNetV2 needs only these.
fn copy_options(
    g: &mut Graph<'_>,
    op: &tflite::Operator<'_>,
    code: tflite::BuiltinOperator,
) -> Result<
    Option<(
        tflite::BuiltinOptions,
        flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>,
    )>,
    BaseError,
> {
    let name = code.variant_name().unwrap_or("an operator");
    let missing = || base_error(format!("{name} without its options"));
    Ok(match code {
        tflite::BuiltinOperator::CONV_2D => {
            let o = op
                .builtin_options_as_conv_2_doptions()
                .ok_or_else(missing)?;
            let args = tflite::Conv2DOptionsArgs {
                padding: o.padding(),
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                fused_activation_function: o.fused_activation_function(),
                dilation_w_factor: o.dilation_w_factor(),
                dilation_h_factor: o.dilation_h_factor(),
            };
            let table = tflite::Conv2DOptions::create(&mut g.fbb, &args);
            Some((
                tflite::BuiltinOptions::Conv2DOptions,
                table.as_union_value(),
            ))
        }
        tflite::BuiltinOperator::DEPTHWISE_CONV_2D => {
            let o = op
                .builtin_options_as_depthwise_conv_2_doptions()
                .ok_or_else(missing)?;
            let args = tflite::DepthwiseConv2DOptionsArgs {
                padding: o.padding(),
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                depth_multiplier: o.depth_multiplier(),
                fused_activation_function: o.fused_activation_function(),
                dilation_w_factor: o.dilation_w_factor(),
                dilation_h_factor: o.dilation_h_factor(),
            };
            let table = tflite::DepthwiseConv2DOptions::create(&mut g.fbb, &args);
            Some((
                tflite::BuiltinOptions::DepthwiseConv2DOptions,
                table.as_union_value(),
            ))
        }
        tflite::BuiltinOperator::ADD => {
            let o = op.builtin_options_as_add_options().ok_or_else(missing)?;
            let args = tflite::AddOptionsArgs {
                fused_activation_function: o.fused_activation_function(),
                pot_scale_int16: o.pot_scale_int16(),
            };
            let table = tflite::AddOptions::create(&mut g.fbb, &args);
            Some((tflite::BuiltinOptions::AddOptions, table.as_union_value()))
        }
        tflite::BuiltinOperator::QUANTIZE | tflite::BuiltinOperator::DEQUANTIZE => None,
        other => {
            return Err(base_error(format!(
                "it has a {} operator below the boundary",
                other.variant_name().unwrap_or("unknown")
            )));
        }
    })
}
