//! The TFLite flatbuffer schema's bindings, and bounds-checked helpers over them that the
//! reader, the dequantizer and the writer share: indices and shapes come from the file.

pub use afinar_tflite_schema::tflite;

use super::error::ModelError;

/// Bounds-checked access into a flatbuffer vector: indices come from the file.
pub(super) fn at<'a, T: flatbuffers::Follow<'a> + 'a>(
    vector: flatbuffers::Vector<'a, T>,
    index: i64,
    what: &str,
) -> Result<T::Inner, ModelError> {
    usize::try_from(index)
        .ok()
        .filter(|&i| i < vector.len())
        .map(|i| vector.get(i))
        .ok_or_else(|| ModelError::Corrupt(format!("{what} index {index} is out of range")))
}

/// An operator code's builtin operator: old files keep it in the deprecated i8 field, new
/// ones in the i32 field.
pub(super) fn builtin_code(code: tflite::OperatorCode<'_>) -> tflite::BuiltinOperator {
    tflite::BuiltinOperator(i32::from(code.deprecated_builtin_code()).max(code.builtin_code().0))
}

pub(super) fn shape(tensor: &tflite::Tensor<'_>) -> Result<Vec<usize>, ModelError> {
    tensor
        .shape()
        .map(|s| {
            s.iter()
                .map(|d| usize::try_from(d).ok())
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or(Some(Vec::new()))
        .ok_or_else(|| {
            ModelError::Corrupt(format!(
                "tensor {} has a negative dimension",
                tensor.name().unwrap_or("?")
            ))
        })
}
