//! Messages between Afinar's page and its model worker: plain serializable data, no tensors and
//! no DOM. The page sends [`Request`]s; the worker answers with [`Reply`]s, in order.
//!
//! A crate of its own so the page can speak to the worker without linking the model code.

use serde::{Deserialize, Serialize};

/// `Vec<f32>` as little-endian bytes: one `Uint8Array` in JS instead of an array of numbers,
/// which serde-wasm-bindgen reads back element by element (seconds for a training set).
mod f32_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        serde_bytes::serialize(&bytes, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Ok(from_bytes(&serde_bytes::ByteBuf::deserialize(d)?))
    }

    fn from_bytes(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// The same for `Option<Vec<f32>>`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            values: &Option<Vec<f32>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match values {
                Some(values) => super::serialize(values, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
            let bytes = Option::<serde_bytes::ByteBuf>::deserialize(d)?;
            Ok(bytes.map(|bytes| super::from_bytes(&bytes)))
        }
    }
}

/// File name of the recommended model, as the setup script puts it in place.
pub const DEFAULT_MODEL_FILE: &str = "mobilenet_v2_1.0_224_quant.tflite";

/// One labelled output of the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Output index (0 = background for the ImageNet files).
    pub index: usize,
    pub label: String,
    pub prob: f32,
}

/// Which Burn device runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// Burn's wgpu backend over the browser's WebGPU.
    WebGpu,
    /// Burn's ndarray backend on the CPU (wasm SIMD), the fallback.
    Cpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::WebGpu => "WebGPU",
            Backend::Cpu => "CPU",
        }
    }
}

/// Limits on what a head can be trained on, shared by the page, the worker and the CLI.
pub mod project;

pub mod limits {
    /// Fewest classes a head can be trained on.
    pub const MIN_CLASSES: usize = 2;
    /// Most classes a head can be trained on.
    pub const MAX_CLASSES: usize = 20;
    /// Fewest photos a class needs (one to learn from, one to check against).
    pub const MIN_PHOTOS_PER_CLASS: usize = 2;
    /// Most blocks the fine-tuning stage can unfreeze: all 17 of MobileNetV2's.
    pub const MAX_UNFROZEN_BLOCKS: usize = 17;

    // Ceilings on the counts a recipe, a project or a head file can ask for: far above any real
    // run, low enough that nothing a file asks for can exhaust memory or hold the page for
    // hours before the first check.
    /// Most epochs of either training stage.
    pub const MAX_EPOCHS: usize = 1000;
    /// Largest batch.
    pub const MAX_BATCH_SIZE: usize = 4096;
    /// Most augmented views per photo: each one is a forward pass and a cached row.
    pub const MAX_VIEWS: usize = 16;
    /// Widest hidden layer a head can have.
    pub const MAX_HIDDEN: usize = 4096;
    /// Extensions (lower case, no dot) of the photo formats Afinar decodes.
    pub const PHOTO_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];

    /// Whether a file name ends in one of [`PHOTO_EXTENSIONS`] (any case).
    pub fn is_photo_name(name: &str) -> bool {
        name.rsplit_once('.').is_some_and(|(_, ext)| {
            PHOTO_EXTENSIONS
                .iter()
                .any(|known| ext.eq_ignore_ascii_case(known))
        })
    }
}

/// The training recipe's defaults (the Keras transfer-learning recipe), read by the library's
/// recipe `Config`, the CLI's flags and the page's *Recipe* controls.
pub mod defaults {
    /// Epochs of the head on the frozen backbone.
    pub const EPOCHS: usize = 10;
    /// Adam's learning rate for the head.
    pub const LEARNING_RATE: f64 = 1e-3;
    pub const BATCH_SIZE: usize = 32;
    /// Seeds the head's initial weights, the split and the order of the photos.
    pub const SEED: u64 = 42;
    /// Width of the head's hidden ReLU layer (the Keras recipe's Dense(128)).
    pub const HIDDEN: usize = 128;
    /// Share of each class held out for validation.
    pub const VAL_FRACTION: f64 = 0.2;
    /// Blocks unfrozen when fine-tuning is switched on.
    pub const UNFREEZE: usize = 2;
    /// Epochs of the fine-tuning stage, after the head's.
    pub const FINETUNE_EPOCHS: usize = 5;
    /// Learning rate of the fine-tuning stage, low so the pretrained weights move only a little.
    pub const FINETUNE_LEARNING_RATE: f64 = 1e-4;

