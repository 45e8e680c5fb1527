//! What training reads: rows of cached backbone outputs with their labels, and how device
//! reads fail.

use burn::prelude::*;

use super::dataset::Part;

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

    pub(crate) fn tensors(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
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

/// The first value of a one-element tensor, read back asynchronously.
pub(crate) async fn read_f64(t: Tensor<1>) -> Result<f64, TrainError> {
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
