//! One training run, written once for the CLI and the browser worker: check the photos, leave
//! out a photo that is also in another class, split, train the head, optionally fine-tune the
//! top of the backbone, score the result and pack it as a head file. The photos whose label
//! the model disputes are a step of their own ([`super::audit`]), after the run.
//!
//! Plain data in ([`TrainingSet`]), plain data out ([`TrainingRun`]); the callers only fetch
//! features (from their cache or the page's) and show progress.

use std::collections::HashSet;

use afinar_vocabulary::{TrainingRecord, utc_date};
use burn::prelude::*;

use super::dataset::{Dataset, DatasetError, LeftOut, Part};
use super::evaluate::{Evaluation, evaluate};
use super::finetune::{self, FineTuned, pooled_features};
use super::fit::{EpochReport, Held, train_head_keeping_best};
use super::flat::flat_weights;
use super::labelled::{LabelledFeatures, TrainError, samples_in};
use super::peers::{Alone, Peers, Share, ShareRows, StageShare};
use crate::architecture::{FEATURE_DIM, boundary_shape};
use crate::head::file::{HeadMetadata, save};
use crate::head::model::TrainedParts;
use crate::model::MobileNetV2;
use crate::preprocess::InputScaling;
use crate::recipe::{Recipe, RecipeError};

/// The base model a run trains on top of.
#[derive(Debug, Clone, Copy)]
pub struct BaseModel<'a> {
    pub network: &'a MobileNetV2,
    /// sha256 of its `.tflite` file: a head is only used on the model it was trained on.
    pub sha256: &'a str,
    /// How photos became its inputs, recorded in the head file.
    pub input_scaling: InputScaling,
}

/// How the photos are split into training and validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Split {
    /// Per class, the recipe's validation share, drawn with the recipe's seed.
    Stratified,
    /// One part per photo (for example from a split file), and a name for it.
    Fixed { parts: Vec<Part>, name: String },
}

/// The photos of a run and what the frozen backbone computed for each: one row per sample,
/// in the dataset's order.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    pub dataset: Dataset,
    /// sha256 of each photo's bytes, to find the same photo in two classes.
    pub hashes: Vec<String>,
    /// Pooled features, `FEATURE_DIM` per photo. Without them, they are computed from
    /// `boundary` through the (frozen) top of the base model.
    pub pooled: Option<Vec<f32>>,
    /// Activations below the recipe's unfrozen blocks: needed when the recipe fine-tunes.
    pub boundary: Option<Vec<f32>>,
    /// The recipe's augmented views of every photo (`views` rows per photo, photo after photo):
    /// pooled features, or boundary activations (from which the pooled ones are computed).
    /// Without them, training sees the plain photos only.
    pub augmented: Option<AugmentedRows>,
    pub split: Split,
}

/// Rows of the augmented views of every photo of a [`TrainingSet`].
#[derive(Debug, Clone)]
pub struct AugmentedRows {
    pub views: usize,
    /// Pooled features, `views × FEATURE_DIM` per photo.
    pub pooled: Option<Vec<f32>>,
    /// Boundary activations below the recipe's unfrozen blocks, `views` rows per photo.
    pub boundary: Option<Vec<f32>>,
}

/// What a run produces.
#[derive(Debug)]
pub struct TrainingRun {
    pub parts: TrainedParts,
    pub metadata: HeadMetadata,
    /// `parts` and `metadata` as a head file (`.safetensors`).
    pub head_file: Vec<u8>,
    /// Every epoch of both stages.
    pub epochs: Vec<EpochReport>,
    /// The epoch whose weights are in `parts` (the best on validation when the recipe keeps
    /// the best).
    pub kept_epoch: usize,
    /// Validation scores of the trained parts (none without validation photos).
    pub scores: Option<Evaluation>,
    /// Validation scores of the head alone, before the fine-tuning stage (when there was one).
    pub head_alone_scores: Option<Evaluation>,
    /// Indices of the samples held out for validation.
    pub val_samples: Vec<usize>,
    /// Photos the run did not use, and why.
    pub left_out: Vec<LeftOut>,
    /// The photos it did use (training and validation), in order: what
    /// [`super::audit::disputed_labels`] checks.
    pub used_samples: Vec<usize>,
    /// The pooled features it computed from the boundary activations, when the set had none:
    /// for the steps after the run that read them (the label check), so they are not
    /// computed twice.
    pub computed_pooled: Option<Vec<f32>>,
}

