//! The training loop: Adam on cross-entropy over rows of cached backbone outputs, one report
//! per epoch. The head's stage and the fine-tuning stage both run it.
//!
//! Every read from the device is asynchronous, so the same code runs natively (block on it)
//! and in a browser worker on WebGPU.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::evaluate::evaluate_with;
use super::labelled::{LabelledFeatures, TrainError, read_f64};
use crate::head::model::{Head, HeadConfig};
use crate::recipe::Recipe;

/// Loss and accuracy of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
}

/// Trains a new head with the recipe's first stage. `on_epoch` sees each epoch's report and
/// returns `false` to cancel.
pub async fn train_head(
    recipe: &Recipe,
    num_classes: usize,
    train: LabelledFeatures<'_>,
    val: Option<LabelledFeatures<'_>>,
    device: &Device,
    on_epoch: impl FnMut(&EpochReport) -> bool,
) -> Result<(Head, Vec<EpochReport>), TrainError> {
    if train.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let autodiff = device.clone().autodiff();
    let head = HeadConfig::new(num_classes)
        .with_hidden(recipe.hidden)
        .with_seed(recipe.seed)
        .init(&autodiff);
    let schedule = Schedule {
        epochs: recipe.epochs,
        learning_rate: recipe.learning_rate,
        first_epoch: 1,
    };
    fit(
        head,
        Head::forward,
        recipe,
        &schedule,
        train,
        val,
        device,
        on_epoch,
    )
    .await
}

/// Optimizer steps between two chances for the host (the browser worker's event loop) to run.
const YIELD_EVERY_STEPS: usize = 8;

/// What differs between the stages [`fit`] runs; the rest comes from the recipe.
pub(crate) struct Schedule {
    pub epochs: usize,
    pub learning_rate: f64,
    /// Number of the first epoch in the reports (stages continue the count).
    pub first_epoch: usize,
}

/// Trains every trainable parameter of `model` (already on the autodiff device) with the
/// recipe's optimizer on cross-entropy, reporting each epoch; `forward` maps a batch of rows to
/// logits.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fit<M: Module>(
    mut model: M,
    forward: impl Fn(&M, Tensor<2>) -> Tensor<2>,
    recipe: &Recipe,
    schedule: &Schedule,
    train: LabelledFeatures<'_>,
    val: Option<LabelledFeatures<'_>>,
    device: &Device,
    mut on_epoch: impl FnMut(&EpochReport) -> bool,
) -> Result<(M, Vec<EpochReport>), TrainError> {
    if train.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let autodiff = device.clone().autodiff();
    let mut optimizer = recipe.optimizer.init();
    let loss_fn = CrossEntropyLossConfig::new().init(&autodiff);
    let mut rng = rand::rngs::StdRng::seed_from_u64(recipe.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut reports = Vec::with_capacity(schedule.epochs);
    for epoch in schedule.first_epoch..schedule.first_epoch + schedule.epochs {
        order.shuffle(&mut rng);
        // Sums stay on the device and are read once per epoch.
        let mut loss_sum = Tensor::<1>::zeros([1], device);
        let mut correct = Tensor::<1, Int>::zeros([1], device);
        for (step, rows) in order.chunks(recipe.batch_size.max(1)).enumerate() {
            if step % YIELD_EVERY_STEPS == YIELD_EVERY_STEPS - 1 {
                crate::host::let_host_run().await;
            }
            let (x, y) = train.tensors(rows, &autodiff);
            let logits = forward(&model, x);
            let loss = loss_fn.forward(logits.clone(), y.clone());
            let hits = logits
                .inner()
                .argmax(1)
                .reshape([rows.len()])
                .equal(y.inner());
            correct = correct + hits.int().sum();
            loss_sum = loss_sum + loss.clone().inner().mul_scalar(rows.len() as f32);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(schedule.learning_rate, model, grads);
        }
        let train_loss = read_f64(loss_sum).await? / train.len() as f64;
        if !train_loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                value: train_loss,
            });
        }
        let train_accuracy = read_f64(correct.float()).await? / train.len() as f64;
        let (val_loss, val_accuracy) = match val {
            Some(val) if !val.is_empty() => {
                let e = evaluate_with(&model.valid(), &forward, val, device).await?;
                (Some(e.loss), Some(e.accuracy))
            }
            _ => (None, None),
        };
        let report = EpochReport {
            epoch,
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
        };
        // The browser worker hears "cancel" only between tasks.
        crate::host::let_host_run().await;
        let go_on = on_epoch(&report);
        reports.push(report);
        if !go_on {
            return Err(TrainError::Cancelled);
        }
    }
    Ok((model.valid(), reports))
}
