//! The optional second stage: unfreeze the top of the backbone (the last K blocks and the last
//! 1×1 conv) and train it together with the head at a low learning rate.
//!
//! The frozen part is run once per photo and its output, the activations at the freeze
//! boundary, is cached; an epoch then only runs the unfrozen part.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Gradients;

use super::evaluate::{Evaluation, evaluate_with};
use super::fit::{EpochReport, Kept, Schedule, Stage, fit};
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
) -> Result<(FineTuned, Vec<EpochReport>, Kept), TrainError> {
    let autodiff = device.clone().autodiff();
    let model = FineTuned { top, head }.fork(&autodiff).train();
    let schedule = Schedule {
        epochs: stage.epochs,
        learning_rate: stage.learning_rate,
        first_epoch: recipe.epochs + 1,
    };
    let decay = stage.layer_decay;
    let stage = Stage {
        model,
        forward: FineTuned::forward_rows,
        rate_groups: move |model: &FineTuned, grads: Gradients| rate_groups(model, grads, decay),
    };
    fit(stage, recipe, &schedule, train, val, device, on_epoch).await
}

/// The gradients of the head and the last 1×1 conv at the full rate, and of each block at
/// `decay` times the rate of the block above it.
fn rate_groups(model: &FineTuned, mut grads: Gradients, decay: f64) -> Vec<(f64, GradientsParams)> {
    if decay == 1.0 {
        return vec![(1.0, GradientsParams::from_grads(grads, model))];
    }
    let mut groups = vec![
        (1.0, GradientsParams::from_module(&mut grads, &model.head)),
        (
            1.0,
            GradientsParams::from_module(&mut grads, &model.top.last),
        ),
    ];
    let blocks = model.top.blocks.len();
    for (i, block) in model.top.blocks.iter().enumerate() {
        let depth = (blocks - i) as i32;
        groups.push((
            decay.powi(depth),
            GradientsParams::from_module(&mut grads, block),
        ));
    }
    groups
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