/// Why a run did not produce a head. The messages are for people.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Dataset(#[from] DatasetError),
    #[error("{0}")]
    Recipe(#[from] RecipeError),
    #[error("{0}")]
    Train(#[from] TrainError),
    #[error("the trained head could not be saved: {0}")]
    Save(String),
}

impl RunError {
    /// The compute device failed (as opposed to bad input): worth retrying on another device.
    pub fn is_device_failure(&self) -> bool {
        matches!(self, RunError::Train(TrainError::Device(_)))
    }

    /// A worker training with this one stopped: worth a retry without it.
    pub fn is_peer_lost(&self) -> bool {
        matches!(self, RunError::Train(TrainError::PeerLost))
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, RunError::Train(TrainError::Cancelled))
    }
}

/// The boundary rows of every photo of a run, to hand out in shares.
struct Rows<'a> {
    boundary: &'a [f32],
    augmented: Option<&'a [f32]>,
    views: usize,
    labels: &'a [usize],
    classes: usize,
}

/// Training photos whose rows are handed out to a follower in one piece.
const PHOTOS_PER_PIECE: usize = 128;

impl Rows<'_> {
    /// Hands the worker of `share` (of the training photos `samples.0`) what it needs to
    /// follow the stage from `weights`, validation (of `samples.1`) included; its training rows
    /// go in pieces, each copied only as it goes.
    fn hand_out<P: Peers>(
        &self,
        peers: &P,
        share: Share,
        samples: &(Vec<usize>, Vec<usize>),
        weights: Vec<f32>,
    ) {
        let held = share.pick(&samples.0);
        let val_share = Share {
            photos: samples.1.len(),
            ..share
        };
        let val_held = val_share.pick(&samples.1);
        let handed = StageShare {
            share_rank: share.rank,
            ranks: share.ranks,
            photos: share.photos,
            classes: self.classes,
            weights,
            labels: held.iter().map(|&s| self.labels[s]).collect(),
            boundary: Vec::new(),
            augmented: None,
            views: self.views,
            val_photos: val_share.photos,
            val_labels: val_held.iter().map(|&s| self.labels[s]).collect(),
            val_boundary: self.rows_of(self.boundary, 1, &val_held),
        };
        let mut pieces = held
            .chunks(PHOTOS_PER_PIECE)
            .enumerate()
            .map(|(k, photos)| ShareRows {
                first: k * PHOTOS_PER_PIECE,
                count: photos.len(),
                boundary: self.rows_of(self.boundary, 1, photos),
                augmented: self.augmented.map(|a| self.rows_of(a, self.views, photos)),
            });
        peers.hand_out(handed, &mut pieces);
    }

    /// The `per` rows of each of the photos `samples` in `all`, in a vector sized once.
    fn rows_of(&self, all: &[f32], per: usize, samples: &[usize]) -> Vec<f32> {
        let width = self.boundary.len() / self.labels.len().max(1);
        let mut rows = Vec::with_capacity(samples.len() * per * width);
        for &s in samples {
            rows.extend_from_slice(&all[s * per * width..(s + 1) * per * width]);
        }
        rows
    }
}

/// Rows of one stage (plain and augmented), as the run's training and validation photos.
fn split_rows<'a>(
    plain: &'a [f32],
    augmented: Option<&'a [f32]>,
    views: usize,
    labels: &'a [usize],
    samples: &'a (Vec<usize>, Vec<usize>),
) -> (LabelledFeatures<'a>, Option<LabelledFeatures<'a>>) {
    let all = LabelledFeatures::new(plain, labels);
    let mut train = all.subset(&samples.0);
    if let Some(augmented) = augmented {
        train = train.with_augmented(augmented, views);
    }
    let val = Some(all.subset(&samples.1)).filter(|v| !v.is_empty());
    (train, val)
}

