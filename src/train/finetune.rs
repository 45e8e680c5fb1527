//! The optional second stage: unfreeze the top of the backbone (the last K blocks and the last
//! 1×1 conv) and train it together with the head at a low learning rate.
//!
//! The frozen part is run once per photo and its output, the activations at the freeze
//! boundary, is cached; an epoch then only runs the unfrozen part.

use burn::prelude::*;

use super::evaluate::{Evaluation, evaluate_with};
use super::fit::{EpochReport, Schedule, fit};
use super::labelled::{LabelledFeatures, TrainError};
use crate::architecture::{FEATURE_DIM, boundary_shape};
use crate::head::model::Head;
use crate::model::BackboneTop;
use crate::recipe::{FineTuneConfig, Recipe};

/// The trained parts after fine-tuning: the backbone's top and the head.
#[derive(Module, Debug)]
pub struct FineTuned {
    pub top: BackboneTop,
    pub head: Head,
}

impl FineTuned {
    /// Logits from boundary activations. `[N, C, H, W]` → `[N, classes]`.
    pub fn forward(&self, boundary: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.top.forward(boundary))
    }

    /// Logits from flattened boundary activations. `[N, C·H·W]` → `[N, classes]`.
    pub fn forward_rows(&self, rows: Tensor<2>) -> Tensor<2> {
        self.head.forward(self.top.forward_rows(rows))
    }
}

/// Pooled features (`[N, 1280]` row-major) of boundary activations through a frozen `top`: the
/// head's input when the boundary is what was cached.
pub async fn pooled_features(
    top: &BackboneTop,
    boundary: &[f32],
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let width: usize = boundary_shape(top.unfrozen()).iter().product();
    let mut pooled = Vec::with_capacity(boundary.len() / width.max(1) * FEATURE_DIM);
    for chunk in boundary.chunks(width * 32) {
        let n = chunk.len() / width;
        let x = Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [n, width]), device);
        let data = top
            .forward_rows(x)
            .into_data_async()
            .await
            .map_err(|e| TrainError::Device(e.to_string()))?;
        pooled.extend(
            data.convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| TrainError::Device(format!("{e:?}")))?,
        );
    }
    Ok(pooled)
}

/// Trains `top` (from the base model) and `head` (trained on the frozen features) together on
/// cached boundary activations, with the recipe's `stage` settings. Reports continue the epoch
/// count after the recipe's head epochs; `on_epoch` returns `false` to cancel.
#[allow(clippy::too_many_arguments)]
pub async fn fine_tune(
    recipe: &Recipe,
    stage: &FineTuneConfig,
    top: BackboneTop,
    head: Head,
    train: LabelledFeatures<'_>,
    val: Option<LabelledFeatures<'_>>,
    device: &Device,
    on_epoch: impl FnMut(&EpochReport) -> bool,
) -> Result<(FineTuned, Vec<EpochReport>), TrainError> {
    let autodiff = device.clone().autodiff();
    let model = FineTuned { top, head }.fork(&autodiff).train();
    let schedule = Schedule {
        epochs: stage.epochs,
        learning_rate: stage.learning_rate,
        first_epoch: recipe.epochs + 1,
    };
    fit(
        model,
        FineTuned::forward_rows,
        recipe,
        &schedule,
        train,
        val,
        device,
        on_epoch,
    )
    .await
}

/// Loss, accuracy, per-class accuracy and confusion matrix of a fine-tuned model on boundary
/// activations.
pub async fn evaluate(
    model: &FineTuned,
    data: LabelledFeatures<'_>,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    evaluate_with(model, FineTuned::forward_rows, data, device).await
}
