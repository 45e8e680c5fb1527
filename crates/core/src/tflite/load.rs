//! A base model's file, whole: its float32 weights ([`super::reader`]), its own 8-bit integers
//! where it has them ([`super::quantized`]), its labels and its sha256, from one parse.

use std::sync::Arc;

use super::error::ModelError;
use super::quantized::QuantizedMobileNetV2;
use super::reader::Reader;
use super::weights::{MobileNetV2Weights, appended_labels};
use crate::preprocess::sha256_hex;

impl MobileNetV2Weights {
    /// Parses and dequantizes a `.tflite` file.
    pub fn from_tflite(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::from_tflite_with_sha256(bytes, sha256_hex(bytes))
    }

    /// [`Self::from_tflite`] for a caller that has already hashed `bytes` (the page's worker
    /// hashes with the browser's native SHA-256, once, to check its cached copy too): `sha256`
    /// must be their sha256 in lower-case hex, as [`sha256_hex`] writes it.
    pub fn from_tflite_with_sha256(bytes: &[u8], sha256: String) -> Result<Self, ModelError> {
        if bytes.is_empty() {
            return Err(ModelError::Empty);
        }
        let reader = Reader::parse(bytes)?;
        let (convs, classifier) = reader.layers()?;
        let input_scaling = reader.input_scaling()?;
        let labels = appended_labels(bytes, classifier.outputs)?;
        // A float32 file, or a quantized one whose integers the integer kernels cannot take,
        // runs in float32. The page has no integer kernels of its own yet: it does not read
        // them.
        let quantized = match cfg!(target_arch = "wasm32") {
            true => Err("the page has no integer kernels yet".to_string()),
            false => QuantizedMobileNetV2::from_reader(&reader)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        };
        Ok(Self {
            convs,
            classifier,
            input_scaling,
            labels,
            sha256,
            quantized,
        })
    }
}
