//! The training recipe as a person sets it, and the ladder of named recipes.

use serde::{Deserialize, Serialize};

use crate::defaults;

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
            label_smoothing: defaults::LABEL_SMOOTHING,
            weight_decay: defaults::WEIGHT_DECAY,
            warmup_epochs: defaults::WARMUP_EPOCHS,
            cosine_decay: defaults::COSINE_DECAY,
            patience: None,
            unfreeze: None,
            finetune_epochs: defaults::FINETUNE_EPOCHS,
            finetune_learning_rate: defaults::FINETUNE_LEARNING_RATE,
            layer_decay: defaults::LAYER_DECAY,
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
            label_smoothing: defaults::BETTER_LABEL_SMOOTHING,
            weight_decay: defaults::BETTER_WEIGHT_DECAY,
            warmup_epochs: defaults::BETTER_WARMUP_EPOCHS,
            cosine_decay: defaults::BETTER_COSINE_DECAY,
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
                layer_decay: defaults::BEST_LAYER_DECAY,
                ..better
            },
        }
    }

    /// Epochs of the whole run: the head's, then the fine-tuning stage's when it is on.
    pub fn total_epochs(&self) -> usize {
        total_epochs(self.epochs, self.unfreeze.map(|_| self.finetune_epochs))
    }
}

/// Epochs of a run: `head` epochs, then `finetune` epochs when there is a fine-tuning stage.
pub fn total_epochs(head: usize, finetune: Option<usize>) -> usize {
    head + finetune.unwrap_or(0)
}
