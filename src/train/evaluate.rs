//! Scores of a trained model on labelled rows: loss, accuracy, per class, confusion matrix.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use serde::Serialize;

use super::labelled::{LabelledFeatures, TrainError, read_f64};
use crate::head::model::Head;

/// How well a head does on labelled features.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    /// Accuracy per true class (NaN-free: 0 for a class without photos).
    pub per_class: Vec<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Loss, accuracy, per-class accuracy and confusion matrix of `head` on `data`.
pub async fn evaluate(
    head: &Head,
    data: LabelledFeatures<'_>,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    evaluate_with(head, Head::forward, data, device).await
}

/// [`evaluate`] for any model that maps rows of `data` to logits.
pub async fn evaluate_with<M>(
    model: &M,
    forward: impl Fn(&M, Tensor<2>) -> Tensor<2>,
    data: LabelledFeatures<'_>,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    let mut classes = 0;
    let all: Vec<usize> = (0..data.len()).collect();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut loss_sum = 0.0;
    let mut predicted = Vec::with_capacity(data.len());
    for rows in all.chunks(256) {
        let (x, y) = data.tensors(rows, device);
        let logits = forward(model, x);
        classes = logits.dims()[1];
        loss_sum += read_f64(loss_fn.forward(logits.clone(), y)).await? * rows.len() as f64;
        let best = logits
            .argmax(1)
            .into_data_async()
            .await
            .map_err(|e| TrainError::Device(e.to_string()))?
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| TrainError::Device(format!("{e:?}")))?;
        predicted.extend(best.into_iter().map(|p| p as usize));
    }
    let mut confusion = vec![vec![0usize; classes]; classes];
    for (&truth, &guess) in data.labels.iter().zip(&predicted) {
        if truth < classes && guess < classes {
            confusion[truth][guess] += 1;
        }
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let n: usize = row.iter().sum();
            if n == 0 {
                0.0
            } else {
                row[c] as f64 / n as f64
            }
        })
        .collect();
    Ok(Evaluation {
        loss: loss_sum / data.len().max(1) as f64,
        accuracy: correct as f64 / data.len().max(1) as f64,
        per_class,
        confusion,
    })
}
