//! The training recipe: every setting of a run, as one Burn `Config` that the head file
//! stores as it is, so a trained head says exactly how it was made.
//!
//! Defaults come from [`afinar_protocol::defaults`], which the page's *Recipe* controls read
//! too.

use afinar_protocol::defaults;
use burn::optim::AdamConfig;
use burn::prelude::*;

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
    /// The optimizer of both stages. Keras's epsilon: Burn's default (1e-5) damps the first
    /// steps of a fresh head.
    #[config(default = "AdamConfig::new().with_epsilon(1e-7)")]
    pub optimizer: AdamConfig,
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
}

/// Why a recipe cannot be run. The message is for people.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct RecipeError(pub String);

impl Recipe {
    /// Epochs of the whole run (both stages), as the progress reports count them.
    pub fn total_epochs(&self) -> usize {
        afinar_protocol::total_epochs(self.epochs, self.finetune.as_ref().map(|f| f.epochs))
    }

    /// Blocks the fine-tuning stage unfreezes (0: none).
    pub fn unfrozen_blocks(&self) -> usize {
        self.finetune.as_ref().map_or(0, |f| f.unfreeze)
    }

    /// Refuses settings that cannot train.
    pub fn check(&self) -> Result<(), RecipeError> {
        let bad = |m: String| Err(RecipeError(m));
        let rate_ok = |r: f64| r > 0.0 && r.is_finite();
        if self.epochs == 0 || self.batch_size == 0 || self.hidden == 0 {
            return bad("epochs, batch size and hidden width must be at least 1".into());
        }
        if !rate_ok(self.learning_rate) {
            return bad("the learning rate must be a positive number".into());
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad("the validation share must be at least 0 and below 1".into());
        }
        if let Some(f) = &self.finetune {
            let most = crate::architecture::MAX_UNFROZEN_BLOCKS;
            if !(1..=most).contains(&f.unfreeze) {
                return bad(format!("unfreeze between 1 and {most} blocks"));
            }
            if f.epochs == 0 || !rate_ok(f.learning_rate) {
                return bad(
                    "the fine-tuning stage needs at least 1 epoch and a positive learning rate"
                        .into(),
                );
            }
        }
        Ok(())
    }
}
