//! Constant tensors of a `.tflite` file read as float32: quantized ones (uint8 per tensor,
//! int8 per channel, int32 biases) scaled back as TFLite defines it, every size checked against
//! the shape first.

use super::error::ModelError;
use super::schema::{at, shape, tflite};

/// A quantized or float tensor read back as float32.
pub(super) struct FloatTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// A constant tensor's stored values and quantization, every size checked against its shape.
pub(super) struct StoredTensor<'a> {
    pub name: &'a str,
    pub shape: Vec<usize>,
    pub ty: tflite::TensorType,
    /// The raw little-endian values: exactly `count × width` bytes.
    data: &'a [u8],
    count: usize,
    /// `(scales, zero points)` per step of the quantized dimension (one for a whole tensor);
    /// `None` for a float tensor without quantization.
    quantization: Option<(Vec<f32>, Vec<i64>)>,
    /// Elements between two steps of the quantized dimension.
    inner: usize,
    /// The quantized dimension, when there is a scale per step of it.
    pub axis: Option<usize>,
}

/// Reads a constant tensor's bytes and quantization, refusing sizes, types, scales and axes
/// that do not fit its shape.
pub(super) fn stored<'a>(
    model: &tflite::Model<'a>,
    tensor: &tflite::Tensor<'a>,
) -> Result<StoredTensor<'a>, ModelError> {
    let name = tensor.name().unwrap_or("?");
    let shape = shape(tensor)?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| ModelError::Corrupt(format!("tensor {name} is too large")))?;
    let buffers = model
        .buffers()
        .ok_or_else(|| ModelError::Corrupt("the buffer list is missing".into()))?;
    let buffer = at(buffers, tensor.buffer().into(), "buffer")?;
    let data = buffer.data().map(|d| d.bytes()).unwrap_or_default();
    let ty = tensor.type_();
    let width = match ty {
        tflite::TensorType::FLOAT32 | tflite::TensorType::INT32 => 4,
        tflite::TensorType::UINT8 | tflite::TensorType::INT8 => 1,
        other => {
            return Err(ModelError::Unsupported(format!(
                "tensor {name} has type {}; only float32, uint8, int8 and int32 weights are supported",
                other.variant_name().unwrap_or("unknown")
            )));
        }
    };
    // Checked: a crafted shape's count times the width wraps on wasm32 (and could then
    // match a short buffer).
    let needed = count
        .checked_mul(width)
        .ok_or_else(|| ModelError::Corrupt(format!("tensor {name} is too large")))?;
    if data.len() != needed {
        return Err(ModelError::Corrupt(format!(
            "tensor {name} holds {} bytes, its shape {shape:?} needs {needed}",
            data.len(),
        )));
    }
    let Some((q, scales)) = tensor
        .quantization()
        .and_then(|q| q.scale().map(|s| (q, s)))
    else {
        if ty != tflite::TensorType::FLOAT32 {
            return Err(ModelError::Corrupt(format!(
                "quantized tensor {name} has no scale"
            )));
        }
        return Ok(StoredTensor {
            name,
            shape,
            ty,
            data,
            count,
            quantization: None,
            inner: count.max(1),
            axis: None,
        });
    };
    let scales: Vec<f32> = scales.iter().collect();
    // NaN, infinite or negative steps would turn every weight into nonsense that still runs.
    if let Some(bad) = scales.iter().find(|s| !s.is_finite() || **s < 0.0) {
        return Err(ModelError::Corrupt(format!(
            "tensor {name} has a quantization scale of {bad}"
        )));
    }
    let zero_points: Vec<i64> = q
        .zero_point()
        .map(|z| z.iter().collect())
        .unwrap_or_default();
    let channels = scales.len();
    let axis = usize::try_from(q.quantized_dimension())
        .ok()
        .filter(|&a| channels == 1 || a < shape.len())
        .ok_or_else(|| {
            ModelError::Corrupt(format!("tensor {name} has a bad quantized dimension"))
        })?;
    if channels == 0
        || (channels > 1 && shape[axis] != channels)
        || !(zero_points.is_empty() || zero_points.len() == channels)
    {
        return Err(ModelError::Corrupt(format!(
            "tensor {name} has {channels} scales and {} zero points for shape {shape:?}",
            zero_points.len()
        )));
    }
    // Saturating: with a zero dimension elsewhere the count is 0 and the rest of the shape may
    // be anything.
    let inner: usize = match channels {
        1 => count.max(1),
        _ => shape.get(axis + 1..).map_or(1, |s| {
            s.iter().fold(1usize, |acc, &d| acc.saturating_mul(d))
        }),
    };
    let zero_points = match zero_points.is_empty() {
        true => vec![0; channels],
        false => zero_points,
    };
    Ok(StoredTensor {
        name,
        shape,
        ty,
        data,
        count,
        quantization: Some((scales, zero_points)),
        inner,
        axis: (channels > 1).then_some(axis),
    })
}

