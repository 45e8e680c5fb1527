//! The training loop: Adam on cross-entropy over rows of cached backbone outputs, one report
//! per epoch. The head's stage and the fine-tuning stage both run it.
//!
//! Every read from the device is asynchronous, so the same code runs natively (block on it)
//! and in a browser worker on WebGPU.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Gradients;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
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
    let (head, reports, _) =
        train_head_keeping_best(recipe, num_classes, train, val, device, on_epoch).await?;
    Ok((head, reports))
}

/// [`train_head`], also saying which epoch's weights it kept.
pub(crate) async fn train_head_keeping_best(
    recipe: &Recipe,
    num_classes: usize,
    train: LabelledFeatures<'_>,
    val: Option<LabelledFeatures<'_>>,
    device: &Device,
    on_epoch: impl FnMut(&EpochReport) -> bool,
) -> Result<(Head, Vec<EpochReport>, Kept), TrainError> {
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
    let stage = Stage {
        model: head,
        forward: Head::forward,
        rate_groups: |head: &Head, grads| vec![(1.0, GradientsParams::from_grads(grads, head))],
    };
    fit(stage, recipe, &schedule, train, val, device, on_epoch).await
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

impl Schedule {
    /// The learning rate at `progress` epochs into the stage (fractional: updated every step):
    /// the recipe's linear warm-up, then constant or a half cosine down to zero.
    pub fn rate_at(&self, recipe: &Recipe, progress: f64) -> f64 {
        let warmup = recipe.warmup_epochs.min(self.epochs.saturating_sub(1)) as f64;
        if progress < warmup {
            return self.learning_rate * (progress + 1e-3) / warmup;
        }
        if !recipe.cosine_decay {
            return self.learning_rate;
        }
        let span = (self.epochs as f64 - warmup).max(1.0);
        let t = ((progress - warmup) / span).clamp(0.0, 1.0);
        self.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// A model to train, how it maps rows to logits, and how its gradients split into groups that
/// train at different shares of the learning rate (one group at 1.0 for most models).
pub(crate) struct Stage<M, F, G> {
    pub model: M,
    pub forward: F,
    pub rate_groups: G,
}

/// Which epoch's weights a stage returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kept {
    pub epoch: usize,
    /// Its validation accuracy and loss (none without validation photos).
    pub val: Option<(f64, f64)>,
}

impl Kept {
    /// Whether `other` scores better: higher accuracy, or as high with a lower loss.
    pub fn is_beaten_by(&self, other: &Kept) -> bool {
        match (self.val, other.val) {
            (Some((acc, loss)), Some((other_acc, other_loss))) => {
                other_acc > acc || (other_acc == acc && other_loss < loss)
            }
            _ => false,
        }
    }
}

/// Trains every trainable parameter of the stage's model (already on the autodiff device) with
/// the recipe's optimizer, schedule and loss, reporting each epoch. Each epoch draws one view of
/// every training photo. Returns the weights of the best epoch on validation when the recipe
/// keeps the best (else the last), and stops early after the recipe's patience.
pub(crate) async fn fit<M, F, G>(
    stage: Stage<M, F, G>,
    recipe: &Recipe,
    schedule: &Schedule,
    train: LabelledFeatures<'_>,
    val: Option<LabelledFeatures<'_>>,
    device: &Device,
    mut on_epoch: impl FnMut(&EpochReport) -> bool,
) -> Result<(M, Vec<EpochReport>, Kept), TrainError>
where
    M: Module,
    F: Fn(&M, Tensor<2>) -> Tensor<2>,
    G: Fn(&M, Gradients) -> Vec<(f64, GradientsParams)>,
{
    if train.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let Stage {
        mut model,
        forward,
        rate_groups,
    } = stage;
    let val = val.filter(|v| !v.is_empty());
    let autodiff = device.clone().autodiff();
    let mut optimizer = recipe.optimizer.init();
    let smoothing = (recipe.label_smoothing > 0.0).then_some(recipe.label_smoothing as f32);
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing(smoothing)
        .init(&autodiff);
    let mut rng = rand::rngs::StdRng::seed_from_u64(recipe.seed ^ schedule.first_epoch as u64);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let views = train.views();
    let batch = recipe.batch_size.max(1);
    let steps_per_epoch = train.len().div_ceil(batch) as f64;
    let mut reports = Vec::with_capacity(schedule.epochs);
    let mut best: Option<(M, Kept)> = None;
    for (index, epoch) in (schedule.first_epoch..schedule.first_epoch + schedule.epochs).enumerate()
    {
        order.shuffle(&mut rng);
        let picks: Vec<(usize, usize)> = order
            .iter()
            .map(|&i| (i, rng.random_range(0..views)))
            .collect();
        // Sums stay on the device and are read once per epoch.
        let mut loss_sum = Tensor::<1>::zeros([1], device);
        let mut correct = Tensor::<1, Int>::zeros([1], device);
        for (step, rows) in picks.chunks(batch).enumerate() {
            if step % YIELD_EVERY_STEPS == YIELD_EVERY_STEPS - 1 {
                crate::host::let_host_run().await;
            }
            let rate = schedule.rate_at(recipe, index as f64 + step as f64 / steps_per_epoch);
            let (x, y) = train.view_tensors(rows, &autodiff);
            let logits = forward(&model, x);
            let loss = loss_fn.forward(logits.clone(), y.clone());
            let hits = logits
                .inner()
                .argmax(1)
                .reshape([rows.len()])
                .equal(y.inner());
            correct = correct + hits.int().sum();
            loss_sum = loss_sum + loss.clone().inner().mul_scalar(rows.len() as f32);
            for (share, grads) in rate_groups(&model, loss.backward()) {
                model = optimizer.step(rate * share, model, grads);
            }
        }
        let train_loss = read_f64(loss_sum).await? / train.len() as f64;
        if !train_loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                value: train_loss,
            });
        }
        let train_accuracy = read_f64(correct.float()).await? / train.len() as f64;
        let scores = match val {
            Some(val) => {
                let e = evaluate_with(&model.valid(), &forward, val, device).await?;
                Some((e.accuracy, e.loss))
            }
            None => None,
        };
        let report = EpochReport {
            epoch,
            train_loss,
            train_accuracy,
            val_loss: scores.map(|s| s.1),
            val_accuracy: scores.map(|s| s.0),
        };
        let this = Kept { epoch, val: scores };
        // Without validation photos there is nothing to choose by: the last epoch is kept.
        let improved = best
            .as_ref()
            .is_none_or(|(_, kept)| kept.is_beaten_by(&this));
        if improved || !recipe.keep_best || this.val.is_none() {
            best = Some((model.valid(), this));
        }
        // The browser worker hears "cancel" only between tasks.
        crate::host::let_host_run().await;
        let go_on = on_epoch(&report);
        reports.push(report);
        if !go_on {
            return Err(TrainError::Cancelled);
        }
        let since_best = best.as_ref().map_or(0, |(_, kept)| epoch - kept.epoch);
        if recipe.patience.is_some_and(|p| since_best >= p) {
            break;
        }
    }
    match best {
        Some((model, kept)) => Ok((model, reports, kept)),
        None => Err(TrainError::NoTrainingData),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_warms_up_then_follows_a_half_cosine_to_zero() {
        let schedule = Schedule {
            epochs: 10,
            learning_rate: 1.0,
            first_epoch: 1,
        };
        let constant = Recipe::new();
        assert_eq!(schedule.rate_at(&constant, 0.0), 1.0);
        assert_eq!(schedule.rate_at(&constant, 9.9), 1.0);

        let recipe = Recipe::new().with_warmup_epochs(2).with_cosine_decay(true);
        let rate = |p| schedule.rate_at(&recipe, p);
        assert!(rate(0.0) < 0.01, "starts near zero");
        assert!(
            (rate(1.0) - 0.5).abs() < 0.01,
            "halfway up after one of two epochs"
        );
        assert!(
            (rate(2.0) - 1.0).abs() < 1e-9,
            "the full rate after the warm-up"
        );
        assert!((rate(6.0) - 0.5).abs() < 1e-9, "half after half the cosine");
        assert!(rate(9.99) < 1e-3, "near zero at the end");
        let rates: Vec<f64> = (20..100).map(|p| rate(p as f64 / 10.0)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]), "only goes down");
    }
}
