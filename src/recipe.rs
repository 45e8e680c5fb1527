//! The training recipe: every setting of a run, as one Burn `Config` that the head file
//! stores as it is, so a trained head says exactly how it was made.
//!
//! Defaults come from [`afinar_vocabulary::defaults`], which the page's *Recipe* controls and
//! [`TrainSettings`] read too: each is written once.

use afinar_vocabulary::limits::{MAX_BATCH_SIZE, MAX_EPOCHS, MAX_HIDDEN};
use afinar_vocabulary::{RecipeName, TrainSettings, defaults};
use burn::optim::AdamWConfig;
use burn::prelude::*;

use crate::augment::{self, AugmentConfig};

/// How to train a head on the frozen backbone, then optionally fine-tune its top.
#[derive(Config, Debug)]
pub struct Recipe {
    /// Passes over the training photos with the backbone frozen.
    #[config(default = "defaults::EPOCHS")]
    pub epochs: usize,
    /// Adam's learning rate for the head.
    #[config(default = "defaults::LEARNING_RATE")]
    pub learning_rate: f64,
    #[config(default = "defaults::BATCH_SIZE")]
    pub batch_size: usize,
    /// Seeds the head's initial weights, the split and the order of the photos.
    #[config(default = "defaults::SEED")]
    pub seed: u64,
    /// Width of the head's hidden ReLU layer.
    #[config(default = "defaults::HIDDEN")]
    pub hidden: usize,
    /// Share of each class held out for validation when no split is given.
    #[config(default = "defaults::VAL_FRACTION")]
    pub val_fraction: f64,
    /// The optimizer of both stages: Adam with decoupled weight decay (none by default: plain
    /// Adam, as the Keras recipe), with Keras's epsilon.
    #[config(default = "adam_w(defaults::WEIGHT_DECAY)")]
    pub optimizer: AdamWConfig,
    /// Epochs over which each stage's learning rate ramps up linearly from near zero.
    #[config(default = "defaults::WARMUP_EPOCHS")]
    pub warmup_epochs: usize,
    /// After the warm-up, lower each stage's learning rate along a half cosine to zero at its
    /// last epoch (else keep it constant).
    #[config(default = "defaults::COSINE_DECAY")]
    pub cosine_decay: bool,
    /// Share of each target's probability spread over the other classes (0: none).
    #[config(default = "defaults::LABEL_SMOOTHING")]
    pub label_smoothing: f64,
    /// Keep the weights of the epoch with the best validation accuracy (the lower validation
    /// loss breaks ties), not those of the last epoch.
    #[config(default = true)]
    pub keep_best: bool,
    /// Stop a stage after this many epochs without a better validation score.
    pub patience: Option<usize>,
    /// Train on augmented views of the photos too (`None`: the plain photos only).
    pub augment: Option<AugmentConfig>,
    /// Then unfreeze the top of the backbone and train it with the head (`None`: the head
    /// alone).
    pub finetune: Option<FineTuneConfig>,
}

/// The fine-tuning stage: the last `unfreeze` blocks and the last 1×1 conv, trained together
/// with the head at a low learning rate.
#[derive(Config, Debug)]
pub struct FineTuneConfig {
    /// Inverted-residual blocks to unfreeze, counted from the top.
    #[config(default = "defaults::UNFREEZE")]
    pub unfreeze: usize,
    /// Passes over the training photos, after the head's own epochs.
    #[config(default = "defaults::FINETUNE_EPOCHS")]
    pub epochs: usize,
    /// Adam's learning rate, low so the pretrained weights move only a little.
    #[config(default = "defaults::FINETUNE_LEARNING_RATE")]
    pub learning_rate: f64,
    /// Each unfrozen block trains at this factor of the rate of the block above it (the head
    /// and the last 1×1 conv at the full rate): lower rates for deeper, more general layers.
    #[config(default = "defaults::LAYER_DECAY")]
    pub layer_decay: f64,
}

/// AdamW with the recipe's epsilon and `weight_decay`.
fn adam_w(weight_decay: f64) -> AdamWConfig {
    AdamWConfig::new()
        .with_epsilon(defaults::ADAM_EPSILON as f32)
        .with_weight_decay(weight_decay as f32)
}

