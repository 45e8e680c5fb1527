//! The trainable head on the frozen backbone: pooled features → Dense(128, ReLU) → Dense(N).
//! Saved and loaded as `.safetensors` (with the fine-tuned top of the backbone, when there is
//! one) and the metadata needed to use it again.

use std::collections::HashMap;

use burn::module::Param;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::{Rng, SeedableRng};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::architecture::{FEATURE_DIM, MAX_UNFROZEN_BLOCKS};
use crate::model::{BackboneTop, MobileNetV2};

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
    /// Seeds the initial weights. Drawn from a generator of the head's own, not the device's
    /// shared one, so that trainings running at the same time stay reproducible.
    #[config(default = 42)]
    pub seed: u64,
}

/// Dense(hidden, ReLU) → Dense(classes), producing logits.
#[derive(Module, Debug)]
pub struct Head {
    pub hidden: Linear,
    pub output: Linear,
}

impl HeadConfig {
    /// A new head, initialized as Keras does its `Dense` layers (Glorot-uniform weights, zero
    /// biases), which the recipe's reference accuracy was measured with.
    pub fn init(&self, device: &Device) -> Head {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        Head {
            hidden: dense(self.input, self.hidden, &mut rng, device),
            output: dense(self.hidden, self.num_classes, &mut rng, device),
        }
    }
}

/// A Dense layer with Glorot-uniform weights (`±√(6 / (in + out))`) and zero biases.
fn dense(inputs: usize, outputs: usize, rng: &mut impl Rng, device: &Device) -> Linear {
    let limit = (6.0 / (inputs + outputs) as f64).sqrt() as f32;
    let weights: Vec<f32> = (0..inputs * outputs)
        .map(|_| rng.random_range(-limit..limit))
        .collect();
    // Zeros: replaced at once, and a random draw would use the device's shared generator.
    let mut linear = LinearConfig::new(inputs, outputs)
        .with_initializer(Initializer::Zeros)
        .init(device);
    linear.weight = Param::from_data(TensorData::new(weights, [inputs, outputs]), device);
    linear.bias = Some(Param::from_tensor(Tensor::zeros([outputs], device)));
    linear
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
    /// Backbone blocks that were fine-tuned and are saved with the head (0: the head alone).
    #[serde(default)]
    pub unfrozen_blocks: usize,
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

/// The recipe as saved in a head file's metadata: the head's settings, how the photos were
/// split, and the fine-tuning stage's settings when there was one.
pub fn recipe(
    head: &crate::train::TrainConfig,
    split: &str,
    tuning: Option<&crate::finetune::FineTuneConfig>,
) -> serde_json::Value {
    let mut recipe = serde_json::json!({
        "head": "dense128-relu-dense",
        "optimizer": "adam",
        "epochs": head.epochs,
        "learning_rate": head.learning_rate,
        "batch_size": head.batch_size,
        "seed": head.seed,
        "split": split,
    });
    if let Some(t) = tuning {
        recipe["finetune"] = serde_json::json!({
            "unfreeze": t.unfreeze,
            "epochs": t.epochs,
            "learning_rate": t.learning_rate,
        });
    }
    recipe
}
pub const PREPROCESSING: &str =
    "centre crop to a square, resize to 224x224 (antialiased bilinear), x = (p - 128) / 128";

/// What a training run produces: the head and, after the fine-tuning stage, the backbone's top.
#[derive(Module, Debug)]
pub struct TrainedParts {
    pub head: Head,
    pub top: Option<BackboneTop>,
}

impl TrainedParts {
    /// Logits in the user's classes for images, with `base` below the trained parts.
    /// `[N, 3, 224, 224]` → `[N, classes]`.
    pub fn logits(&self, base: &MobileNetV2, input: Tensor<4>) -> Tensor<2> {
        let features = match &self.top {
            Some(top) => top.forward(base.boundary(input, top.unfrozen())),
            None => base.features(input),
        };
        self.head.forward(features)
    }

    /// Blocks of the backbone the parts replace (0 for a head alone).
    pub fn unfrozen(&self) -> usize {
        self.top.as_ref().map_or(0, BackboneTop::unfrozen)
    }
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
    let values = data
        .map_err(|e| HeadFileError::Unreadable(e.to_string()))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| HeadFileError::Unreadable(format!("{e:?}")))?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
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
    if metadata.unfrozen_blocks > MAX_UNFROZEN_BLOCKS {
        return Err(bad(format!(
            "it unfreezes {} blocks; MobileNetV2 has {MAX_UNFROZEN_BLOCKS}",
            metadata.unfrozen_blocks
        )));
    }
    let mut head = HeadConfig::new(classes).with_hidden(hidden).init(device);
    head.hidden.weight = Param::from_data(read("hidden.weight", &[FEATURE_DIM, hidden])?, device);
    head.hidden.bias = Some(Param::from_data(read("hidden.bias", &[hidden])?, device));
    head.output.weight = Param::from_data(read("output.weight", &[hidden, classes])?, device);
    head.output.bias = Some(Param::from_data(read("output.bias", &[classes])?, device));
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