impl StoredTensor<'_> {
    /// Calls `f(from, to, scale, zero_point)` for each run of elements `from..to` that share a
    /// step of the quantized dimension (`(1, 0)` for an unquantized tensor), in order.
    fn runs(&self, mut f: impl FnMut(usize, usize, f32, i64)) {
        let inner = self.inner.max(1);
        let (scales, zeros) = match &self.quantization {
            Some((s, z)) => (s.as_slice(), z.as_slice()),
            None => (&[1.0f32][..], &[0i64][..]),
        };
        for (run, c) in (0..self.count.div_ceil(inner)).zip((0..scales.len()).cycle()) {
            let from = run * inner;
            f(from, (from + inner).min(self.count), scales[c], zeros[c]);
        }
    }

    /// The scale of each step of the quantized dimension; `None` for a float tensor.
    pub fn scales(&self) -> Option<&[f32]> {
        self.quantization.as_ref().map(|(s, _)| s.as_slice())
    }

    /// The stored integers minus their zero point (`q - zero_point[c]`), for uint8, int8 and
    /// int32 tensors: what TFLite's integer kernels multiply.
    pub fn centered(&self) -> Result<Vec<i32>, ModelError> {
        if self.ty == tflite::TensorType::FLOAT32 || self.quantization.is_none() {
            return Err(ModelError::Unsupported(format!(
                "tensor {} holds float32 values, not integers",
                self.name
            )));
        }
        let mut values = Vec::with_capacity(self.count);
        let data = self.data;
        let mut bad_zero = None;
        self.runs(|from, to, _, zero| {
            // A real zero point is within the stored type's range; this bound keeps `q − zero`
            // inside an i32 for any crafted one.
            let Some(zero) = i32::try_from(zero)
                .ok()
                .filter(|z| z.unsigned_abs() <= 1 << 16)
            else {
                bad_zero = Some(zero);
                return;
            };
            match self.ty {
                tflite::TensorType::UINT8 => {
                    values.extend(data[from..to].iter().map(|&q| i32::from(q) - zero))
                }
                tflite::TensorType::INT8 => {
                    values.extend(data[from..to].iter().map(|&q| i32::from(q as i8) - zero))
                }
                _ => values.extend(
                    data[from * 4..to * 4]
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]).saturating_sub(zero)),
                ),
            }
        });
        if let Some(zero) = bad_zero {
            return Err(ModelError::Corrupt(format!(
                "tensor {} has a zero point of {zero}",
                self.name
            )));
        }
        Ok(values)
    }

    /// The values as float32: `scale[c] * (q - zero_point[c])` for quantized types.
    fn dequantized(&self) -> Vec<f32> {
        let mut values = Vec::with_capacity(self.count);
        let data = self.data;
        // One pass over the stored values, a run of elements per scale: the page runs this on
        // every visit, before its compiler has optimized it.
        self.runs(|from, to, scale, zero| {
            let zero = zero as f32;
            let step = |q: f32| scale * (q - zero);
            match self.ty {
                tflite::TensorType::UINT8 => {
                    values.extend(data[from..to].iter().map(|&q| step(f32::from(q))))
                }
                tflite::TensorType::INT8 => {
                    values.extend(data[from..to].iter().map(|&q| step(f32::from(q as i8))))
                }
                // i32 → f32 rounds above 2^24; exact for any bias a real model has.
                tflite::TensorType::INT32 => values.extend(
                    data[from * 4..to * 4]
                        .chunks_exact(4)
                        .map(|c| step(i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)),
                ),
                // An unquantized tensor's run has scale 1 and zero point 0: exact.
                _ => values.extend(
                    data[from * 4..to * 4]
                        .chunks_exact(4)
                        .map(|c| step(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
                ),
            }
        });
        values
    }
}

/// Reads a constant tensor as float32: `scale[c] * (q - zero_point[c])` for quantized types,
/// where `c` indexes the tensor's quantized dimension.
pub(super) fn dequantize(
    model: &tflite::Model<'_>,
    tensor: &tflite::Tensor<'_>,
) -> Result<FloatTensor, ModelError> {
    let stored = stored(model, tensor)?;
    Ok(FloatTensor {
        values: stored.dequantized(),
        shape: stored.shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_tensor_model(shape: &[i32], bytes: &[u8]) -> Vec<u8> {
        quantized_model(shape, tflite::TensorType::FLOAT32, bytes, None)
    }

    /// A model of one tensor, with `(scales, zero points, quantized dimension)` where given.
    fn quantized_model(
        shape: &[i32],
        type_: tflite::TensorType,
        bytes: &[u8],
        quantization: Option<(&[f32], &[i64], i32)>,
    ) -> Vec<u8> {
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let data = fbb.create_vector(bytes);
        let quantization = quantization.map(|(scales, zero_points, axis)| {
            let scale = fbb.create_vector(scales);
            let zero_point = fbb.create_vector(zero_points);
            tflite::QuantizationParameters::create(
                &mut fbb,
                &tflite::QuantizationParametersArgs {
                    scale: Some(scale),
                    zero_point: Some(zero_point),
                    quantized_dimension: axis,
                    ..Default::default()
                },
            )
        });
        let buffer = tflite::Buffer::create(&mut fbb, &tflite::BufferArgs { data: Some(data) });
        let buffers = fbb.create_vector(&[buffer]);
        let shape = fbb.create_vector(shape);
        let tensor = tflite::Tensor::create(
            &mut fbb,
            &tflite::TensorArgs {
                shape: Some(shape),
                type_,
                buffer: 0,
                quantization,
                ..Default::default()
            },
        );
        let tensors = fbb.create_vector(&[tensor]);
        let subgraph = tflite::SubGraph::create(
            &mut fbb,
            &tflite::SubGraphArgs {
                tensors: Some(tensors),
                ..Default::default()
            },
        );
        let subgraphs = fbb.create_vector(&[subgraph]);
        let model = tflite::Model::create(
            &mut fbb,
            &tflite::ModelArgs {
                version: 3,
                subgraphs: Some(subgraphs),
                buffers: Some(buffers),
                ..Default::default()
            },
        );
        tflite::finish_model_buffer(&mut fbb, model);
        fbb.finished_data().to_vec()
    }

    #[test]
    fn a_shape_whose_byte_size_wraps_is_refused() {
        // 27905 × 8681 × 49477 × 384773 = 2^62 + 1 floats: 2^64 + 4 bytes, which wraps to the
        // 4 bytes the buffer holds.
        let shape = [27905, 8681, 49477, 384773];
        let count = shape.iter().fold(1u128, |acc, &d| acc * d as u128);
        assert_eq!(count, (1u128 << 62) + 1);
        let bytes = one_tensor_model(&shape, &1.0f32.to_le_bytes());
        let model = tflite::root_as_model(&bytes).unwrap();
        let tensor = model.subgraphs().unwrap().get(0).tensors().unwrap().get(0);
        let err = dequantize(&model, &tensor).err().unwrap();
        assert!(matches!(err, ModelError::Corrupt(_)), "{err}");
        assert!(err.to_string().contains("too large"), "{err}");
        // The same tensor with its real size reads.
        let fits = one_tensor_model(&[1, 2], &[0; 8]);
        let model = tflite::root_as_model(&fits).unwrap();
        let tensor = model.subgraphs().unwrap().get(0).tensors().unwrap().get(0);
        assert_eq!(dequantize(&model, &tensor).unwrap().values, [0.0, 0.0]);
    }

    fn read(model: &[u8]) -> Result<FloatTensor, ModelError> {
        let model = tflite::root_as_model(model).unwrap();
        let tensor = model.subgraphs().unwrap().get(0).tensors().unwrap().get(0);
        dequantize(&model, &tensor)
    }

    /// TFLite's definition, element by element: `scale[c] * (q - zero_point[c])` with `c` the
    /// element's index along the quantized dimension.
    fn by_definition(
        shape: &[usize],
        q: &[f32],
        scales: &[f32],
        zero_points: &[i64],
        axis: usize,
    ) -> Vec<f32> {
        let inner: usize = shape[axis + 1..].iter().product();
        (0..q.len())
            .map(|i| {
                let c = if scales.len() == 1 {
                    0
                } else {
                    (i / inner) % scales.len()
                };
                scales[c] * (q[i] - zero_points[c] as f32)
            })
            .collect()
    }

    #[test]
    fn quantized_values_follow_tflites_definition() {
        let shape = [2usize, 3, 1, 5];
        let dims: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        let count: usize = shape.iter().product();
        let bytes: Vec<u8> = (0..count).map(|i| (i * 37 % 256) as u8).collect();
        // uint8, one scale for the whole tensor.
        let model = quantized_model(
            &dims,
            tflite::TensorType::UINT8,
            &bytes,
            Some((&[0.5], &[128], 0)),
        );
        let q: Vec<f32> = bytes.iter().map(|&b| f32::from(b)).collect();
        assert_eq!(
            read(&model).unwrap().values,
            by_definition(&shape, &q, &[0.5], &[128], 0)
        );
        // int8, per channel along the first and the last dimension (odd inner sizes).
        let q: Vec<f32> = bytes.iter().map(|&b| f32::from(b as i8)).collect();
        for (axis, scales, zeros) in [
            (0, vec![0.25, 2.0], vec![1, -3]),
            (3, vec![0.5, 1.0, 1.5, 2.0, 4.0], vec![0, 1, 2, 3, 4]),
        ] {
            let model = quantized_model(
                &dims,
                tflite::TensorType::INT8,
                &bytes,
                Some((&scales, &zeros, axis as i32)),
            );
            let expected = by_definition(&shape, &q, &scales, &zeros, axis);
            assert_eq!(read(&model).unwrap().values, expected, "axis {axis}");
        }
        // int32 biases.
        let biases: Vec<u8> = [-7i32, 0, 1 << 20]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let model = quantized_model(
            &[3],
            tflite::TensorType::INT32,
            &biases,
            Some((&[0.125], &[0], 0)),
        );
        assert_eq!(read(&model).unwrap().values, [-0.875, 0.0, 131072.0]);
        // A scale per channel that does not match the dimension is refused.
        let model = quantized_model(
            &dims,
            tflite::TensorType::INT8,
            &bytes,
            Some((&[1.0, 1.0, 1.0], &[0, 0, 0], 0)),
        );
        assert!(matches!(read(&model), Err(ModelError::Corrupt(_))));
    }
}
