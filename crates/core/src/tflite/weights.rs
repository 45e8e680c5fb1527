//! What a `.tflite` file gives the app: float32 weights in Burn's layout, the input scaling,
//! the label list and the file's sha256.

use crate::architecture::ConvSpec;
use crate::labels::parse_labels;
use crate::preprocess::InputScaling;

pub use super::error::ModelError;

/// A convolution's float32 weights, in Burn's layout.
#[derive(Debug, Clone)]
pub struct ConvWeights {
    pub spec: ConvSpec,
    /// `[out, in / groups, kh, kw]`, row-major.
    pub weight: Vec<f32>,
    /// `[out]`.
    pub bias: Vec<f32>,
}

/// The classifier: a dense layer from the pooled features to the outputs.
#[derive(Debug, Clone)]
pub struct DenseWeights {
    /// `[in, out]`, row-major (Burn's `Linear` layout).
    pub weight: Vec<f32>,
    /// `[out]`.
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

/// Everything the app needs from a MobileNetV2 `.tflite` file.
#[derive(Debug, Clone)]
pub struct MobileNetV2Weights {
    /// The 52 backbone convolutions in execution order.
    pub convs: Vec<ConvWeights>,
    pub classifier: DenseWeights,
    pub input_scaling: InputScaling,
    /// Labels from the zip appended to the file, one per output, if the file has them.
    pub labels: Option<Vec<String>>,
    /// sha256 of the whole file, lowercase hex: identifies the base model of a trained head.
    pub sha256: String,
    /// The file's own 8-bit integers, for a quantized file whose integers the integer kernels
    /// take (natively); else why not, for people (a float32 file, one the kernels cannot
    /// take, the page).
    pub quantized: Result<std::sync::Arc<super::quantized::QuantizedMobileNetV2>, String>,
}

impl MobileNetV2Weights {
    /// Number of outputs of the classifier (1001 for the ImageNet files).
    pub fn num_classes(&self) -> usize {
        self.classifier.outputs
    }

    /// Labels from the file, else from `fallback` (the text of an `imagenet_labels.txt`).
    pub fn labels_or(&self, fallback: Option<&str>) -> Result<Vec<String>, ModelError> {
        labels_or(self.labels.clone(), fallback, self.num_classes())
    }
}

/// The labels a file's bytes carry, else `fallback`'s (the text of an `imagenet_labels.txt`):
/// one for each of its `classes` outputs.
pub fn file_labels(
    bytes: &[u8],
    classes: usize,
    fallback: Option<&str>,
) -> Result<Vec<String>, ModelError> {
    labels_or(appended_labels(bytes, classes)?, fallback, classes)
}

fn labels_or(
    labels: Option<Vec<String>>,
    fallback: Option<&str>,
    classes: usize,
) -> Result<Vec<String>, ModelError> {
    let labels = match (labels, fallback) {
        (Some(labels), _) => labels,
        (None, Some(text)) => parse_labels(text),
        (None, None) => return Err(ModelError::NoLabels),
    };
    check_label_count(classes, labels.len())?;
    Ok(labels)
}

/// The label list a file carries (appended as a zip, as TFLite's metadata writer does), if
/// any, refused when it does not name each of the file's `classes` outputs.
pub(crate) fn appended_labels(
    bytes: &[u8],
    classes: usize,
) -> Result<Option<Vec<String>>, ModelError> {
    let labels = crate::labels::labels_from_appended_zip(bytes);
    if let Some(labels) = &labels {
        check_label_count(classes, labels.len())?;
    }
    Ok(labels)
}

pub(crate) fn check_label_count(classes: usize, labels: usize) -> Result<(), ModelError> {
    if classes == labels {
        Ok(())
    } else {
        Err(ModelError::LabelCount { classes, labels })
    }
}
