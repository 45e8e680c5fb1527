//! Training the head on cached backbone features, and measuring it.
//!
//! Every read from the device is asynchronous, so the same code runs natively (block on it)
//! and in a browser worker on WebGPU.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::dataset::Part;
use crate::head::{Head, HeadConfig};

/// The head recipe's settings (the Keras transfer-learning defaults).
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// Passes over the training photos.
    #[config(default = 10)]
    pub epochs: usize,
    #[config(default = 32)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Seeds the head's initial weights and the order of the photos.
    #[config(default = 42)]
    pub seed: u64,
    /// Width of the head's hidden layer.
    #[config(default = 128)]
    pub hidden: usize,
}

/// Rows of model inputs with their class indices: pooled features (`[N, 1280]`) for the head,
/// or flattened activations at the freeze boundary for the fine-tuning stage. Row-major.
#[derive(Debug, Clone, Copy)]
pub struct LabelledFeatures<'a> {
    pub features: &'a [f32],
    pub labels: &'a [usize],
    /// Values per row.
    pub width: usize,
}

impl<'a> LabelledFeatures<'a> {
    /// `features` holds one row per label.
    pub fn new(features: &'a [f32], labels: &'a [usize]) -> Self {
        Self {
            features,
            labels,
            width: features.len() / labels.len().max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn tensors(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let w = self.width;
        let mut x = Vec::with_capacity(rows.len() * w);
        for &r in rows {
            x.extend_from_slice(&self.features[r * w..(r + 1) * w]);
        }
        let y: Vec<i64> = rows.iter().map(|&r| self.labels[r] as i64).collect();
        (
            Tensor::from_data(TensorData::new(x, [rows.len(), w]), device),
            Tensor::from_data(TensorData::new(y, [rows.len()]), device),
        )
    }
}

/// The rows (each `width` values) and labels of the photos in `part` of a split.
pub fn select_rows(
    rows: &[f32],
    width: usize,
    labels: &[usize],
    parts: &[Part],
    part: Part,
) -> (Vec<f32>, Vec<usize>) {
    let mut selected = Vec::new();
    let mut selected_labels = Vec::new();
    for (i, _) in parts.iter().enumerate().filter(|(_, p)| **p == part) {
        selected.extend_from_slice(&rows[i * width..(i + 1) * width]);
        selected_labels.push(labels[i]);
    }
    (selected, selected_labels)
}

/// Loss and accuracy of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
}

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

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TrainError {
    #[error("there are no training photos")]
    NoTrainingData,
    #[error("the loss became {value} in epoch {epoch}; try a lower learning rate")]
    NonFiniteLoss { epoch: usize, value: f64 },
    #[error("training was cancelled")]
    Cancelled,
    #[error("the compute device failed: {0}")]
    Device(String),
}

async fn read_f64(t: Tensor<1>) -> Result<f64, TrainError> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| TrainError::Device(e.to_string()))?;
    let v = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Device(format!("{e:?}")))?;
    Ok(v.first().copied().unwrap_or(f32::NAN) as f64)
}

/// Trains a new head. `on_epoch` sees each epoch's report and returns `false` to cancel.
pub async fn train_head(
    config: &TrainConfig,
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
        .with_hidden(config.hidden)
        .with_seed(config.seed)
        .init(&autodiff);
    let schedule = Schedule {
        epochs: config.epochs,
        batch_size: config.batch_size,
        learning_rate: config.learning_rate,
        seed: config.seed,
        first_epoch: 1,
    };
    fit(head, Head::forward, &schedule, train, val, device, on_epoch).await
}

/// Optimizer steps between two chances for the host (the browser worker's event loop) to run.
const YIELD_EVERY_STEPS: usize = 8;

/// How [`fit`] walks over the data.
pub(crate) struct Schedule {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Number of the first epoch in the reports (stages continue the count).
    pub first_epoch: usize,
}

/// Trains every trainable parameter of `model` (already on the autodiff device) with Adam on
/// cross-entropy, reporting each epoch; `forward` maps a batch of rows to logits.
pub(crate) async fn fit<M: Module>(
    mut model: M,
    forward: impl Fn(&M, Tensor<2>) -> Tensor<2>,
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
    // Keras's epsilon; Burn's default (1e-5) damps the first steps of a fresh head.
    let mut optimizer = AdamConfig::new().with_epsilon(1e-7).init();
    let loss_fn = CrossEntropyLossConfig::new().init(&autodiff);
    let mut rng = rand::rngs::StdRng::seed_from_u64(schedule.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut reports = Vec::with_capacity(schedule.epochs);
    for epoch in schedule.first_epoch..schedule.first_epoch + schedule.epochs {
        order.shuffle(&mut rng);
        // Sums stay on the device and are read once per epoch.
        let mut loss_sum = Tensor::<1>::zeros([1], device);
        let mut correct = Tensor::<1, Int>::zeros([1], device);
        for (step, rows) in order.chunks(schedule.batch_size.max(1)).enumerate() {
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

/// Loss, accuracy, per-class accuracy and confusion matrix of `head` on `data`.
pub async fn evaluate(
    head: &Head,
    data: LabelledFeatures<'_>,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    evaluate_with(head, Head::forward, data, device).await
}

/// [`evaluate`] for any model that maps rows of `data` to logits.
pub(crate) async fn evaluate_with<M>(
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