    // The *better* and *best* recipes (chosen by measurement, `bench/results.md`).
    /// Epochs of the head on augmented views.
    pub const BETTER_EPOCHS: usize = 20;
    /// AdamW's weight decay.
    pub const WEIGHT_DECAY: f64 = 1e-2;
    pub const LABEL_SMOOTHING: f64 = 0.1;
    /// Augmented views per training photo, beside the plain one.
    pub const AUGMENTED_VIEWS: usize = 4;
    /// Blocks the *best* recipe unfreezes.
    pub const BEST_UNFREEZE: usize = 2;
    pub const BEST_FINETUNE_EPOCHS: usize = 8;
    /// With the warm-up, the cosine and the layer decay, a rate ten times the plain recipe's.
    pub const BEST_FINETUNE_LEARNING_RATE: f64 = 1e-3;
    /// Each unfrozen block's rate as a share of the one above it.
    pub const LAYER_DECAY: f64 = 0.7;
}

/// The recipe ladder: the user picks one and may change single settings after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipeName {
    /// The head on the frozen backbone, as the Keras transfer-learning tutorial.
    #[default]
    Quick,
    /// The head on augmented views of the photos, with a schedule and regularization.
    Better,
    /// *Better*, then the top of the backbone fine-tuned too.
    Best,
}

impl RecipeName {
    pub const ALL: [RecipeName; 3] = [RecipeName::Quick, RecipeName::Better, RecipeName::Best];

    pub fn name(self) -> &'static str {
        match self {
            RecipeName::Quick => "quick",
            RecipeName::Better => "better",
            RecipeName::Best => "best",
        }
    }
}

/// The training recipe as the user sets it (defaults: [`defaults`], the ladder:
/// [`TrainSettings::named`]). The library turns it into its recipe `Config`; the page edits it
/// and keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    /// The ladder's recipe these settings started from.
    pub recipe: RecipeName,
    /// Let the page pick the recipe for the number of photos ([`TrainSettings::fitting`])
    /// instead of these settings, until the user picks or changes one.
    pub auto: bool,
    pub epochs: usize,
    pub learning_rate: f64,
    pub batch_size: usize,
    pub seed: u64,
    /// Share of each class held out for validation.
    pub val_fraction: f64,
    /// Augmented views of each training photo, beside the plain one (0: none).
    pub views: usize,
    /// Share of each target's probability spread over the other classes.
    pub label_smoothing: f64,
    /// AdamW's decoupled weight decay (0: plain Adam).
    pub weight_decay: f64,
    /// Epochs of each stage over which the learning rate ramps up.
    pub warmup_epochs: usize,
    /// Lower each stage's learning rate along a half cosine after the warm-up.
    pub cosine_decay: bool,
    /// Stop a stage after this many epochs without a better validation score.
    pub patience: Option<usize>,
    /// Fine-tune the last K blocks after the head (`None`: the head alone).
    pub unfreeze: Option<usize>,
    pub finetune_epochs: usize,
    pub finetune_learning_rate: f64,
    /// Each unfrozen block's learning rate as a share of the block above it's.
    pub layer_decay: f64,
}

impl Default for TrainSettings {
    /// The *quick* recipe.
    fn default() -> Self {
        Self {
            recipe: RecipeName::Quick,
            auto: false,
            epochs: defaults::EPOCHS,
            learning_rate: defaults::LEARNING_RATE,
            batch_size: defaults::BATCH_SIZE,
            seed: defaults::SEED,
            val_fraction: defaults::VAL_FRACTION,
            views: 0,
            label_smoothing: 0.0,
            weight_decay: 0.0,
            warmup_epochs: 0,
            cosine_decay: false,
            patience: None,
            unfreeze: None,
            finetune_epochs: defaults::FINETUNE_EPOCHS,
            finetune_learning_rate: defaults::FINETUNE_LEARNING_RATE,
            layer_decay: 1.0,
        }
    }
}

