//! One training run as the app asks for it: check the photos, split them, train the head, then
//! optionally fine-tune the top of the backbone, score the result and pack it as a file.
//!
//! Plain data in ([`TrainingSet`]), plain data out ([`TrainingOutcome`]), so the browser worker
//! only forwards messages and the same run is tested natively.

use burn::prelude::*;

use crate::architecture::{FEATURE_DIM, MAX_UNFROZEN_BLOCKS, boundary_shape};
use crate::dataset::{Dataset, Part, Sample};
use crate::finetune::{self, FineTuneConfig};
use crate::head::{self, HeadMetadata, TrainedParts};
use crate::model::MobileNetV2;
use crate::protocol::{Backend, EpochSummary, TrainingOutcome, TrainingSet};
use crate::train::{EpochReport, LabelledFeatures, TrainConfig, TrainError, select_rows};

/// Why a run did not produce a head. The messages are for people.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Dataset(#[from] crate::dataset::DatasetError),
    #[error("{0}")]
    Train(#[from] TrainError),
    #[error("{0}")]
    Settings(String),
    #[error("the trained head could not be saved: {0}")]
    Save(String),
}

impl RunError {
    /// The compute device failed (as opposed to bad input): worth retrying on another device.
    pub fn is_device_failure(&self) -> bool {
        matches!(self, RunError::Train(TrainError::Device(_)))
    }
}

fn check_shapes(set: &TrainingSet) -> Result<(), RunError> {
    let n = set.labels.len();
    let bad = |m: &str| Err(RunError::Settings(m.into()));
    if set.features.len() != n * FEATURE_DIM || set.sha256.len() != n {
        return bad("the photos' features do not match their labels");
    }
    if set.labels.iter().any(|&l| l >= set.classes.len()) {
        return bad("a photo belongs to a class that does not exist");
    }
    let s = &set.settings;
    if s.epochs == 0 || s.batch_size == 0 {
        return bad("epochs and batch size must be at least 1");
    }
    if !(s.learning_rate > 0.0 && s.learning_rate.is_finite()) {
        return bad("the learning rate must be a positive number");
    }
    if !(0.0..1.0).contains(&s.val_fraction) {
        return bad("the validation share must be at least 0 and below 1");
    }
    if let Some(k) = s.unfreeze {
        if !(1..=MAX_UNFROZEN_BLOCKS).contains(&k) {
            return Err(RunError::Settings(format!(
                "unfreeze between 1 and {MAX_UNFROZEN_BLOCKS} blocks"
            )));
        }
        let width: usize = boundary_shape(k).iter().product();
        if set.boundary.as_ref().map(Vec::len) != Some(n * width) {
            return bad("the photos' activations for fine-tuning are missing");
        }
    }
    Ok(())
}

/// An epoch's report for the page (the worker fills in the time).
fn summary(r: &EpochReport, total_epochs: usize) -> EpochSummary {
    EpochSummary {
        epoch: r.epoch,
        total_epochs,
        train_loss: r.train_loss,
        train_accuracy: r.train_accuracy,
        val_loss: r.val_loss,
        val_accuracy: r.val_accuracy,
        elapsed_ms: 0.0,
    }
}

