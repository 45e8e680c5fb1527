//! The trained classifier as one `.tflite` file that LiteRT and MediaPipe run: the base
//! model's backbone (its own quantized layers below the freeze boundary, or all of it in
//! float32) with the fine-tuned top (if any) in place, the head, softmax, the
//! user's classes as its label list (in the zip appended to the file, as the base models carry
//! theirs, and named in the file's metadata, as MediaPipe wants).

use std::io::{Cursor, Write};

use super::file::{HeadFileError, f32_values};
use super::model::TrainedParts;
use crate::architecture::BACKBONE_CONVS;
use crate::tflite::metadata::ClassifierMetadata;
use crate::tflite::writer::{ClassifierGraph, DenseLayer, KeptBase, WriteError};
use crate::tflite::{DenseWeights, MobileNetV2Weights};

/// Name of the label file inside the exported model.
pub const LABELS_FILE: &str = "labels.txt";

/// Why a classifier could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Parts(#[from] HeadFileError),
    #[error("the classifier cannot be written: {0}")]
    Write(#[from] WriteError),
    #[error("{classes} class names for a head with {outputs} outputs")]
    ClassCount { classes: usize, outputs: usize },
    #[error("the label list cannot be packed: {0}")]
    Labels(String),
}

/// How much of the base model an export writes in float32.
#[derive(Debug, Clone, Copy)]
pub enum ExportForm<'a> {
    /// Every layer in float32 (the base's weights dequantized).
    Float,
    /// The base model file's own layers below the freeze boundary (its quantized ops and
    /// buffers, kept as they are), the trained part in float32. `file` is the base's bytes.
    KeepBase { file: &'a [u8] },
}

/// The `.tflite` bytes of `base` with `parts` trained on it, its outputs named `classes`.
/// Input: `[1, 224, 224, 3]`: float32 pixels scaled as `base` scales them (the metadata says
/// how), or the base file's own input when its layers are kept; output: `[1, classes]`
/// probabilities.
pub async fn tflite(
    base: &MobileNetV2Weights,
    parts: &TrainedParts,
    classes: &[String],
    form: ExportForm<'_>,
) -> Result<Vec<u8>, ExportError> {
    let outputs = parts.head.num_classes();
    if classes.len() != outputs {
        return Err(ExportError::ClassCount {
            classes: classes.len(),
            outputs,
        });
    }
    let mut convs = base.convs.clone();
    if let Some(top) = &parts.top {
        let trained = top.named_convs();
        let first = BACKBONE_CONVS.saturating_sub(trained.len());
        for (conv, (_, layer)) in convs[first..].iter_mut().zip(trained) {
            conv.weight = f32_values(layer.conv.weight.val().into_data_async().await)?;
            if let Some(bias) = &layer.conv.bias {
                conv.bias = f32_values(bias.val().into_data_async().await)?;
            }
        }
    }
    let head = [(&parts.head.hidden, true), (&parts.head.output, false)];
    let mut layers = Vec::with_capacity(head.len());
    for (linear, relu) in head {
        let [inputs, outputs] = linear.weight.dims();
        let weight = f32_values(linear.weight.val().into_data_async().await)?;
        let bias = match &linear.bias {
            Some(b) => f32_values(b.val().into_data_async().await)?,
            None => vec![0.0; outputs],
        };
        layers.push(DenseLayer {
            weights: DenseWeights {
                weight,
                bias,
                inputs,
                outputs,
            },
            relu,
        });
    }
    let description = format!(
        "Afinar image classifier ({} classes: {}) on MobileNetV2 (base model sha256 {})",
        classes.len(),
        classes.join(", "),
        base.sha256
    );
    let scaling = base.input_scaling;
    let metadata = ClassifierMetadata {
        name: "Afinar image classifier",
        description: &description,
        mean: scaling.zero_point,
        std: 1.0 / scaling.scale,
        labels_file: LABELS_FILE,
    }
    .to_bytes();
    let kept_base = match form {
        ExportForm::Float => None,
        ExportForm::KeepBase { file } => Some(KeptBase {
            file,
            unfrozen: parts.unfrozen(),
        }),
    };
    let mut bytes = ClassifierGraph {
        convs: &convs,
        head: &layers,
        kept_base,
        description: &description,
        metadata: Some(&metadata),
    }
    .to_tflite()?;
    append_labels(&mut bytes, classes)?;
    Ok(bytes)
}

/// Appends a zip holding [`LABELS_FILE`] (stored, not compressed: what TFLite's metadata
/// tools write and every reader opens).
fn append_labels(model: &mut Vec<u8>, classes: &[String]) -> Result<(), ExportError> {
    let fail = |e: &dyn std::fmt::Display| ExportError::Labels(e.to_string());
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(LABELS_FILE, options).map_err(|e| fail(&e))?;
    let text: String = classes.iter().map(|c| format!("{c}\n")).collect();
    zip.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
    let archive = zip.finish().map_err(|e| fail(&e))?.into_inner();
    model.extend_from_slice(&archive);
    Ok(())
}
