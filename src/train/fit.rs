//! The training loop: Adam on cross-entropy over rows of cached backbone outputs, one report
//! per epoch. The head's stage and the fine-tuning stage both run it.
//!
//! Every read from the device is asynchronous, so the same code runs natively (block on it)
//! and in a browser worker on WebGPU.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::evaluate::loss_and_hits;
use super::flat::{flat_gradients, gradients_from_flat};
use super::labelled::{LabelledFeatures, TrainError, read_f64};
use super::peers::{Alone, Peers, Share};
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
        rate_groups: |_: &Head, grads| vec![(1.0, grads)],
    };
    let (train, val) = (Held::whole(train), val.map(Held::whole));
    fit(
        stage, recipe, &schedule, train, val, device, &Alone, on_epoch,
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

/// The training rows a worker holds, and which of the stage's photos they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held<'a> {
    /// One row (with its views) per photo held, in order.
    pub rows: LabelledFeatures<'a>,
    pub share: Share,
}

impl<'a> Held<'a> {
    /// Every photo, on one worker.
    pub fn whole(rows: LabelledFeatures<'a>) -> Self {
        Self {
            rows,
            share: Share::whole(rows.len()),
        }
    }
}

/// Trains every trainable parameter of the stage's model (already on the autodiff device) with
/// the recipe's optimizer, schedule and loss, reporting each epoch. Each epoch draws one view of
/// every training photo. Returns the weights of the best epoch on validation when the recipe
/// keeps the best (else the last), and stops early after the recipe's patience.
///
/// With `peers`, this worker leads: it holds `train`'s share of the training photos and `val`'s
/// of the validation photos, the others hold theirs and [`follow`] its steps.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fit<M, F, G, P>(
    stage: Stage<M, F, G>,
    recipe: &Recipe,
    schedule: &Schedule,
    train: Held<'_>,
    val: Option<Held<'_>>,
    device: &Device,
    peers: &P,
    mut on_epoch: impl FnMut(&EpochReport) -> bool,
) -> Result<(M, Vec<EpochReport>, Kept), TrainError>
where
    M: Module,
    F: Fn(&M, Tensor<2>) -> Tensor<2>,
    G: Fn(&M, GradientsParams) -> Vec<(f64, GradientsParams)>,
    P: Peers,
{
    if train.share.photos == 0 {
        return Err(TrainError::NoTrainingData);
    }
    let val = val.filter(|v| v.share.photos > 0);
    let mut model = stage.model;
    let mut stepper = Stepper::new(recipe, schedule, train, device, peers);
    let mut reports = Vec::with_capacity(schedule.epochs);
    let mut best: Option<(M, Kept)> = None;
    for (index, epoch) in (schedule.first_epoch..schedule.first_epoch + schedule.epochs).enumerate()
    {
        let (trained, tally) = stepper
            .epoch(model, &stage.forward, &stage.rate_groups, index)
            .await?;
        model = trained;
        let photos = train.share.photos as f64;
        let train_loss = tally.loss / photos;
        if !train_loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                value: train_loss,
            });
        }
        let train_accuracy = tally.correct / photos;
        let scores = match val {
            Some(val) => Some(validate(&model.valid(), &stage.forward, val, device, peers).await?),
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

/// A follower's side of [`fit`]: the same steps on the photos this worker holds, and its part
/// of each epoch's validation, until the stage's last epoch or until the first worker stops
/// (then [`TrainError::PeerLost`]).
pub(crate) async fn follow<M, F, G, P>(
    stage: Stage<M, F, G>,
    recipe: &Recipe,
    schedule: &Schedule,
    train: Held<'_>,
    val: Option<Held<'_>>,
    device: &Device,
    peers: &P,
) -> Result<M, TrainError>
where
    M: Module,
    F: Fn(&M, Tensor<2>) -> Tensor<2>,
    G: Fn(&M, GradientsParams) -> Vec<(f64, GradientsParams)>,
    P: Peers,
{
    let mut model = stage.model;
    let mut stepper = Stepper::new(recipe, schedule, train, device, peers);
    for index in 0..schedule.epochs {
        model = stepper
            .epoch(model, &stage.forward, &stage.rate_groups, index)
            .await?
            .0;
        if let Some(val) = val.filter(|v| v.share.photos > 0) {
            validate(&model.valid(), &stage.forward, val, device, peers).await?;
        }
    }
    Ok(model)
}

/// Accuracy and mean loss on every worker's validation photos, from the rows this one holds.
async fn validate<M, F, P>(
    model: &M,
    forward: &F,
    val: Held<'_>,
    device: &Device,
    peers: &P,
) -> Result<(f64, f64), TrainError>
where
    F: Fn(&M, Tensor<2>) -> Tensor<2>,
    P: Peers,
{
    let (mut loss, mut hits) = if val.rows.is_empty() {
        (0.0, 0.0)
    } else {
        loss_and_hits(model, forward, val.rows, device).await?
    };
    if val.share.ranks > 1 {
        let all = peers.sum(vec![loss as f32, hits as f32]).await?;
        (loss, hits) = (all[0] as f64, all[1] as f64);
    }
    let photos = val.share.photos as f64;
    Ok((hits / photos, loss / photos))
}

/// Loss (summed over rows) and correct rows of an epoch.
#[derive(Debug, Clone, Copy)]
struct Tally {
    loss: f64,
    correct: f64,
}

/// The steps every worker of a stage takes alike: the same order and views each epoch (drawn
/// from the recipe's seed), the same rate at each step, the same optimizer.
struct Stepper<'a, P> {
    recipe: &'a Recipe,
    schedule: &'a Schedule,
    train: Held<'a>,
    device: &'a Device,
    autodiff: Device,
    peers: &'a P,
    optimizer: ModuleOptimizer,
    loss_fn: CrossEntropyLoss,
    rng: rand::rngs::StdRng,
    order: Vec<usize>,
}

