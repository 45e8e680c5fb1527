//! Scores of a trained model on labelled rows: loss, accuracy, precision, recall and F1 per
//! class, the confusion matrix, and each photo's prediction (to find the confident mistakes).

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::Serialize;

use super::labelled::{LabelledFeatures, TrainError, read_f64};
use crate::head::model::Head;

/// How well a model does on labelled photos.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    /// Recall per true class: the share of its photos given their class (0 for a class
    /// without photos).
    pub per_class: Vec<f64>,
    /// Per predicted class, the share of its predictions that are right (0 when never
    /// predicted).
    pub precision: Vec<f64>,
    /// Harmonic mean of precision and recall per class (0 when both are 0).
    pub f1: Vec<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Each photo's predicted class and its probability, in the rows' order.
    pub predictions: Vec<Predicted>,
}

/// The model's answer for one photo.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Predicted {
    pub class: usize,
    pub confidence: f32,
    /// The class the photo is labelled with.
    pub truth: usize,
    /// The probability the model gives that class.
    pub truth_probability: f32,
}

impl Evaluation {
    /// Rows (in the evaluated order) the model gets wrong, the most confident first: the
    /// photos most worth a second look (a wrong label, or a hard case).
    pub fn mistakes(&self) -> Vec<usize> {
        let mut wrong: Vec<usize> = (0..self.predictions.len())
            .filter(|&i| self.predictions[i].class != self.predictions[i].truth)
            .collect();
        wrong.sort_by(|&a, &b| {
            self.predictions[b]
                .confidence
                .total_cmp(&self.predictions[a].confidence)
        });
        wrong
    }

    /// Unweighted mean of the per-class F1 scores.
    pub fn macro_f1(&self) -> f64 {
        self.f1.iter().sum::<f64>() / self.f1.len().max(1) as f64
    }
}

/// Scores of `head` on `data`.
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
    let mut probabilities = Vec::with_capacity(data.len());
    for rows in all.chunks(256) {
        let (x, y) = data.tensors(rows, device);
        let logits = forward(model, x);
        classes = logits.dims()[1];
        loss_sum += read_f64(loss_fn.forward(logits.clone(), y)).await? * rows.len() as f64;
        let probs = softmax(logits, 1)
            .into_data_async()
            .await
            .map_err(|e| TrainError::Device(e.to_string()))?
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| TrainError::Device(format!("{e:?}")))?;
        probabilities.extend(probs);
    }
    let truths: Vec<usize> = data.classes().collect();
    Ok(scores(
        &probabilities,
        classes,
        &truths,
        loss_sum / data.len().max(1) as f64,
    ))
}

/// The loss summed over `data`'s rows and how many rows the model gets right: what workers
/// that each hold part of the validation photos add up to score an epoch. Read once.
pub(crate) async fn loss_and_hits<M>(
    model: &M,
    forward: impl Fn(&M, Tensor<2>) -> Tensor<2>,
    data: LabelledFeatures<'_>,
    device: &Device,
) -> Result<(f64, f64), TrainError> {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut loss_sum = Tensor::<1>::zeros([1], device);
    let mut hits = Tensor::<1, Int>::zeros([1], device);
    let all: Vec<usize> = (0..data.len()).collect();
    for rows in all.chunks(256) {
        let (x, y) = data.tensors(rows, device);
        let logits = forward(model, x);
        let right = logits
            .clone()
            .argmax(1)
            .reshape([rows.len()])
            .equal(y.clone());
        hits = hits + right.int().sum();
        loss_sum = loss_sum + loss_fn.forward(logits, y).mul_scalar(rows.len() as f32);
    }
    Ok((read_f64(loss_sum).await?, read_f64(hits.float()).await?))
}

/// Scores from each row's class probabilities (`classes` per row) and true classes.
fn scores(probabilities: &[f32], classes: usize, truths: &[usize], loss: f64) -> Evaluation {
    let predictions: Vec<Predicted> = probabilities
        .chunks_exact(classes.max(1))
        .zip(truths)
        .map(|(p, &truth)| {
            let (class, confidence) =
                p.iter()
                    .copied()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (c, v)| {
                        if v > best.1 { (c, v) } else { best }
                    });
            Predicted {
                class,
                confidence,
                truth,
                truth_probability: p.get(truth).copied().unwrap_or(0.0),
            }
        })
        .collect();
    let mut confusion = vec![vec![0usize; classes]; classes];
    for p in &predictions {
        if p.truth < classes {
            confusion[p.truth][p.class] += 1;
        }
    }
    let share = |part: usize, whole: usize| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class: Vec<f64> = (0..classes)
        .map(|c| share(confusion[c][c], confusion[c].iter().sum()))
        .collect();
    let precision: Vec<f64> = (0..classes)
        .map(|c| share(confusion[c][c], confusion.iter().map(|row| row[c]).sum()))
        .collect();
    let f1 = per_class
        .iter()
        .zip(&precision)
        .map(|(&r, &p)| {
            if r + p > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            }
        })
        .collect();
    Evaluation {
        loss,
        accuracy: share(correct, predictions.len()),
        per_class,
        precision,
        f1,
        confusion,
        predictions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_f1_and_mistakes_from_predictions() {
        // Three photos of class 0, one of class 1; the model calls one class-0 photo class 1
        // at 0.9 and another class-0 photo class 1 at 0.6.
        let probabilities = [0.8, 0.2, 0.1, 0.9, 0.4, 0.6, 0.3, 0.7];
        let e = scores(&probabilities, 2, &[0, 0, 0, 1], 0.5);
        assert_eq!(e.confusion, vec![vec![1, 2], vec![0, 1]]);
        assert_eq!(e.accuracy, 0.5);
        assert_eq!(e.per_class, vec![1.0 / 3.0, 1.0]);
        assert_eq!(e.precision, vec![1.0, 1.0 / 3.0]);
        assert!((e.f1[0] - 0.5).abs() < 1e-12 && (e.f1[1] - 0.5).abs() < 1e-12);
        assert_eq!(e.mistakes(), vec![1, 2], "most confident mistake first");
        assert_eq!(e.predictions[1].confidence, 0.9);
        assert_eq!(e.predictions[1].truth_probability, 0.1);
    }

    #[test]
    fn a_class_never_predicted_scores_zero_not_nan() {
        let e = scores(&[0.9, 0.1, 0.8, 0.2], 2, &[0, 1], 0.1);
        assert_eq!(e.precision, vec![0.5, 0.0]);
        assert_eq!(e.f1[1], 0.0);
        assert!(e.f1.iter().all(|f| f.is_finite()));
    }
}
