//! The head file: the trained parts as `.safetensors` (self-explaining tensor names), with the
//! metadata needed to use them again (classes, base model, recipe, preprocessing) and to refuse
//! them where they do not fit.

use std::collections::HashMap;

use afinar_vocabulary::limits::{MAX_CLASSES, MAX_HIDDEN, MIN_CLASSES};
use burn::module::Param;
use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Deserializer, Serialize};

use super::model::{HeadConfig, TrainedParts};
use crate::architecture::{FEATURE_DIM, MAX_UNFROZEN_BLOCKS};
use crate::model::BackboneTop;
use crate::recipe::Recipe;

/// What travels with a saved head, so it can be used (and refused) correctly later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadMetadata {
    pub classes: Vec<String>,
    /// sha256 of the `.tflite` whose features the head was trained on.
    pub base_model_sha256: String,
    /// The recipe it was trained with (`None` in files written before the recipe was a
    /// `Config`: their recipe is not read back, the head still is).
    #[serde(default, deserialize_with = "recipe_if_readable")]
    pub recipe: Option<Recipe>,
    /// How the photos were split into training and validation.
    #[serde(default)]
    pub split: String,
    /// How photos become model inputs.
    pub preprocessing: String,
    /// Backbone blocks that were fine-tuned and are saved with the head (0: the head alone).
    #[serde(default)]
    pub unfrozen_blocks: usize,
}

impl PartialEq for HeadMetadata {
    /// Equal when they say the same: the recipe (a Burn `Config`) compares as its JSON.
    fn eq(&self, other: &Self) -> bool {
        let json = |m: &Self| serde_json::to_value(m).ok();
        json(self) == json(other)
    }
}

fn recipe_if_readable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Recipe>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(value).ok())
}

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

const FORMAT: &str = "afinar-head-1";

/// Serializes the trained parts and metadata as `.safetensors` bytes.
pub async fn save(parts: &TrainedParts, metadata: &HeadMetadata) -> Result<Vec<u8>, HeadFileError> {
    let head = &parts.head;
    let mut tensors: Vec<(String, Tensor<2>)> = vec![
        ("hidden.weight".into(), head.hidden.weight.val()),
        ("output.weight".into(), head.output.weight.val()),
    ];
    let mut vectors: Vec<(String, Option<Tensor<1>>)> = vec![
        (
            "hidden.bias".into(),
            head.hidden.bias.as_ref().map(|b| b.val()),
        ),
        (
            "output.bias".into(),
            head.output.bias.as_ref().map(|b| b.val()),
        ),
    ];
    let mut kernels: Vec<(String, Tensor<4>)> = Vec::new();
    if let Some(top) = &parts.top {
        for (name, conv) in top.named_convs() {
            kernels.push((format!("top.{name}.weight"), conv.conv.weight.val()));
            vectors.push((
                format!("top.{name}.bias"),
                conv.conv.bias.as_ref().map(|b| b.val()),
            ));
        }
    }
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in tensors.drain(..) {
        let dims = t.dims().to_vec();
        owned.push((name, dims, f32_bytes(t.into_data_async().await)?));
    }
    for (name, t) in kernels {
        let dims = t.dims().to_vec();
        owned.push((name, dims, f32_bytes(t.into_data_async().await)?));
    }
    for (name, b) in vectors {
        if let Some(b) = b {
            let dims = b.dims().to_vec();
            owned.push((name, dims, f32_bytes(b.into_data_async().await)?));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(name, dims, bytes)| {
            TensorView::new(Dtype::F32, dims.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| HeadFileError::Unreadable(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let info: HashMap<String, String> = HashMap::from([
        ("format".into(), FORMAT.into()),
        (
            "metadata".into(),
            serde_json::to_string(metadata)
                .map_err(|e| HeadFileError::Unreadable(e.to_string()))?,
        ),
    ]);
    safetensors::serialize(views, Some(info)).map_err(|e| HeadFileError::Unreadable(e.to_string()))
}

fn f32_bytes(
    data: Result<burn::tensor::TensorData, impl std::fmt::Display>,
) -> Result<Vec<u8>, HeadFileError> {
    let values = f32_values(data)?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// A trained tensor's values, read back from its device.
pub(crate) fn f32_values(
    data: Result<burn::tensor::TensorData, impl std::fmt::Display>,
) -> Result<Vec<f32>, HeadFileError> {
    data.map_err(|e| HeadFileError::Unreadable(e.to_string()))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| HeadFileError::Unreadable(format!("{e:?}")))
}

/// Reads parts saved by [`save`]. With `base_model_sha256`, parts trained on another base
/// model are refused.
pub fn load(
    bytes: &[u8],
    base_model_sha256: Option<&str>,
    device: &Device,
) -> Result<(TrainedParts, HeadMetadata), HeadFileError> {
    let bad = |m: String| HeadFileError::Unreadable(m);
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let info = header.metadata().clone().unwrap_or_default();
    if info.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad("it has no Afinar head metadata".into()));
    }
    let metadata: HeadMetadata = serde_json::from_str(info.get("metadata").map_or("", |s| s))
        .map_err(|e| bad(format!("metadata: {e}")))?;
    if let Some(current) = base_model_sha256
        && current != metadata.base_model_sha256
    {
        return Err(HeadFileError::OtherBaseModel {
            trained_on: metadata.base_model_sha256.chars().take(12).collect(),
            current: current.chars().take(12).collect(),
        });
    }
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let read = |name: &str, dims: &[usize]| -> Result<TensorData, HeadFileError> {
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
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(TensorData::new(values, dims.to_vec()))
    };
    let classes = metadata.classes.len();
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
    if metadata.unfrozen_blocks > MAX_UNFROZEN_BLOCKS {
        return Err(bad(format!(
            "it unfreezes {} blocks; MobileNetV2 has {MAX_UNFROZEN_BLOCKS}",
            metadata.unfrozen_blocks
        )));
    }
    // Every shape is checked against the file's data before the head is made.
    let hidden_weight = read("hidden.weight", &[FEATURE_DIM, hidden])?;
    let hidden_bias = read("hidden.bias", &[hidden])?;
    let output_weight = read("output.weight", &[hidden, classes])?;
    let output_bias = read("output.bias", &[classes])?;
    let mut head = HeadConfig::new(classes).with_hidden(hidden).init(device);
    head.hidden.weight = Param::from_data(hidden_weight, device);
    head.hidden.bias = Some(Param::from_data(hidden_bias, device));
    head.output.weight = Param::from_data(output_weight, device);
    head.output.bias = Some(Param::from_data(output_bias, device));
    let top = match metadata.unfrozen_blocks {
        0 => None,
        unfrozen => {
            let mut top = BackboneTop::init(unfrozen, device);
            for (name, conv) in top.named_convs_mut() {
                let weight_dims = conv.conv.weight.dims();
                let out = weight_dims[0];
                let weight = read(&format!("top.{name}.weight"), &weight_dims)?;
                let bias = read(&format!("top.{name}.bias"), &[out])?;
                conv.set_weights(weight, bias, device);
            }
            Some(top)
        }
    };
    Ok((TrainedParts { head, top }, metadata))
}