fn check_shapes(set: &TrainingSet, recipe: &Recipe) -> Result<(), RecipeError> {
    let n = set.dataset.samples.len();
    let bad = |m: &str| Err(RecipeError(m.into()));
    if set.hashes.len() != n {
        return bad("the photos' fingerprints do not match the photos");
    }
    if let Some(pooled) = &set.pooled
        && pooled.len() != n * FEATURE_DIM
    {
        return bad("the photos' features do not match their labels");
    }
    if let Split::Fixed { parts, .. } = &set.split
        && parts.len() != n
    {
        return bad("the split does not list every photo");
    }
    let boundary_rows = |k: usize| n * boundary_shape(k).iter().product::<usize>();
    if let Some(a) = &set.augmented {
        if a.pooled
            .as_ref()
            .is_some_and(|p| p.len() != a.views * n * FEATURE_DIM)
        {
            return bad("the augmented views' features do not match the photos");
        }
        let unfrozen = recipe.unfrozen_blocks();
        if a.boundary
            .as_ref()
            .is_some_and(|b| unfrozen == 0 || b.len() != a.views * boundary_rows(unfrozen))
        {
            return bad("the augmented views' activations do not match the photos");
        }
    }
    match (&recipe.finetune, &set.boundary, &set.pooled) {
        (Some(f), boundary, _)
            if boundary.as_ref().map(Vec::len) != Some(boundary_rows(f.unfreeze)) =>
        {
            bad("the photos' activations for fine-tuning are missing")
        }
        (None, _, None) => bad("the photos' features are missing"),
        _ => Ok(()),
    }
}

/// Trains on `set` with `recipe` above `base` on `device`. `on_epoch` sees every epoch (head,
/// then fine-tuning) and returns `false` to cancel.
pub async fn run(
    set: &TrainingSet,
    recipe: &Recipe,
    base: BaseModel<'_>,
    device: &Device,
    on_epoch: impl FnMut(&EpochReport) -> bool,
) -> Result<TrainingRun, RunError> {
    run_with(set, recipe, base, device, &Alone, on_epoch).await
}