impl<'a, P: Peers> Stepper<'a, P> {
    fn new(
        recipe: &'a Recipe,
        schedule: &'a Schedule,
        train: Held<'a>,
        device: &'a Device,
        peers: &'a P,
    ) -> Self {
        let autodiff = device.clone().autodiff();
        let smoothing = (recipe.label_smoothing > 0.0).then_some(recipe.label_smoothing as f32);
        Stepper {
            recipe,
            schedule,
            train,
            device,
            loss_fn: CrossEntropyLossConfig::new()
                .with_smoothing(smoothing)
                .init(&autodiff),
            autodiff,
            peers,
            optimizer: recipe.optimizer.init(),
            rng: rand::rngs::StdRng::seed_from_u64(recipe.seed ^ schedule.first_epoch as u64),
            order: (0..train.share.photos).collect(),
        }
    }

    /// One pass over the photos: the model after it, and the tally of every worker's rows.
    async fn epoch<M, F, G>(
        &mut self,
        mut model: M,
        forward: &F,
        rate_groups: &G,
        index: usize,
    ) -> Result<(M, Tally), TrainError>
    where
        M: Module,
        F: Fn(&M, Tensor<2>) -> Tensor<2>,
        G: Fn(&M, GradientsParams) -> Vec<(f64, GradientsParams)>,
    {
        let views = self.train.rows.views();
        self.order.shuffle(&mut self.rng);
        let picks: Vec<(usize, usize)> = self
            .order
            .iter()
            .map(|&i| (i, self.rng.random_range(0..views)))
            .collect();
        let batch = self.recipe.batch_size.max(1);
        let steps_per_epoch = picks.len().div_ceil(batch) as f64;
        // Sums stay on the device and are read once per epoch.
        let mut loss_sum = Tensor::<1>::zeros([1], self.device);
        let mut correct = Tensor::<1, Int>::zeros([1], self.device);
        for (step, rows) in picks.chunks(batch).enumerate() {
            if step % YIELD_EVERY_STEPS == YIELD_EVERY_STEPS - 1 {
                crate::host::let_host_run().await;
            }
            let rate = self
                .schedule
                .rate_at(self.recipe, index as f64 + step as f64 / steps_per_epoch);
            let share = self.train.share;
            let held: Vec<(usize, usize)> = rows
                .iter()
                .filter(|&&(i, _)| share.holds(i))
                .map(|&(i, view)| (share.row(i), view))
                .collect();
            let mut grads = None;
            if !held.is_empty() {
                let (x, y) = self.train.rows.view_tensors(&held, &self.autodiff);
                let logits = forward(&model, x);
                let mut loss = self.loss_fn.forward(logits.clone(), y.clone());
                let hits = logits
                    .inner()
                    .argmax(1)
                    .reshape([held.len()])
                    .equal(y.inner());
                correct = correct + hits.int().sum();
                loss_sum = loss_sum + loss.clone().inner().mul_scalar(held.len() as f32);
                if share.ranks > 1 {
                    // This worker's part of the batch's mean.
                    loss = loss.mul_scalar(held.len() as f32 / rows.len() as f32);
                }
                grads = Some(GradientsParams::from_grads(loss.backward(), &model));
            }
            let grads = match grads {
                Some(grads) if share.ranks == 1 => grads,
                grads => {
                    let mine = flat_gradients(&model, grads.as_ref(), self.device).await?;
                    let all = self.peers.sum(mine).await?;
                    gradients_from_flat(&model, &all, self.device)
                }
            };
            for (part, grads) in rate_groups(&model, grads) {
                model = self.optimizer.step(rate * part, model, grads);
            }
        }
        let mut tally = vec![
            read_f64(loss_sum).await? as f32,
            read_f64(correct.float()).await? as f32,
        ];
        if self.train.share.ranks > 1 {
            tally = self.peers.sum(tally).await?;
        }
        Ok((
            model,
            Tally {
                loss: tally[0] as f64,
                correct: tally[1] as f64,
            },
        ))
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