impl TrainSettings {
    /// One of the ladder's recipes, as measured in `bench/results.md`: *quick* is the Keras
    /// transfer-learning recipe (the head on the frozen backbone), *better* adds augmented views,
    /// a schedule and regularization, *best* then fine-tunes the top of the backbone.
    pub fn named(name: RecipeName) -> Self {
        let quick = Self::default();
        let better = Self {
            recipe: RecipeName::Better,
            epochs: defaults::BETTER_EPOCHS,
            views: defaults::AUGMENTED_VIEWS,
            label_smoothing: defaults::LABEL_SMOOTHING,
            weight_decay: defaults::WEIGHT_DECAY,
            warmup_epochs: 1,
            cosine_decay: true,
            ..quick.clone()
        };
        match name {
            RecipeName::Quick => quick,
            RecipeName::Better => better,
            RecipeName::Best => Self {
                recipe: RecipeName::Best,
                unfreeze: Some(defaults::BEST_UNFREEZE),
                finetune_epochs: defaults::BEST_FINETUNE_EPOCHS,
                finetune_learning_rate: defaults::BEST_FINETUNE_LEARNING_RATE,
                layer_decay: defaults::LAYER_DECAY,
                ..better
            },
        }
    }

    /// Epochs of the whole run: the head's, then the fine-tuning stage's when it is on.
    pub fn total_epochs(&self) -> usize {
        total_epochs(self.epochs, self.unfreeze.map(|_| self.finetune_epochs))
    }

    /// A rough time for preparing and training `photos` photos with these settings in the
    /// page's worker on the CPU, from per-photo costs measured there (`bench/results.md`).
    pub fn estimated_seconds(&self, photos: usize) -> f64 {
        // Only the training share of the photos gets views.
        let views = self.views as f64 * (1.0 - self.val_fraction).clamp(0.0, 1.0);
        let per_photo_ms = budget::PREPARE_MS
            + budget::VIEW_MS * views
            + budget::HEAD_EPOCH_MS * self.epochs as f64
            + self.unfreeze.map_or(0.0, |k| {
                budget::FINETUNE_EPOCH_MS_PER_BLOCK * k as f64 * self.finetune_epochs as f64
            });
        per_photo_ms * photos as f64 / 1000.0
    }

    /// The best recipe of the ladder estimated to prepare and train `photos` photos within
    /// `budget_seconds` (the quick one when none does).
    pub fn fitting(photos: usize, budget_seconds: f64) -> Self {
        [RecipeName::Best, RecipeName::Better]
            .into_iter()
            .map(Self::named)
            .find(|s| s.estimated_seconds(photos) <= budget_seconds)
            .unwrap_or_else(|| Self::named(RecipeName::Quick))
    }

    /// What the page runs for `photos` photos: these settings, or the fitting recipe (with the
    /// user's validation share and seed) while the page picks.
    pub fn effective(&self, photos: usize) -> Self {
        if !self.auto {
            return self.clone();
        }
        Self {
            auto: true,
            val_fraction: self.val_fraction,
            seed: self.seed,
            ..Self::fitting(photos, budget::PAGE_SECONDS)
        }
    }
}

/// Per-photo costs of the page's CPU path (one thread, `bench/results.md`) behind
/// [`TrainSettings::estimated_seconds`], and the time the page's own pick must fit in.
pub mod budget {
    /// Preparing a photo (decode, crop, backbone).
    pub const PREPARE_MS: f64 = 25.0;
    /// Preparing one augmented view of a training photo (the view drawn from the decoded photo,
    /// backbone, boundary activations): *best* in the page on the flowers' 3,470 photos
    /// (`bench/browser-recipe.mjs`).
    pub const VIEW_MS: f64 = 55.0;
    /// One epoch of the head, per photo.
    pub const HEAD_EPOCH_MS: f64 = 0.5;
    /// One epoch of the fine-tuning stage (training photos forward and back, validation
    /// photos forward), per photo and unfrozen block: the same run.
    pub const FINETUNE_EPOCH_MS_PER_BLOCK: f64 = 12.0;
    /// The page picks the best recipe that prepares and trains in about this long.
    pub const PAGE_SECONDS: f64 = 600.0;
}

