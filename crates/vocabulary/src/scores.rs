//! A training run's scores: what the page shows after a run, and what a project file keeps
//! of its last run.

use serde::{Deserialize, Serialize};

use crate::backend::Backend;

/// A finished run's scores (its head file travels and is stored apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunScores {
    pub classes: Vec<String>,
    /// Rows of the training set held out for validation.
    pub val_rows: Vec<usize>,
    /// Rows left out of training, each with the reason (a photo that is also in another
    /// class stays only in the class it was added to first).
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
    pub val_accuracy: Option<f64>,
    /// Validation accuracy of the head alone, before fine-tuning (when there was fine-tuning).
    pub frozen_val_accuracy: Option<f64>,
    /// Recall per class on the validation photos.
    pub per_class: Vec<f64>,
    /// Precision per class on the validation photos.
    #[serde(default)]
    pub precision: Vec<f64>,
    #[serde(default)]
    pub f1: Vec<f64>,
    /// `confusion[true][predicted]` on the validation photos.
    pub confusion: Vec<Vec<usize>>,
    /// Validation photos the model gets wrong, the most confident first.
    #[serde(default)]
    pub mistakes: Vec<Mistake>,
    /// What the model says about every validation photo, in `val_rows` order: the photos
    /// behind each cell of `confusion`.
    #[serde(default)]
    pub val_predictions: Vec<RowPrediction>,
    pub epochs: Vec<EpochSummary>,
    /// The epoch whose weights were kept (the best on validation).
    #[serde(default)]
    pub kept_epoch: usize,
    /// Fine-tuned backbone blocks in the kept weights (0: the head alone was kept).
    #[serde(default)]
    pub unfrozen_blocks: usize,
    pub backend: Backend,
    pub train_ms: f64,
    /// The worker's wasm memory after training (it only grows: the peak so far).
    #[serde(default)]
    pub wasm_memory_bytes: u64,
    /// The same for each helper worker that shared the fine-tuning stage (none: it trained
    /// alone).
    #[serde(default)]
    pub helper_memory_bytes: Vec<u64>,
}

/// Loss and accuracy after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    pub epoch: usize,
    pub total_epochs: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Since training started.
    pub elapsed_ms: f64,
}

/// What the trained model says about one photo of the training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowPrediction {
    /// Its row in the training set.
    pub row: usize,
    /// The class it was labelled with in that run.
    #[serde(default)]
    pub label: usize,
    /// The class the model gives it, and how sure it is.
    pub predicted: usize,
    pub confidence: f32,
}

/// A validation photo the trained model gets wrong.
pub type Mistake = RowPrediction;

/// A photo a training run did not use, and why (a message for people that names the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftOut {
    /// Its row in the training set (its index in the dataset's samples).
    pub row: usize,
    pub reason: String,
}

/// Past this many classes the page lays them out for many: the class list and the per-class
/// scores in boxes that scroll (the scores weakest first), and the confusion matrix as its most
/// confused pairs (a grid of hundreds of cells can't be read).
pub const MANY_CLASSES: usize = 20;

/// Most confused pairs shown in place of a confusion matrix of [`MANY_CLASSES`] or more.
pub const CONFUSED_PAIRS_SHOWN: usize = 20;

/// One cell of a confusion matrix off its diagonal: `count` validation photos of class `truth`
/// predicted as `predicted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confused {
    pub truth: usize,
    pub predicted: usize,
    pub count: usize,
}

/// The `k` cells of `confusion[true][predicted]` off its diagonal with the most photos, the
/// largest first (ties in row, then column order); empty cells are left out.
impl RunScores {
    /// The memory each worker of the run held, for people: "1,252 MB in the training worker",
    /// then its helpers' (each one's figure, in megabytes).
    pub fn memory_summary(&self) -> String {
        let mb = |bytes: u64| {
            let mb = (bytes as f64 / 1e6).round() as u64;
            match mb {
                1000.. => format!("{},{:03}", mb / 1000, mb % 1000),
                _ => mb.to_string(),
            }
        };
        let mut summary = format!("{} MB in the training worker", mb(self.wasm_memory_bytes));
        match self.helper_memory_bytes.as_slice() {
            [] => {}
            [one] => summary += &format!(", {} MB in its helper", mb(*one)),
            many => {
                let each: Vec<String> = many.iter().map(|&b| mb(b)).collect();
                summary += &format!(", {} MB in its {} helpers", each.join(" + "), many.len());
            }
        }
        summary
    }
}

pub fn most_confused(confusion: &[Vec<usize>], k: usize) -> Vec<Confused> {
    let mut cells: Vec<Confused> = confusion
        .iter()
        .enumerate()
        .flat_map(|(truth, row)| {
            row.iter()
                .enumerate()
                .filter(move |&(predicted, &count)| predicted != truth && count > 0)
                .map(move |(predicted, &count)| Confused {
                    truth,
                    predicted,
                    count,
                })
        })
        .collect();
    cells.sort_by(|a, b| (b.count, a.truth, a.predicted).cmp(&(a.count, b.truth, b.predicted)));
    cells.truncate(k);
    cells
}

/// The classes in the order to read their scores when there are many: the lowest F1 first
/// (recall where F1 is missing), ties in class order.
pub fn weakest_first(recall: &[f64], f1: &[f64]) -> Vec<usize> {
    let score = |c: usize| f1.get(c).or(recall.get(c)).copied().unwrap_or(0.0);
    let mut order: Vec<usize> = (0..recall.len().max(f1.len())).collect();
    order.sort_by(|&a, &b| score(a).total_cmp(&score(b)).then(a.cmp(&b)));
    order
}