/// Why a recipe cannot be run. The message is for people.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct RecipeError(pub String);

impl Recipe {
    /// One of the ladder's recipes ([`TrainSettings::named`]).
    pub fn named(name: RecipeName) -> Self {
        Self::from_settings(&TrainSettings::named(name))
    }

    /// The recipe of settings as the page and the CLI's flags give them.
    pub fn from_settings(s: &TrainSettings) -> Self {
        Self::new()
            .with_epochs(s.epochs)
            .with_learning_rate(s.learning_rate)
            .with_batch_size(s.batch_size)
            .with_seed(s.seed)
            .with_val_fraction(s.val_fraction)
            .with_optimizer(adam_w(s.weight_decay))
            .with_warmup_epochs(s.warmup_epochs)
            .with_cosine_decay(s.cosine_decay)
            .with_label_smoothing(s.label_smoothing)
            .with_patience(s.patience)
            .with_augment((s.views > 0).then(|| AugmentConfig::new().with_views(s.views)))
            .with_finetune(s.unfreeze.map(|k| {
                FineTuneConfig::new()
                    .with_unfreeze(k)
                    .with_epochs(s.finetune_epochs)
                    .with_learning_rate(s.finetune_learning_rate)
                    .with_layer_decay(s.layer_decay)
            }))
    }

    /// Augmented views per photo the recipe trains on (0: none).
    pub fn augmented_views(&self) -> usize {
        self.augment.as_ref().map_or(0, |a| a.views)
    }

    /// Epochs of the whole run (both stages), as the progress reports count them.
    pub fn total_epochs(&self) -> usize {
        afinar_vocabulary::total_epochs(self.epochs, self.finetune.as_ref().map(|f| f.epochs))
    }

    /// Blocks the fine-tuning stage unfreezes (0: none).
    pub fn unfrozen_blocks(&self) -> usize {
        self.finetune.as_ref().map_or(0, |f| f.unfreeze)
    }

    /// Refuses settings that cannot train.
    pub fn check(&self) -> Result<(), RecipeError> {
        let bad = |m: String| Err(RecipeError(m));
        let rate_ok = |r: f64| r > 0.0 && r.is_finite();
        // (field, value, fewest, most): the ceilings keep a crafted project's recipe from
        // asking for hours of work or gigabytes before anything else is checked.
        let counts = [
            ("epochs", self.epochs, 1, MAX_EPOCHS),
            ("batch size", self.batch_size, 1, MAX_BATCH_SIZE),
            ("hidden width", self.hidden, 1, MAX_HIDDEN),
            ("warm-up epochs", self.warmup_epochs, 0, MAX_EPOCHS),
            ("patience", self.patience.unwrap_or(1), 1, MAX_EPOCHS),
        ];
        for (field, value, fewest, most) in counts {
            if !(fewest..=most).contains(&value) {
                return bad(format!(
                    "the {field} must be between {fewest} and {most} (it is {value})"
                ));
            }
        }
        if !rate_ok(self.learning_rate) {
            return bad("the learning rate must be a positive number".into());
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad("the validation share must be at least 0 and below 1".into());
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return bad("label smoothing must be at least 0 and below 0.5".into());
        }
        if let Some(augment) = &self.augment {
            augment::check(augment).map_err(RecipeError)?;
        }
        if let Some(f) = &self.finetune {
            let most = crate::architecture::MAX_UNFROZEN_BLOCKS;
            if !(1..=most).contains(&f.unfreeze) {
                return bad(format!("unfreeze between 1 and {most} blocks"));
            }
            if !(f.layer_decay > 0.0 && f.layer_decay <= 1.0) {
                return bad("the layer decay must be above 0 and at most 1".into());
            }
            if !(1..=MAX_EPOCHS).contains(&f.epochs) || !rate_ok(f.learning_rate) {
                return bad(format!(
                    "the fine-tuning stage needs between 1 and {MAX_EPOCHS} epochs (it has {}) \
                     and a positive learning rate",
                    f.epochs
                ));
            }
        }
        Ok(())
    }
}
