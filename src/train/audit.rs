//! Photos whose label the model disputes.
//!
//! A model scores the photos it was trained on too kindly: it has learnt their labels, right
//! or wrong. So each photo is scored by a head that never saw it: the photos are dealt into
//! folds (per class, so every fold has each class), a head is trained on all folds but one and
//! scores the one left out (the "out-of-fold" probabilities that confident learning builds
//! on). A photo it gives another class is *disputed*; the most confident disputes come first,
//! and a photo in the wrong class (or one that fits none) tends to lead the list.

use afinar_vocabulary::{RecipeName, defaults};
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::evaluate::evaluate;
use super::fit::train_head_keeping_best;
use super::labelled::{LabelledFeatures, TrainError};
use crate::recipe::Recipe;

/// How the photos are checked: heads of the *quick* recipe on the pooled features.
#[derive(Config, Debug)]
pub struct AuditConfig {
    /// Folds the photos are dealt into; each is scored by a head trained on the others.
    #[config(default = 5)]
    pub folds: usize,
    /// Epochs of each fold's head, at least.
    #[config(default = "defaults::EPOCHS")]
    pub epochs: usize,
    /// Optimizer steps of each fold's head, at least: a few photos get more epochs, so that a
    /// small set's heads learn their classes as well as a large set's.
    #[config(default = 300)]
    pub min_steps: usize,
    /// Seeds the folds and the heads.
    #[config(default = "defaults::SEED")]
    pub seed: u64,
}

/// A photo the model gives another class than its label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Disputed {
    /// The photo: an index into the labels given to [`disputed_labels`].
    pub sample: usize,
    pub label: usize,
    /// The class the model gives it, and that class's probability.
    pub suggested: usize,
    pub confidence: f32,
    /// The probability the model gives its label.
    pub label_probability: f32,
}

/// Which fold each of `samples` goes to: per class, in a seeded random order, dealt round the
/// folds, so that each fold holds about the same share of every class.
fn deal(samples: &[usize], labels: &[usize], folds: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut fold = vec![0; samples.len()];
    let classes = samples.iter().map(|&s| labels[s] + 1).max().unwrap_or(0);
    for class in 0..classes {
        let mut mine: Vec<usize> = (0..samples.len())
            .filter(|&i| labels[samples[i]] == class)
            .collect();
        mine.shuffle(&mut rng);
        for (rank, i) in mine.into_iter().enumerate() {
            fold[i] = rank % folds;
        }
    }
    fold
}

/// The photos at `samples` (indices into `labels`; `pooled` has one row of pooled features per
/// label) that a head trained without them gives another class, the most confident first.
/// Fewer photos than folds: nothing to check, none disputed.
pub async fn disputed_labels(
    config: &AuditConfig,
    pooled: &[f32],
    labels: &[usize],
    samples: &[usize],
    num_classes: usize,
    device: &Device,
) -> Result<Vec<Disputed>, TrainError> {
    let folds = config.folds.max(2);
    if samples.len() < folds {
        return Ok(Vec::new());
    }
    let base = Recipe::named(RecipeName::Quick);
    let steps_per_epoch = (samples.len() * (folds - 1) / folds).div_ceil(base.batch_size.max(1));
    let epochs = config
        .epochs
        .max(config.min_steps.div_ceil(steps_per_epoch.max(1)));
    let recipe = base
        .with_epochs(epochs)
        .with_seed(config.seed)
        .with_keep_best(false);
    let fold_of = deal(samples, labels, folds, config.seed);
    let all = LabelledFeatures::new(pooled, labels);
    let mut disputed = Vec::new();
    for fold in 0..folds {
        let (held_out, rest): (Vec<usize>, Vec<usize>) =
            (0..samples.len()).partition(|&i| fold_of[i] == fold);
        let held_out: Vec<usize> = held_out.into_iter().map(|i| samples[i]).collect();
        let rest: Vec<usize> = rest.into_iter().map(|i| samples[i]).collect();
        let (head, _, _) = train_head_keeping_best(
            &recipe,
            num_classes,
            all.subset(&rest),
            None,
            device,
            |_| true,
        )
        .await?;
        let scores = evaluate(&head, all.subset(&held_out), device).await?;
        disputed.extend(
            scores
                .predictions
                .iter()
                .zip(&held_out)
                .filter(|(p, _)| p.class != p.truth)
                .map(|(p, &sample)| Disputed {
                    sample,
                    label: p.truth,
                    suggested: p.class,
                    confidence: p.confidence,
                    label_probability: p.truth_probability,
                }),
        );
    }
    disputed.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    Ok(disputed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_hold_every_class_in_equal_shares() {
        // Class 0: 10 photos, class 1: 5, interleaved.
        let labels: Vec<usize> = (0..15).map(|i| usize::from(i % 3 == 2)).collect();
        let samples: Vec<usize> = (0..15).collect();
        let fold = deal(&samples, &labels, 5, 1);
        for f in 0..5 {
            let of = |c| (0..15).filter(|&i| fold[i] == f && labels[i] == c).count();
            assert_eq!((of(0), of(1)), (2, 1), "fold {f}: {fold:?}");
        }
        assert_eq!(fold, deal(&samples, &labels, 5, 1), "seeded");
    }
}
