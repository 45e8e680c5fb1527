//! The worker's edge: the library's types in, the page's messages out (and back). Nothing
//! here computes; it only renames and regroups.

use std::path::PathBuf;

use afinar::train::{self, Dataset, EpochReport, Part, Sample, Split, TrainingRun};
use afinar_protocol::{DisputedLabel, TrainingOutcome, TrainingRows};
use afinar_vocabulary::{Backend, EpochSummary, Mistake, RowPrediction, RunScores};

/// The page's training photos as the library's training set (split as the set says, or by
/// the recipe's stratified draw).
pub fn training_set(set: TrainingRows) -> Result<train::TrainingSet, String> {
    if set.names.len() != set.labels.len() {
        return Err("the photos' names do not match their labels".into());
    }
    // The run checks that the marks cover every photo.
    let split = match set.validation {
        None => Split::Stratified,
        Some(held_out) => Split::Fixed {
            parts: held_out
                .into_iter()
                .map(|v| if v { Part::Val } else { Part::Train })
                .collect(),
            name: "the given validation photos".into(),
        },
    };
    if let Some(&bad) = set.labels.iter().find(|&&l| l >= set.classes.len()) {
        return Err(format!(
            "a photo belongs to class {bad}, which does not exist"
        ));
    }
    let samples = set
        .names
        .into_iter()
        .zip(&set.labels)
        .map(|(name, &class)| Sample {
            path: PathBuf::from(name),
            class,
        })
        .collect();
    Ok(train::TrainingSet {
        dataset: Dataset {
            classes: set.classes,
            samples,
        },
        hashes: set.sha256,
        pooled: Some(set.features),
        boundary: set.boundary,
        augmented: (set.settings.views > 0 && set.augmented.is_some()).then_some(
            train::AugmentedRows {
                views: set.settings.views,
                pooled: set.augmented,
                boundary: set.augmented_boundary,
            },
        ),
        split,
    })
}

pub fn epoch(r: &EpochReport, total_epochs: usize, elapsed_ms: f64) -> EpochSummary {
    EpochSummary {
        epoch: r.epoch,
        total_epochs,
        train_loss: r.train_loss,
        train_accuracy: r.train_accuracy,
        val_loss: r.val_loss,
        val_accuracy: r.val_accuracy,
        elapsed_ms,
    }
}

/// What the page hears of a finished run; `epochs` are the summaries sent while it ran.
pub fn outcome(
    run: TrainingRun,
    epochs: Vec<EpochSummary>,
    backend: Backend,
    train_ms: f64,
    wasm_memory_bytes: u64,
    helper_memory_bytes: Vec<u64>,
) -> TrainingOutcome {
    let scores = run.scores.as_ref();
    let mistakes = scores
        .map(|e| {
            e.mistakes()
                .into_iter()
                .filter_map(|i| {
                    let p = e.predictions[i];
                    Some(Mistake {
                        row: *run.val_samples.get(i)?,
                        label: p.truth,
                        predicted: p.class,
                        confidence: p.confidence,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let val_predictions = scores
        .map(|e| {
            e.predictions
                .iter()
                .zip(&run.val_samples)
                .map(|(p, &row)| RowPrediction {
                    row,
                    label: p.truth,
                    predicted: p.class,
                    confidence: p.confidence,
                })
                .collect()
        })
        .unwrap_or_default();
    let scores = RunScores {
        classes: run.metadata.classes.clone(),
        val_rows: run.val_samples,
        left_out: run.left_out,
        val_accuracy: scores.map(|e| e.accuracy),
        frozen_val_accuracy: run.head_alone_scores.as_ref().map(|e| e.accuracy),
        per_class: scores.map(|e| e.per_class.clone()).unwrap_or_default(),
        precision: scores.map(|e| e.precision.clone()).unwrap_or_default(),
        f1: scores.map(|e| e.f1.clone()).unwrap_or_default(),
        confusion: scores.map(|e| e.confusion.clone()).unwrap_or_default(),
        mistakes,
        val_predictions,
        kept_epoch: run.kept_epoch,
        unfrozen_blocks: run.metadata.unfrozen_blocks,
        epochs,
        backend,
        train_ms,
        wasm_memory_bytes,
        helper_memory_bytes,
    };
    TrainingOutcome {
        scores,
        head_file: run.head_file,
    }
}

pub fn disputed(disputed: Vec<train::Disputed>) -> Vec<DisputedLabel> {
    disputed
        .into_iter()
        .map(|d| DisputedLabel {
            row: d.sample,
            suggested: d.suggested,
            confidence: d.confidence,
            label_probability: d.label_probability,
        })
        .collect()
}

/// A helper's share of a fine-tuning stage, as the message that carries it.
pub fn stage_share(
    share: train::StageShare,
    settings: &afinar_vocabulary::TrainSettings,
) -> afinar_protocol::StageShare {
    afinar_protocol::StageShare {
        rank: share.share_rank,
        ranks: share.ranks,
        photos: share.photos,
        classes: share.classes,
        settings: settings.clone(),
        weights: share.weights,
        labels: share.labels,
        boundary: share.boundary,
        augmented: share.augmented,
        views: share.views,
        val_photos: share.val_photos,
        val_labels: share.val_labels,
        val_boundary: share.val_boundary,
    }
}

/// A piece of a helper's training rows as the message that carries it, of its `photos`.
pub fn share_rows(piece: train::ShareRows, photos: usize) -> afinar_protocol::RowsPart {
    afinar_protocol::RowsPart {
        first: piece.first,
        count: piece.count,
        photos,
        features: Vec::new(),
        boundary: Some(piece.boundary),
        augmented: None,
        augmented_boundary: piece.augmented,
    }
}

/// The message back as the library's share, and the recipe it follows.
pub fn followed_share(share: afinar_protocol::StageShare) -> (train::StageShare, afinar::Recipe) {
    let recipe = afinar::Recipe::from_settings(&share.settings);
    let share = train::StageShare {
        share_rank: share.rank,
        ranks: share.ranks,
        photos: share.photos,
        classes: share.classes,
        weights: share.weights,
        labels: share.labels,
        boundary: share.boundary,
        augmented: share.augmented,
        views: share.views,
        val_photos: share.val_photos,
        val_labels: share.val_labels,
        val_boundary: share.val_boundary,
    };
    (share, recipe)
}
