//! The optional second stage: unfreeze the top of the backbone (the last K blocks and the last
//! 1×1 conv) and train it together with the head at a low learning rate.
//!
//! The frozen part is run once per photo and its output, the activations at the freeze
//! boundary, is cached; an epoch then only runs the unfrozen part.

use burn::optim::GradientsParams;
use burn::prelude::*;

use super::evaluate::{Evaluation, evaluate_with};
use super::fit::{EpochReport, Held, Kept, Schedule, Stage, fit, follow};
use super::flat::{take_gradients, with_weights};
use super::labelled::{LabelledFeatures, TrainError};
use super::peers::{Alone, Peers, StageShare};
use crate::architecture::{FEATURE_DIM, boundary_shape};
use crate::head::model::{Head, HeadConfig};
use crate::model::BackboneTop;
use crate::recipe::{FineTuneConfig, Recipe};
use crate::train::dataset::{MAX_CLASSES, MIN_CLASSES};

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
    let model = FineTuned { top, head };
    let (train, val) = (Held::whole(train), val.map(Held::whole));
    fine_tune_led(recipe, stage, model, train, val, device, &Alone, on_epoch).await
}

/// [`fine_tune`] of `model`, leading `peers`: `train` and `val` hold this worker's share of the
/// training and validation photos, and the others [`follow_fine_tune`].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fine_tune_led<P: Peers>(
    recipe: &Recipe,
    stage: &FineTuneConfig,
    model: FineTuned,
    train: Held<'_>,
    val: Option<Held<'_>>,
    device: &Device,
    peers: &P,
    on_epoch: impl FnMut(&EpochReport) -> bool,
) -> Result<(FineTuned, Vec<EpochReport>, Kept), TrainError> {
    let autodiff = device.clone().autodiff();
    let schedule = schedule(recipe, stage);
    let stage = prepared(stage, model, &autodiff);
    fit(
        stage, recipe, &schedule, train, val, device, peers, on_epoch,
    )
    .await
}

/// A follower's part of a fine-tuning stage that the first worker runs with [`fine_tune`]:
/// the share it was handed, on `top` and a head of the recipe's shape (their weights come with
/// the share). Ends when the stage does, or when the first worker stops.
pub async fn follow_fine_tune<P: Peers>(
    recipe: &Recipe,
    top: BackboneTop,
    share: &StageShare,
    device: &Device,
    peers: &P,
) -> Result<(), TrainError> {
    let Some(stage) = recipe.finetune.as_ref() else {
        return Err(TrainError::BadShare);
    };
    if !(MIN_CLASSES..=MAX_CLASSES).contains(&share.classes) {
        return Err(TrainError::BadShare);
    }
    let head = HeadConfig::new(share.classes)
        .with_hidden(recipe.hidden)
        .init(device);
    let model =
        with_weights(FineTuned { top, head }, &share.weights).ok_or(TrainError::BadShare)?;
    let width: usize = boundary_shape(stage.unfreeze).iter().product();
    let views = share.augmented.as_ref().map_or(0, |_| share.views);
    let fits = share.boundary.len() == share.labels.len() * width
        && share
            .augmented
            .as_ref()
            .is_none_or(|a| a.len() == share.labels.len() * views * width)
        && share.val_boundary.len() == share.val_labels.len() * width
        && share.val_labels.len() == share.val_share().held()
        && (share.labels.iter().chain(&share.val_labels)).all(|&l| l < share.classes);
    if !fits {
        return Err(TrainError::BadShare);
    }
    let rows = LabelledFeatures::new(&share.boundary, &share.labels);
    let rows = match &share.augmented {
        Some(augmented) => rows.with_augmented(augmented, share.views),
        None => rows,
    };
    let held = Held {
        rows,
        share: share.share(),
    };
    if held.share.rank >= held.share.ranks || held.rows.len() != held.share.held() {
        return Err(TrainError::BadShare);
    }
    let val = Held {
        rows: LabelledFeatures::new(&share.val_boundary, &share.val_labels),
        share: share.val_share(),
    };
    let autodiff = device.clone().autodiff();
    let schedule = schedule(recipe, stage);
    let stage = prepared(stage, model, &autodiff);
    follow(stage, recipe, &schedule, held, Some(val), device, peers)
        .await
        .map(|_| ())
}

type RateGroups = Box<dyn Fn(&FineTuned, GradientsParams) -> Vec<(f64, GradientsParams)>>;

/// The stage's model on the autodiff device, its forward and its rate groups.
fn prepared(
    stage: &FineTuneConfig,
    model: FineTuned,
    autodiff: &Device,
) -> Stage<FineTuned, fn(&FineTuned, Tensor<2>) -> Tensor<2>, RateGroups> {
    let decay = stage.layer_decay;
    Stage {
        model: model.fork(autodiff).train(),
        forward: FineTuned::forward_rows,
        rate_groups: Box::new(move |model: &FineTuned, grads| rate_groups(model, grads, decay)),
    }
}

fn schedule(recipe: &Recipe, stage: &FineTuneConfig) -> Schedule {
    Schedule {
        epochs: stage.epochs,
        learning_rate: stage.learning_rate,
        first_epoch: recipe.epochs + 1,
    }
}

/// The gradients of the head and the last 1×1 conv at the full rate, and of each block at
/// `decay` times the rate of the block above it.
fn rate_groups(
    model: &FineTuned,
    mut grads: GradientsParams,
    decay: f64,
) -> Vec<(f64, GradientsParams)> {
    if decay == 1.0 {
        return vec![(1.0, grads)];
    }
    let mut groups = vec![
        (1.0, take_gradients(&mut grads, &model.head)),
        (1.0, take_gradients(&mut grads, &model.top.last)),
    ];
    let blocks = model.top.blocks.len();
    for (i, block) in model.top.blocks.iter().enumerate() {
        let depth = (blocks - i) as i32;
        groups.push((decay.powi(depth), take_gradients(&mut grads, block)));
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
