//! The training recipe's defaults, written once: the ladder's *quick* recipe (the Keras
//! transfer-learning recipe), then what *better* and *best* change. Read by the library's
//! recipe `Config`, [`crate::TrainSettings::named`], the CLI's flags and the page's *Recipe*
//! controls.

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
/// Adam's epsilon, as Keras's: Burn's default (1e-5) damps the first steps of a fresh head.
pub const ADAM_EPSILON: f64 = 1e-7;
/// AdamW's decoupled weight decay: none, plain Adam as the Keras recipe.
pub const WEIGHT_DECAY: f64 = 0.0;
/// Epochs over which each stage's learning rate ramps up: none.
pub const WARMUP_EPOCHS: usize = 0;
/// Lower each stage's learning rate along a half cosine: no, a constant rate.
pub const COSINE_DECAY: bool = false;
/// Share of each target's probability spread over the other classes: none.
pub const LABEL_SMOOTHING: f64 = 0.0;
/// Blocks unfrozen when fine-tuning is switched on.
pub const UNFREEZE: usize = 2;
/// Epochs of the fine-tuning stage, after the head's.
pub const FINETUNE_EPOCHS: usize = 5;
/// Learning rate of the fine-tuning stage, low so the pretrained weights move only a little.
pub const FINETUNE_LEARNING_RATE: f64 = 1e-4;
/// Each unfrozen block's rate as a share of the one above it: the same rate for all.
pub const LAYER_DECAY: f64 = 1.0;

// The *better* and *best* recipes (chosen by measurement, `bench/results.md`).
/// Epochs of the head on augmented views.
pub const BETTER_EPOCHS: usize = 20;
pub const BETTER_WEIGHT_DECAY: f64 = 1e-2;
pub const BETTER_LABEL_SMOOTHING: f64 = 0.1;
pub const BETTER_WARMUP_EPOCHS: usize = 1;
pub const BETTER_COSINE_DECAY: bool = true;
/// Augmented views per training photo, beside the plain one.
pub const AUGMENTED_VIEWS: usize = 4;
/// Blocks the *best* recipe unfreezes.
pub const BEST_UNFREEZE: usize = 2;
pub const BEST_FINETUNE_EPOCHS: usize = 8;
/// With the warm-up, the cosine and the layer decay, a rate ten times the plain recipe's.
pub const BEST_FINETUNE_LEARNING_RATE: f64 = 1e-3;
pub const BEST_LAYER_DECAY: f64 = 0.7;
