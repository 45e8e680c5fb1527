//! The trainable head on the frozen backbone: pooled features → Dense(128, ReLU) → Dense(N).
//! Saved and loaded as `.safetensors` with the metadata needed to use it again.

use std::collections::HashMap;

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::architecture::FEATURE_DIM;

/// Configuration of a [`Head`].
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// Number of the user's classes.
    pub num_classes: usize,
    /// Size of the pooled backbone features.
    #[config(default = 1280)]
    pub input: usize,
    /// Width of the hidden ReLU layer (the Keras recipe's Dense(128)).
    #[config(default = 128)]
    pub hidden: usize,
}

/// Dense(hidden, ReLU) → Dense(classes), producing logits.
#[derive(Module, Debug)]
pub struct Head {
    pub hidden: Linear,
    pub output: Linear,
}

impl HeadConfig {
    pub fn init(&self, device: &Device) -> Head {
        Head {
            hidden: LinearConfig::new(self.input, self.hidden).init(device),
            output: LinearConfig::new(self.hidden, self.num_classes).init(device),
        }
    }
}

impl Head {
    /// `[N, 1280]` features → `[N, classes]` logits.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.output.forward(relu(self.hidden.forward(features)))
    }

    pub fn num_classes(&self) -> usize {
        self.output.weight.dims()[1]
    }
}

/// What travels with a saved head, so it can be used (and refused) correctly later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadMetadata {
    pub classes: Vec<String>,
    /// sha256 of the `.tflite` whose features the head was trained on.
    pub base_model_sha256: String,
    /// The training recipe, as JSON.
    pub recipe: serde_json::Value,
    /// How photos become model inputs.
    pub preprocessing: String,
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
pub const PREPROCESSING: &str =
    "centre crop to a square, resize to 224x224 (antialiased bilinear), x = (p - 128) / 128";

/// Serializes the head's weights and metadata as `.safetensors` bytes.
pub async fn save(head: &Head, metadata: &HeadMetadata) -> Result<Vec<u8>, HeadFileError> {
    let tensors = [
        ("hidden.weight", head.hidden.weight.val()),
        ("output.weight", head.output.weight.val()),
    ];
    let biases = [
        ("hidden.bias", head.hidden.bias.as_ref().map(|b| b.val())),
        ("output.bias", head.output.bias.as_ref().map(|b| b.val())),
    ];
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in tensors {
        let dims = t.dims().to_vec();
        owned.push((name.into(), dims, f32_bytes(t.into_data_async().await)?));
    }
    for (name, b) in biases {
        if let Some(b) = b {
            let dims = b.dims().to_vec();
            owned.push((name.into(), dims, f32_bytes(b.into_data_async().await)?));
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
    let values = data
        .map_err(|e| HeadFileError::Unreadable(e.to_string()))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| HeadFileError::Unreadable(format!("{e:?}")))?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// Reads a head saved by [`save`]. With `base_model_sha256`, a head trained on another base
/// model is refused.
pub fn load(
    bytes: &[u8],
    base_model_sha256: Option<&str>,
    device: &Device,
) -> Result<(Head, HeadMetadata), HeadFileError> {
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
    let hidden = tensors
        .tensor("hidden.bias")
        .map_err(|e| bad(e.to_string()))?
        .shape()
        .first()
        .copied()
        .unwrap_or(0);
    if classes < 2 || hidden == 0 {
        return Err(bad("it names fewer than two classes".into()));
    }
    let mut head = HeadConfig::new(classes).with_hidden(hidden).init(device);
    head.hidden.weight = Param::from_data(read("hidden.weight", &[FEATURE_DIM, hidden])?, device);
    head.hidden.bias = Some(Param::from_data(read("hidden.bias", &[hidden])?, device));
    head.output.weight = Param::from_data(read("output.weight", &[hidden, classes])?, device);
    head.output.bias = Some(Param::from_data(read("output.bias", &[classes])?, device));
    Ok((head, metadata))
}
