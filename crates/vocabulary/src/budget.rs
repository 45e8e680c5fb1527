//! Per-photo costs of the page's CPU path (one thread, `bench/results.md`) behind
//! [`TrainSettings::estimated_seconds`], and the time the page's own pick must fit in.

use crate::limits::MIN_PHOTOS_TO_SHARE_TRAINING;
use crate::settings::{RecipeName, TrainSettings};

/// Preparing a photo (decode, crop, backbone), on one worker.
pub const PREPARE_MS: f64 = 25.0;
/// Preparing one augmented view of a training photo (the view drawn from the decoded photo,
/// backbone, boundary activations), on one worker: *best* in the page on the flowers' 3,470
/// photos (`bench/browser-recipe.mjs`).
pub const VIEW_MS: f64 = 25.0;
/// One epoch of the head, per photo.
pub const HEAD_EPOCH_MS: f64 = 0.05;
/// One epoch of the fine-tuning stage (training photos forward and back, validation
/// photos forward), per photo and unfrozen block, on one worker: the same run.
pub const FINETUNE_EPOCH_MS_PER_BLOCK: f64 = 8.5;
/// The share of a fine-tuning epoch that workers sharing the stage split between them; the
/// rest (each step's optimizer update and fixed costs, validation) every worker pays whole.
pub const TUNING_SHARED_FRACTION: f64 = 0.55;
/// The page picks the best recipe that prepares and trains in about this long.
pub const PAGE_SECONDS: f64 = 600.0;

impl TrainSettings {
    /// A rough time for preparing and training `photos` photos with these settings in the
    /// page on the CPU, from per-photo costs measured there (`bench/results.md`): photos are
    /// prepared on `workers` workers at once, the head trained on one, and the fine-tuning
    /// stage shared by the `workers` where there are enough training photos.
    pub fn estimated_seconds(&self, photos: usize, workers: usize) -> f64 {
        let training = (1.0 - self.val_fraction).clamp(0.0, 1.0);
        // Only the training share of the photos gets views.
        let views = self.views as f64 * training;
        let workers = workers.max(1) as f64;
        let tuning_workers = if photos as f64 * training >= MIN_PHOTOS_TO_SHARE_TRAINING as f64 {
            workers
        } else {
            1.0
        };
        let tuning_share = 1.0 - TUNING_SHARED_FRACTION + TUNING_SHARED_FRACTION / tuning_workers;
        let per_photo_ms = (PREPARE_MS + VIEW_MS * views) / workers
            + HEAD_EPOCH_MS * self.epochs as f64
            + self.unfreeze.map_or(0.0, |k| {
                FINETUNE_EPOCH_MS_PER_BLOCK * k as f64 * self.finetune_epochs as f64
            }) * tuning_share;
        per_photo_ms * photos as f64 / 1000.0
    }

    /// The best recipe of the ladder estimated to prepare (on `workers` workers) and train
    /// `photos` photos within `budget_seconds` (the quick one when none does).
    pub fn fitting(photos: usize, budget_seconds: f64, workers: usize) -> Self {
        [RecipeName::Best, RecipeName::Better]
            .into_iter()
            .map(Self::named)
            .find(|s| s.estimated_seconds(photos, workers) <= budget_seconds)
            .unwrap_or_else(|| Self::named(RecipeName::Quick))
    }

    /// What the page runs for `photos` photos prepared on `workers` workers: these settings,
    /// or the fitting recipe (with the user's validation share and seed) while the page picks.
    pub fn effective(&self, photos: usize, workers: usize) -> Self {
        if !self.auto {
            return self.clone();
        }
        Self {
            auto: true,
            val_fraction: self.val_fraction,
            seed: self.seed,
            ..Self::fitting(photos, PAGE_SECONDS, workers)
        }
    }
}