/// What a training photo's [`Embedding`] must hold for a recipe: the boundary activations
/// below its unfrozen blocks, and its augmented views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RowsNeeded {
    /// Boundary activations below the last K blocks (`None`: pooled features only).
    pub unfreeze: Option<usize>,
    /// Augmented views, beside the plain photo.
    pub views: usize,
    /// Seeds the views.
    pub seed: u64,
}

impl RowsNeeded {
    /// Whether an embedding prepared for `self` has every row `needed` asks for.
    pub fn serves(&self, needed: &RowsNeeded) -> bool {
        let boundary = needed.unfreeze.is_none() || self.unfreeze == needed.unfreeze;
        let views = needed.views == 0 || (self.views == needed.views && self.seed == needed.seed);
        boundary && views
    }

    /// Refuses a request for more rows than any recipe trains on (the message names the
    /// field): each view is a forward pass and a kept row.
    pub fn check(&self) -> Result<(), String> {
        use limits::{MAX_UNFROZEN_BLOCKS, MAX_VIEWS};
        if self.views > MAX_VIEWS {
            return Err(format!(
                "{} augmented views were asked for; at most {MAX_VIEWS}",
                self.views
            ));
        }
        match self.unfreeze {
            Some(k) if !(1..=MAX_UNFROZEN_BLOCKS).contains(&k) => Err(format!(
                "boundary activations below {k} unfrozen blocks were asked for; between 1 \
                 and {MAX_UNFROZEN_BLOCKS}"
            )),
            _ => Ok(()),
        }
    }
}

impl TrainSettings {
    /// What every training photo must have been prepared with for these settings.
    pub fn rows_needed(&self) -> RowsNeeded {
        RowsNeeded {
            unfreeze: self.unfreeze,
            views: self.views,
            seed: if self.views > 0 { self.seed } else { 0 },
        }
    }
}

/// Epochs of a run: `head` epochs, then `finetune` epochs when there is a fine-tuning stage.
pub fn total_epochs(head: usize, finetune: Option<usize>) -> usize {
    head + finetune.unwrap_or(0)
}

/// A training photo as the model sees it, computed once and kept by the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
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

impl Embedding {
    /// Augmented views it holds.
    pub fn views(&self) -> usize {
        self.augmented.len() / self.features.len().max(1)
    }
}

/// The photos to train on: one row per photo, in the same order everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSet {
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
    pub settings: TrainSettings,
}

/// Loss and accuracy after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    pub epoch: usize,
    pub total_epochs: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Since training started.
    pub elapsed_ms: f64,
}

/// What a finished training run gives the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingOutcome {
    pub classes: Vec<String>,
    /// The trained parts as a `.safetensors` file (head, and the fine-tuned blocks).
    #[serde(with = "serde_bytes")]
    pub head_file: Vec<u8>,
    /// Rows of the training set held out for validation.
    pub val_rows: Vec<usize>,
    /// Rows left out of training, each with the reason (a photo that is also in another
    /// class stays only in the class it was added to first).
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
    pub val_accuracy: Option<f64>,
    /// Validation accuracy of the head alone, before fine-tuning (when there was fine-tuning).
    pub frozen_val_accuracy: Option<f64>,
    /// Recall per class on the validation photos.
    pub per_class: Vec<f64>,
    /// Precision per class on the validation photos.
    #[serde(default)]
    pub precision: Vec<f64>,
    #[serde(default)]
    pub f1: Vec<f64>,
    /// `confusion[true][predicted]` on the validation photos.
    pub confusion: Vec<Vec<usize>>,
    /// Validation photos the model gets wrong, the most confident first.
    #[serde(default)]
    pub mistakes: Vec<Mistake>,
    /// What the model says about every validation photo, in `val_rows` order: the photos
    /// behind each cell of `confusion`.
    #[serde(default)]
    pub val_predictions: Vec<RowPrediction>,
    pub epochs: Vec<EpochSummary>,
    /// The epoch whose weights were kept (the best on validation).
    #[serde(default)]
    pub kept_epoch: usize,
    /// Fine-tuned backbone blocks in the kept weights (0: the head alone was kept).
    #[serde(default)]
    pub unfrozen_blocks: usize,
    pub backend: Backend,
    pub train_ms: f64,
    /// The worker's wasm memory after training (it only grows: the peak so far).
    #[serde(default)]
    pub wasm_memory_bytes: u64,
}

