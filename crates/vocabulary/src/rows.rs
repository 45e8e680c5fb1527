//! What a training photo must be prepared with for a recipe.

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_UNFROZEN_BLOCKS, MAX_VIEWS};
use crate::settings::TrainSettings;

/// What a prepared training photo must hold for a recipe: the boundary activations below its
/// unfrozen blocks, and its augmented views.
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
    /// Whether a photo prepared for `self` has every row `needed` asks for.
    pub fn serves(&self, needed: &RowsNeeded) -> bool {
        let boundary = needed.unfreeze.is_none() || self.unfreeze == needed.unfreeze;
        let views = needed.views == 0 || (self.views == needed.views && self.seed == needed.seed);
        boundary && views
    }

    /// Refuses a request for more rows than any recipe trains on (the message names the
    /// field): each view is a forward pass and a kept row.
    pub fn check(&self) -> Result<(), String> {
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
