//! Training: the photos prepared for it, the rows sent to train on, and what comes back.

use afinar_vocabulary::{Prediction, RunScores, TrainSettings};
use serde::{Deserialize, Serialize};

use crate::f32_bytes;

/// A training photo as the model sees it, prepared once and kept by the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparedPhoto {
    /// Pooled backbone features (1280 values).
    #[serde(with = "f32_bytes")]
    pub features: Vec<f32>,
    /// Activations below the last `unfreeze` blocks, when asked for (fine-tuning).
    #[serde(with = "f32_bytes::option", default)]
    pub boundary: Option<Vec<f32>>,
    /// Pooled features of the photo's augmented views, 1280 values per view.
    #[serde(with = "f32_bytes", default)]
    pub augmented: Vec<f32>,
    /// The augmented views' boundary activations, when the boundary was asked for.
    #[serde(with = "f32_bytes::option", default)]
    pub augmented_boundary: Option<Vec<f32>>,
    /// What the ImageNet head alone says (top-3): the "zero-shot" view.
    pub imagenet: Vec<Prediction>,
    /// sha256 of the file's bytes, to find the same photo in two classes.
    pub sha256: String,
    /// The 224×224 crop the model saw, as a JPEG.
    #[serde(with = "serde_bytes")]
    pub thumbnail_jpeg: Vec<u8>,
}

impl PreparedPhoto {
    /// Augmented views it holds.
    pub fn views(&self) -> usize {
        self.augmented.len() / self.features.len().max(1)
    }
}

/// The photos to train on: one row per photo, in the same order everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRows {
    pub classes: Vec<String>,
    pub labels: Vec<usize>,
    /// Pooled features, `labels.len()` rows of 1280.
    #[serde(with = "f32_bytes")]
    pub features: Vec<f32>,
    /// Boundary activations for the fine-tuning stage (with `settings.unfreeze`).
    #[serde(with = "f32_bytes::option", default)]
    pub boundary: Option<Vec<f32>>,
    /// Pooled features of `settings.views` augmented views per photo, photo after photo.
    #[serde(with = "f32_bytes::option", default)]
    pub augmented: Option<Vec<f32>>,
    /// The augmented views' boundary activations (fine-tuning on augmented views).
    #[serde(with = "f32_bytes::option", default)]
    pub augmented_boundary: Option<Vec<f32>>,
    /// The photos' sha256, to find the same photo in two classes.
    pub sha256: Vec<String>,
    /// The photos' file names, for messages about them.
    pub names: Vec<String>,
    /// Which photos are held out for validation, photo by photo: a fixed split, as the CLI's
    /// `--split` file gives, in place of `settings.val_fraction`'s stratified draw (`None`).
    /// The benchmarks score the page on the CLI's split this way. Held-out photos' view rows
    /// are never read.
    #[serde(default)]
    pub validation: Option<Vec<bool>>,
    /// The rows (`features`, `boundary`, `augmented`, `augmented_boundary`) came ahead in
    /// [`crate::Request::TrainRows`] parts and are empty here.
    #[serde(default)]
    pub rows_ahead: bool,
    pub settings: TrainSettings,
}

/// What a finished training run gives the page: its scores, and the trained parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingOutcome {
    pub scores: RunScores,
    /// The trained parts as a `.safetensors` file (head, and the fine-tuned blocks).
    #[serde(with = "serde_bytes")]
    pub head_file: Vec<u8>,
}

/// A photo (training or validation) whose label a model that never saw it disputes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisputedLabel {
    /// Its row in the training set.
    pub row: usize,
    /// The class the model gives it instead, and that class's probability.
    pub suggested: usize,
    pub confidence: f32,
    /// The probability the model gives the photo's label.
    pub label_probability: f32,
}

/// A trained head the worker now uses next to the ImageNet head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadInfo {
    pub classes: Vec<String>,
    /// Fine-tuned backbone blocks it carries (0: the head alone).
    pub unfrozen_blocks: usize,
}

/// A helper training worker's share of a fine-tuning stage: where the stage starts and the rows
/// of the training photos it holds (photo `i` of the stage is held by worker `i % ranks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageShare {
    pub rank: usize,
    pub ranks: usize,
    /// Training photos across every worker.
    pub photos: usize,
    pub classes: usize,
    pub settings: TrainSettings,
    /// Every weight of the stage's model as it starts, in the module's order.
    #[serde(with = "f32_bytes")]
    pub weights: Vec<f32>,
    /// The labels of the photos it holds.
    pub labels: Vec<usize>,
    /// Their boundary activations, one row per photo.
    #[serde(with = "f32_bytes")]
    pub boundary: Vec<f32>,
    /// Their augmented views' boundary activations, `views` rows per photo.
    #[serde(with = "f32_bytes::option", default)]
    pub augmented: Option<Vec<f32>>,
    pub views: usize,
    /// Validation photos across every worker; this one scores its share after each epoch.
    pub val_photos: usize,
    /// The labels of the validation photos it holds.
    pub val_labels: Vec<usize>,
    /// Their boundary activations, one row per photo.
    #[serde(with = "f32_bytes")]
    pub val_boundary: Vec<f32>,
}