/// What the trained model says about one photo of the training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowPrediction {
    /// Its row in the training set.
    pub row: usize,
    /// The class it was labelled with in that run.
    #[serde(default)]
    pub label: usize,
    /// The class the model gives it, and how sure it is.
    pub predicted: usize,
    pub confidence: f32,
}

/// A validation photo the trained model gets wrong.
pub type Mistake = RowPrediction;

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

/// A photo a training run did not use, and why (a message for people that names the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftOut {
    pub row: usize,
    pub reason: String,
}

/// A trained head the worker now uses next to the ImageNet head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadInfo {
    pub classes: Vec<String>,
    /// Fine-tuned backbone blocks it carries (0: the head alone).
    pub unfrozen_blocks: usize,
}

/// Page → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Fetch the app's model from `url` (or take it from Cache Storage) and load it.
    LoadDefaultModel { url: String },
    /// Load a `.tflite` the user picked. On failure the current model stays.
    LoadModelFile {
        name: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Run the model on this backend from now on (the user's choice, kept even where slow).
    UseBackend(Backend),
    /// Run the model on the faster backend here: WebGPU on a hardware adapter; the CPU where
    /// there is no adapter or only a software one (such as SwiftShader), which is slower than
    /// the CPU. `BackendReady::fallback` says why when that is the CPU although WebGPU exists.
    UseBestBackend,
    /// Classify one photo (the file's bytes as read from disk).
    Classify {
        id: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Compute a training photo's [`Embedding`] for recipes needing `rows`.
    Embed {
        id: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        rows: RowsNeeded,
    },
    /// Train a head; the worker answers with [`Reply::Epoch`]s, then [`Reply::Trained`], and
    /// uses the new head from then on.
    Train(Box<TrainingSet>),
    /// Stop the training under way after the current epoch. Handled as soon as it arrives.
    CancelTraining,
    /// Use a head file (exported earlier, or kept by the page); answered with
    /// [`Reply::HeadReady`] or [`Reply::HeadRefused`].
    UseHead {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Classify with the ImageNet head only from now on.
    ForgetHead,
    /// Write the classifier in use (the model with the user's head) as a `.tflite`: the model
    /// file's own layers below the freeze boundary, the trained part in float32; answered with
    /// [`Reply::ModelExported`].
    ExportModel,
    /// Start writing a project file; its photos follow in [`Request::AddProjectPhotos`], then
    /// [`Request::FinishProject`]. Replaces a project being written or read.
    SaveProject(Box<project::ProjectStart>),
    /// Photos for the project being written, answered with [`Reply::ProjectProgress`].
    AddProjectPhotos(Vec<project::ProjectPhoto>),
    /// Close the project being written; answered with [`Reply::ProjectBytes`] parts.
    FinishProject,
    /// The next part of a project file the user opened (in order, from its start).
    OpenProjectPart {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// All parts sent: check the file and answer with [`Reply::ProjectOpened`].
    OpenProject,
    /// Photos `from..from + count` of the opened project (in [`project::Manifest::photos`]
    /// order), answered with [`Reply::ProjectPhotos`].
    ProjectPhotos { from: usize, count: usize },
    /// Forget the project being written or read.
    CloseProject,
    /// Check the labels of the last training run's photos: each is scored by heads trained
    /// without it. Answered with [`Reply::LabelsChecked`]; a separate request so that the
    /// training's own time and replies are the training's alone.
    CheckLabels,
}

/// A classifier written as a `.tflite` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedModel {
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// Where the model's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelSource {
    Network,
    /// The browser's Cache Storage, from an earlier visit.
    Cache,
    /// A file the user picked.
    File(String),
}

/// The model the worker now runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub source: ModelSource,
    pub num_classes: usize,
    pub sha256: String,
    pub size_bytes: u64,
    /// From the start of the request to the model ready on its device (warm-up included).
    pub load_ms: f64,
}

/// What the model says about one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Top-5, most likely first.
    pub top: Vec<Prediction>,
    /// Model time: input tensor to probabilities read back.
    pub model_ms: f64,
    /// Decoding and resizing the photo.
    pub decode_ms: f64,
    /// The 224×224 centre crop the model saw, as a JPEG, for the thumbnail.
    #[serde(with = "serde_bytes")]
    pub thumbnail_jpeg: Vec<u8>,
    pub backend: Backend,
    /// Top predictions in the user's classes, when a trained head is in use.
    pub custom: Option<Vec<Prediction>>,
    /// The worker's wasm memory afterwards (it only grows: the peak so far).
    #[serde(default)]
    pub wasm_memory_bytes: u64,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The worker's wasm is running and will receive messages from now on.
    Started,
    /// The worker's files come from another build than the page's (an update arrived while
    /// the page loaded): its loader says so instead of starting, and the page asks for a reload.
    WrongBuild,
    /// Something is under way that the page should show, e.g. "Starting WebGPU…".
    Status(String),
    /// Model download progress (bytes); `total` is absent when the server does not say.
    Download {
        loaded: u64,
        total: Option<u64>,
    },
    ModelReady(ModelInfo),
    /// The default model could not be loaded; nothing can be classified until one is.
    ModelFailed(String),
    /// A user's model file was refused; the current model (if any) stays.
    ModelRefused {
        name: String,
        message: String,
    },
    /// The backend now in use, with the adapter's name where the browser tells it. `fallback`
    /// says why it is not the one asked for.
    BackendReady {
        backend: Backend,
        adapter: String,
        fallback: Option<String>,
    },
    /// The worker hit a bug and stopped; the page starts a new one.
    Crashed(String),
    /// A message the worker could not read (a page and a worker from different builds); nothing
    /// was done, and no other answer to it will come.
    BadRequest(String),
    /// The answer to [`Request::Classify`]; `Err` holds a message for people.
    Classified {
        id: u32,
        result: Result<Classification, String>,
    },
    /// The answer to [`Request::Embed`].
    Embedded {
        id: u32,
        result: Result<Embedding, String>,
    },
    /// One training epoch finished.
    Epoch(EpochSummary),
    /// Training finished, was cancelled or failed (`Err` holds a message for people).
    Trained(Result<TrainingOutcome, String>),
    HeadReady(HeadInfo),
    HeadRefused(String),
    /// Said by the page's own link, never by a worker: the worker stopped while taking up the
    /// head it was given (after its model had loaded), so the head is not given to the next
    /// worker; the page stops using it, so it cannot stop the next visit too.
    HeadSetAside(String),
    /// The answer to [`Request::ExportModel`]; `Err` holds a message for people.
    ModelExported(Result<ExportedModel, String>),
    /// Photos written to the project so far, or why it cannot be written.
    ProjectProgress(Result<usize, String>),
    /// A part of the finished project file, in order; `last` on its final part. An `Err`
    /// (a message for people) ends it too.
    ProjectBytes(Result<ProjectPart, String>),
    /// The answer to [`Request::OpenProject`]: the checked project, or why it was refused.
    ProjectOpened(Result<Box<project::OpenedProject>, String>),
    /// The answer to [`Request::ProjectPhotos`].
    ProjectPhotos(Result<Vec<project::ProjectPhoto>, String>),
    /// The answer to [`Request::CheckLabels`]: the photos whose label is disputed, the most
    /// confident first, or why there are none to show (a message for people).
    LabelsChecked(Result<Vec<DisputedLabel>, String>),
}

/// A part of a project file on its way to the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectPart {
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    pub last: bool,
}
