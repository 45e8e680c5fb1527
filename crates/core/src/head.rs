//! A head file's trained weights, read and checked without Burn: the user's classes, the two
//! dense layers on the pooled features and, after fine-tuning, the top of the backbone. The
//! file is `.safetensors` with self-explaining tensor names; the `afinar` crate writes it and
//! builds its trainable parts from what this module reads.

use afinar_vocabulary::limits::{MAX_CLASSES, MAX_HIDDEN, MIN_CLASSES};
use safetensors::tensor::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::architecture::{BackboneSpec, ConvSpec, FEATURE_DIM, MAX_UNFROZEN_BLOCKS};
use crate::tflite::{ConvWeights, DenseWeights};

/// The `format` entry of a head file's safetensors metadata.
pub const FORMAT: &str = "afinar-head-1";

/// Why a saved head cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HeadFileError {
    #[error("not a head file Afinar can read ({0})")]
    Unreadable(String),
    #[error(
        "the head was trained on another base model (sha256 {trained_on}…), not this one ({current}…)"
    )]
    OtherBaseModel { trained_on: String, current: String },
}

/// What inference reads of the file's metadata (the recipe and the split are the training
/// library's to read).
#[derive(Deserialize)]
struct Essentials {
    classes: Vec<String>,
    base_model_sha256: String,
    /// Read so that a file without it is refused here as it is by the training library.
    #[allow(dead_code)]
    preprocessing: String,
    #[serde(default)]
    unfrozen_blocks: usize,
}

/// A head file's weights, every shape checked against MobileNetV2's.
#[derive(Debug, Clone)]
pub struct HeadWeights {
    pub classes: Vec<String>,
    /// sha256 of the `.tflite` whose features the head was trained on.
    pub base_model_sha256: String,
    /// The file's metadata as it has it (JSON).
    pub metadata: String,
    /// Pooled features → hidden units (ReLU).
    pub hidden: DenseWeights,
    /// Hidden units → the classes' logits.
    pub output: DenseWeights,
    /// Blocks of the backbone that were fine-tuned (0: the head alone).
    pub unfrozen_blocks: usize,
    /// Their convolutions and the last conv, in execution order (empty for a head alone).
    pub top: Vec<ConvWeights>,
}

/// Stable names of the convolutions of a fine-tuned top of `unfrozen` blocks (`blocks.0.expand`,
/// …, `last`), in execution order, with their shapes.
pub fn top_convs(unfrozen: usize) -> Vec<(String, ConvSpec)> {
    let spec = BackboneSpec::mobilenet_v2();
    let first = spec.blocks.len().saturating_sub(unfrozen);
    let mut convs = Vec::new();
    for (i, block) in spec.blocks[first..].iter().enumerate() {
        if let Some(expand) = block.expand {
            convs.push((format!("blocks.{i}.expand"), expand));
        }
        convs.push((format!("blocks.{i}.depthwise"), block.depthwise));
        convs.push((format!("blocks.{i}.project"), block.project));
    }
    convs.push(("last".into(), spec.last));
    convs
}

impl HeadWeights {
    /// Reads a head file. With `base_model_sha256`, a head trained on another base model is
    /// refused. Every count the file states is bounded before anything is sized by it.
    pub fn read(bytes: &[u8], base_model_sha256: Option<&str>) -> Result<Self, HeadFileError> {
        let bad = HeadFileError::Unreadable;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let info = header.metadata().clone().unwrap_or_default();
        if info.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad("it has no Afinar head metadata".into()));
        }
        let metadata = info.get("metadata").cloned().unwrap_or_default();
        let essentials: Essentials =
            serde_json::from_str(&metadata).map_err(|e| bad(format!("metadata: {e}")))?;
        if let Some(current) = base_model_sha256
            && current != essentials.base_model_sha256
        {
            return Err(HeadFileError::OtherBaseModel {
                trained_on: essentials.base_model_sha256.chars().take(12).collect(),
                current: current.chars().take(12).collect(),
            });
        }
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let read = |name: &str, dims: &[usize]| -> Result<Vec<f32>, HeadFileError> {
            let view = tensors
                .tensor(name)
                .map_err(|e| bad(format!("{name}: {e}")))?;
            if view.dtype() != Dtype::F32 || view.shape() != dims {
                return Err(bad(format!(
                    "{name} is {:?} {:?}, expected F32 {dims:?}",
                    view.dtype(),
                    view.shape()
                )));
            }
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let classes = essentials.classes.len();
        if !(MIN_CLASSES..=MAX_CLASSES).contains(&classes) {
            return Err(bad(format!(
                "it names {classes} classes; a head has between {MIN_CLASSES} and {MAX_CLASSES}"
            )));
        }
        let hidden = tensors
            .tensor("hidden.bias")
            .map_err(|e| bad(format!("hidden.bias: {e}")))?
            .shape()
            .first()
            .copied()
            .unwrap_or(0);
        // Checked before anything is sized by it: the file's word alone must not size an
        // allocation (a crafted `hidden.bias` can claim millions of units).
        if !(1..=MAX_HIDDEN).contains(&hidden) {
            return Err(bad(format!(
                "its hidden layer has {hidden} units; a head has between 1 and {MAX_HIDDEN}"
            )));
        }
        let unfrozen_blocks = essentials.unfrozen_blocks;
        if unfrozen_blocks > MAX_UNFROZEN_BLOCKS {
            return Err(bad(format!(
                "it unfreezes {unfrozen_blocks} blocks; MobileNetV2 has {MAX_UNFROZEN_BLOCKS}"
            )));
        }
        let dense = |name: &str, inputs: usize, outputs: usize| {
            Ok::<_, HeadFileError>(DenseWeights {
                weight: read(&format!("{name}.weight"), &[inputs, outputs])?,
                bias: read(&format!("{name}.bias"), &[outputs])?,
                inputs,
                outputs,
            })
        };
        let hidden_layer = dense("hidden", FEATURE_DIM, hidden)?;
        let output = dense("output", hidden, classes)?;
        let top = match unfrozen_blocks {
            0 => Vec::new(),
            unfrozen => top_convs(unfrozen)
                .into_iter()
                .map(|(name, spec)| {
                    Ok(ConvWeights {
                        spec,
                        weight: read(&format!("top.{name}.weight"), &spec.weight_shape())?,
                        bias: read(&format!("top.{name}.bias"), &[spec.out_channels])?,
                    })
                })
                .collect::<Result<_, HeadFileError>>()?,
        };
        Ok(Self {
            classes: essentials.classes,
            base_model_sha256: essentials.base_model_sha256,
            metadata,
            hidden: hidden_layer,
            output,
            unfrozen_blocks,
            top,
        })
    }
}