/// Trains on `set` with `base` (the model whose features `set` holds) on `device`.
/// `on_epoch` sees every epoch (head, then fine-tuning) and returns `false` to cancel.
pub async fn run(
    set: &TrainingSet,
    base: &MobileNetV2,
    base_sha256: &str,
    backend: Backend,
    device: &Device,
    mut on_epoch: impl FnMut(&EpochSummary) -> bool,
) -> Result<(TrainedParts, TrainingOutcome), RunError> {
    check_shapes(set)?;
    let data = Dataset {
        classes: set.classes.clone(),
        samples: set
            .labels
            .iter()
            .enumerate()
            .map(|(i, &class)| Sample {
                path: format!("photo {}", i + 1).into(),
                class,
            })
            .collect(),
    };
    data.check()?;
    data.check_duplicates(&set.sha256)?;
    let s = &set.settings;
    let parts = data.stratified_split(s.val_fraction, s.seed);
    let (tf, tl) = select_rows(&set.features, FEATURE_DIM, &set.labels, &parts, Part::Train);
    let (vf, vl) = select_rows(&set.features, FEATURE_DIM, &set.labels, &parts, Part::Val);
    let val = LabelledFeatures::new(&vf, &vl);
    let val = (!val.is_empty()).then_some(val);
    let total_epochs = s.epochs + s.unfreeze.map_or(0, |_| s.finetune_epochs);
    let mut report = |r: &EpochReport| on_epoch(&summary(r, total_epochs));
    let mut epochs = Vec::new();
    let config = TrainConfig::new()
        .with_epochs(s.epochs)
        .with_learning_rate(s.learning_rate)
        .with_batch_size(s.batch_size)
        .with_seed(s.seed);
    let (head, head_reports) = crate::train::train_head(
        &config,
        set.classes.len(),
        LabelledFeatures::new(&tf, &tl),
        val,
        device,
        &mut report,
    )
    .await?;
    epochs.extend(head_reports);
    let frozen = match val {
        Some(val) => Some(crate::train::evaluate(&head, val, device).await?),
        None => None,
    };
    let tuning = s.unfreeze.map(|k| {
        FineTuneConfig::new()
            .with_unfreeze(k)
            .with_epochs(s.finetune_epochs)
            .with_learning_rate(s.finetune_learning_rate)
            .with_batch_size(s.batch_size)
            .with_seed(s.seed)
    });
    let (trained, scores) = match (&tuning, &set.boundary) {
        (Some(tuning), Some(boundary)) => {
            let k = tuning.unfreeze;
            let width: usize = boundary_shape(k).iter().product();
            let (tb, tl) = select_rows(boundary, width, &set.labels, &parts, Part::Train);
            let (vb, vl) = select_rows(boundary, width, &set.labels, &parts, Part::Val);
            let val = LabelledFeatures::new(&vb, &vl);
            let val = (!val.is_empty()).then_some(val);
            let (tuned, reports) = finetune::fine_tune(
                tuning,
                base.top(k),
                head,
                LabelledFeatures::new(&tb, &tl),
                val,
                device,
                s.epochs + 1,
                &mut report,
            )
            .await?;
            epochs.extend(reports);
            let scores = match val {
                Some(val) => Some(finetune::evaluate(&tuned, val, device).await?),
                None => None,
            };
            let trained = TrainedParts {
                head: tuned.head,
                top: Some(tuned.top),
            };
            (trained, scores)
        }
        _ => (TrainedParts { head, top: None }, frozen.clone()),
    };
    let metadata = HeadMetadata {
        classes: set.classes.clone(),
        base_model_sha256: base_sha256.to_string(),
        recipe: head::recipe(
            &config,
            &format!("stratified {}", s.val_fraction),
            tuning.as_ref(),
        ),
        preprocessing: head::PREPROCESSING.into(),
        unfrozen_blocks: trained.unfrozen(),
    };
    let head_file = head::save(&trained, &metadata)
        .await
        .map_err(|e| RunError::Save(e.to_string()))?;
    let outcome = TrainingOutcome {
        classes: set.classes.clone(),
        head_file,
        val_rows: (0..parts.len())
            .filter(|&i| parts[i] == Part::Val)
            .collect(),
        val_accuracy: scores.as_ref().map(|e| e.accuracy),
        frozen_val_accuracy: s.unfreeze.and(frozen.as_ref()).map(|e| e.accuracy),
        per_class: scores
            .as_ref()
            .map(|e| e.per_class.clone())
            .unwrap_or_default(),
        confusion: scores.map(|e| e.confusion).unwrap_or_default(),
        epochs: epochs.iter().map(|r| summary(r, total_epochs)).collect(),
        backend,
        train_ms: 0.0,
        wasm_memory_bytes: 0,
    };
    Ok((trained, outcome))
}
