//! A training photo's rows: what one pass over it and its augmented views gives the trainer.

use afinar_vocabulary::Prediction;

use crate::architecture::FEATURE_DIM;

/// What a training photo needs, computed in one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Pooled features (1280 values).
    pub pooled: Vec<f32>,
    /// Activations below the last K blocks, when asked for.
    pub boundary: Option<Vec<f32>>,
    /// Pooled features of the photo's augmented views, one row per view.
    pub augmented: Vec<f32>,
    /// The views' activations below the last K blocks, when asked for.
    pub augmented_boundary: Option<Vec<f32>>,
    /// What the ImageNet classifier alone says: its top predictions.
    pub imagenet: Vec<Prediction>,
}

impl Embedding {
    /// Splits a pass over the photo and its views (the photo's rows first): `pooled` holds
    /// [`FEATURE_DIM`] values per input, `boundary` (when asked for) `width` values per input.
    pub fn from_rows(
        mut pooled: Vec<f32>,
        boundary: Option<(Vec<f32>, usize)>,
        imagenet: Vec<Prediction>,
    ) -> Self {
        let augmented = pooled.split_off(FEATURE_DIM.min(pooled.len()));
        let (boundary, augmented_boundary) = match boundary {
            Some((mut rows, width)) => {
                let views = rows.split_off(width.min(rows.len()));
                (Some(rows), Some(views))
            }
            None => (None, None),
        };
        Self {
            pooled,
            boundary,
            augmented,
            augmented_boundary,
            imagenet,
        }
    }
}
