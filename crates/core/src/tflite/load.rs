//! A base model's file, whole: its float32 weights ([`super::reader`]), its own 8-bit integers
//! where it has them ([`super::quantized`]), its labels and its sha256, from one parse.

use std::sync::Arc;

use super::error::ModelError;
use super::quantized::QuantizedMobileNetV2;
use super::reader::Reader;
use super::weights::{MobileNetV2Weights, appended_labels};
use crate::preprocess::sha256_hex;

impl MobileNetV2Weights {
    /// Parses and dequantizes a `.tflite` file, and reads its own integers where it has them.
    pub fn from_tflite(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::read(bytes, sha256_hex(bytes), true)
    }

    /// [`Self::from_tflite`] for a caller that has already hashed `bytes` (the page's worker
    /// hashes with the browser's native SHA-256, once, to check its cached copy too): `sha256`
    /// must be their sha256 in lower-case hex, as [`sha256_hex`] writes it. The file's own
    /// integers are read only where `integers` (a worker asked for float32 spares the time
    /// and memory).
    pub fn read(bytes: &[u8], sha256: String, integers: bool) -> Result<Self, ModelError> {
        if bytes.is_empty() {
            return Err(ModelError::Empty);
        }
        let reader = Reader::parse(bytes)?;
        let (convs, classifier) = reader.layers()?;
        let input_scaling = reader.input_scaling()?;
        let labels = appended_labels(bytes, classifier.outputs)?;
        // A float32 file, or a quantized one whose integers the integer kernels cannot take,
        // runs in float32.
        let quantized = match integers {
            true => QuantizedMobileNetV2::from_reader(&reader)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            false => Err("they were not read (float32 was asked for)".to_string()),
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
