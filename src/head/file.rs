//! The head file: the trained parts as `.safetensors` (self-explaining tensor names), with the
//! metadata needed to use them again (classes, base model, recipe, preprocessing) and to refuse
//! them where they do not fit.

use std::collections::HashMap;

pub use afinar_core::head::HeadFileError;
use afinar_core::head::{FORMAT, HeadWeights};
use afinar_vocabulary::TrainingRecord;
use burn::module::Param;
use burn::prelude::*;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Deserializer, Serialize};

use super::model::{HeadConfig, TrainedParts};
use crate::model::BackboneTop;
use crate::recipe::Recipe;
use crate::tflite::DenseWeights;

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
    /// When it was trained, on how many photos, and how well it scored (none in files written
    /// before heads recorded it).
    #[serde(default)]
    pub trained: Option<TrainingRecord>,
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

/// Reads parts saved by [`save`] (the core checks the file: [`HeadWeights::read`]). With
/// `base_model_sha256`, parts trained on another base model are refused.
pub fn load(
    bytes: &[u8],
    base_model_sha256: Option<&str>,
    device: &Device,
) -> Result<(TrainedParts, HeadMetadata), HeadFileError> {
    let weights = HeadWeights::read(bytes, base_model_sha256)?;
    let metadata: HeadMetadata = serde_json::from_str(&weights.metadata)
        .map_err(|e| HeadFileError::Unreadable(format!("metadata: {e}")))?;
    let (hidden, output) = (&weights.hidden, &weights.output);
    let mut head = HeadConfig::new(output.outputs)
        .with_hidden(hidden.outputs)
        .init(device);
    let dense = |layer: &DenseWeights| {
        (
            Param::from_data(
                TensorData::new(layer.weight.clone(), [layer.inputs, layer.outputs]),
                device,
            ),
            Some(Param::from_data(
                TensorData::new(layer.bias.clone(), [layer.outputs]),
                device,
            )),
        )
    };
    (head.hidden.weight, head.hidden.bias) = dense(hidden);
    (head.output.weight, head.output.bias) = dense(output);
    let top = match weights.unfrozen_blocks {
        0 => None,
        unfrozen => {
            let mut top = BackboneTop::init(unfrozen, device);
            for (conv, saved) in top.convs_mut().into_iter().zip(&weights.top) {
                let weight = TensorData::new(saved.weight.clone(), saved.spec.weight_shape());
                let bias = TensorData::new(saved.bias.clone(), [saved.spec.out_channels]);
                conv.set_weights(weight, bias, device);
            }
            Some(top)
        }
    };
    Ok((TrainedParts { head, top }, metadata))
}
