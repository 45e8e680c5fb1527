//! A classifier Afinar exported, read back (the CLI's `classify --model` on an exported file,
//! and the tests that check an export computes what the page does).

use super::error::ModelError;
use super::reader::Reader;
use super::weights::{ConvWeights, DenseWeights, appended_labels};
use crate::architecture::FEATURE_DIM;
use crate::preprocess::InputScaling;

/// A classifier Afinar exported (the `afinar` crate's `head::export`), read back: MobileNetV2's
/// convolutions as the file has them (the fine-tuned ones included), the head's two dense
/// layers, and the class names.
pub struct ExportedClassifier {
    pub convs: Vec<ConvWeights>,
    pub hidden: DenseWeights,
    pub output: DenseWeights,
    pub labels: Option<Vec<String>>,
    pub input_scaling: InputScaling,
}

impl ExportedClassifier {
    pub fn from_tflite(bytes: &[u8]) -> Result<Self, ModelError> {
        let reader = Reader::parse(bytes)?;
        let (convs, top) = reader.backbone_and_top()?;
        let [(hidden, false), (output, false)] = top[..] else {
            return Err(ModelError::WrongArchitecture(
                "not a classifier Afinar exported: it has no two dense layers after the backbone"
                    .into(),
            ));
        };
        let hidden = reader.classifier(hidden, false, FEATURE_DIM)?;
        let output = reader.classifier(output, false, hidden.outputs)?;
        let labels = appended_labels(bytes, output.outputs)?;
        Ok(Self {
            convs,
            hidden,
            output,
            labels,
            input_scaling: reader.input_scaling()?,
        })
    }
}