/// [`run`], leading `peers` through the fine-tuning stage: each of them is handed its share of
/// the training photos ([`Peers::hand_out`]) and follows this worker's steps.
pub async fn run_with<P: Peers>(
    set: &TrainingSet,
    recipe: &Recipe,
    base: BaseModel<'_>,
    device: &Device,
    peers: &P,
    mut on_epoch: impl FnMut(&EpochReport) -> bool,
) -> Result<TrainingRun, RunError> {
    recipe.check()?;
    set.dataset.check()?;
    check_shapes(set, recipe)?;
    let left_out = set.dataset.cross_class_duplicates(&set.hashes);
    let dropped: HashSet<usize> = left_out.iter().map(|l| l.row).collect();
    let kept = set.dataset.without(&dropped);
    kept.check()?;
    let (kept_parts, split_name) = match &set.split {
        Split::Stratified => (
            kept.stratified_split(recipe.val_fraction, recipe.seed),
            format!("stratified {}", recipe.val_fraction),
        ),
        Split::Fixed { parts, name } => {
            let parts = (0..parts.len())
                .filter(|i| !dropped.contains(i))
                .map(|i| parts[i])
                .collect();
            (parts, name.clone())
        }
    };
    // Parts of every sample, the left-out ones marked, so rows are picked from the callers'
    // arrays without copying them whole.
    let mut kept_parts = kept_parts.into_iter();
    let parts: Vec<Part> = (0..set.dataset.samples.len())
        .map(|i| {
            if dropped.contains(&i) {
                Part::LeftOut
            } else {
                kept_parts.next().unwrap_or(Part::LeftOut)
            }
        })
        .collect();
    let labels: Vec<usize> = set.dataset.samples.iter().map(|s| s.class).collect();
    let classes = set.dataset.classes.len();

    let samples = (
        samples_in(&parts, Part::Train),
        samples_in(&parts, Part::Val),
    );
    let mut computed = None;
    let computed_augmented;
    let frozen_top = recipe
        .finetune
        .as_ref()
        .map(|stage| base.network.top(stage.unfreeze));
    let pooled = match (&set.pooled, &frozen_top, &set.boundary) {
        (Some(pooled), _, _) => pooled,
        (None, Some(top), Some(boundary)) => {
            &*computed.insert(pooled_features(top, boundary, device).await?)
        }
        _ => return Err(RecipeError("the photos' features are missing".into()).into()),
    };
    let augmented = set.augmented.as_ref().filter(|a| a.views > 0);
    let views = augmented.map_or(0, |a| a.views);
    let augmented_pooled = match (augmented, &frozen_top) {
        (
            Some(AugmentedRows {
                pooled: Some(p), ..
            }),
            _,
        ) => Some(p.as_slice()),
        (
            Some(AugmentedRows {
                boundary: Some(b), ..
            }),
            Some(top),
        ) => {
            computed_augmented = pooled_features(top, b, device).await?;
            Some(computed_augmented.as_slice())
        }
        _ => None,
    };
    let (train, val) = split_rows(pooled, augmented_pooled, views, &labels, &samples);
    let (head, mut epochs, head_kept) =
        train_head_keeping_best(recipe, classes, train, val, device, &mut on_epoch).await?;
    let head_scores = match val {
        Some(val) => Some(evaluate(&head, val, device).await?),
        None => None,
    };

    let (trained, scores, head_alone_scores, kept) = match (&recipe.finetune, &set.boundary) {
        (Some(stage), Some(boundary)) => {
            let augmented_boundary = augmented.and_then(|a| a.boundary.as_deref());
            let model = FineTuned {
                top: base.network.top(stage.unfreeze),
                head: head.clone(),
            };
            let share = Share {
                rank: 0,
                ranks: peers.ranks(),
                photos: samples.0.len(),
            };
            if share.ranks > 1 {
                let weights = flat_weights(&model).await?;
                let rows = Rows {
                    boundary,
                    augmented: augmented_boundary,
                    views,
                    labels: &labels,
                    classes,
                };
                for rank in 1..share.ranks {
                    let theirs = Share { rank, ..share };
                    rows.hand_out(peers, theirs, &samples, weights.clone());
                }
            }
            let val_share = Share {
                photos: samples.1.len(),
                ..share
            };
            let held = (share.pick(&samples.0), val_share.pick(&samples.1));
            let (train, _) = split_rows(boundary, augmented_boundary, views, &labels, &held);
            let held_val = LabelledFeatures::new(boundary, &labels).subset(&held.1);
            let (_, val) = split_rows(boundary, None, 0, &labels, &samples);
            let (tuned, reports, tuned_kept) = finetune::fine_tune_led(
                recipe,
                stage,
                model,
                Held { rows: train, share },
                Some(Held {
                    rows: held_val,
                    share: val_share,
                }),
                device,
                peers,
                &mut on_epoch,
            )
            .await?;
            epochs.extend(reports);
            // Fine-tuning that scores worse than the head alone is not kept.
            if recipe.keep_best && !head_kept.is_beaten_by(&tuned_kept) && head_kept.val.is_some() {
                (
                    TrainedParts { head, top: None },
                    head_scores.clone(),
                    head_scores,
                    head_kept,
                )
            } else {
                let scores = match val {
                    Some(val) => Some(finetune::evaluate(&tuned, val, device).await?),
                    None => None,
                };
                let trained = TrainedParts {
                    head: tuned.head,
                    top: Some(tuned.top),
                };
                (trained, scores, head_scores, tuned_kept)
            }
        }
        _ => (
            TrainedParts { head, top: None },
            head_scores,
            None,
            head_kept,
        ),
    };
    let metadata = HeadMetadata {
        classes: set.dataset.classes.clone(),
        base_model_sha256: base.sha256.to_string(),
        recipe: Some(recipe.clone()),
        split: split_name,
        preprocessing: base.input_scaling.describe(),
        unfrozen_blocks: trained.unfrozen(),
        trained: Some(TrainingRecord {
            date: utc_date(
                web_time::SystemTime::now()
                    .duration_since(web_time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
            training_photos: samples.0.len(),
            validation_photos: samples.1.len(),
            validation_accuracy: scores.as_ref().map(|s| s.accuracy),
        }),
    };
    let head_file = save(&trained, &metadata)
        .await
        .map_err(|e| RunError::Save(e.to_string()))?;
    let used_samples = (0..parts.len())
        .filter(|&i| matches!(parts[i], Part::Train | Part::Val))
        .collect();
    Ok(TrainingRun {
        parts: trained,
        metadata,
        head_file,
        epochs,
        kept_epoch: kept.epoch,
        scores,
        head_alone_scores,
        val_samples: (0..parts.len())
            .filter(|&i| parts[i] == Part::Val)
            .collect(),
        left_out,
        used_samples,
        computed_pooled: computed,
    })
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
