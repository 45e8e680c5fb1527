//! What training reads: rows of cached backbone outputs with their labels, and how device
//! reads fail.

use burn::prelude::*;

use super::dataset::Part;

/// Rows of model inputs with their class indices: pooled features (`[N, 1280]`) for the head,
/// or flattened activations at the freeze boundary for the fine-tuning stage. Row-major.
///
/// It may stand for a subset of the rows ([`Self::subset`]) and carry augmented views of each
/// photo beside its plain row ([`Self::with_augmented`]), all without copying.
#[derive(Debug, Clone, Copy)]
pub struct LabelledFeatures<'a> {
    /// One row per photo of the whole set.
    pub features: &'a [f32],
    /// One class per photo of the whole set.
    pub labels: &'a [usize],
    /// Values per row.
    pub width: usize,
    /// The photos (indices into `labels`) these features stand for; all when `None`.
    samples: Option<&'a [usize]>,
    /// `views` rows per photo of the whole set, photo after photo.
    augmented: Option<(&'a [f32], usize)>,
}

impl<'a> LabelledFeatures<'a> {
    /// `features` holds one row per label.
    pub fn new(features: &'a [f32], labels: &'a [usize]) -> Self {
        Self {
            features,
            labels,
            width: features.len() / labels.len().max(1),
            samples: None,
            augmented: None,
        }
    }

    /// The same rows, limited to the photos at `samples`.
    pub fn subset(self, samples: &'a [usize]) -> Self {
        Self {
            samples: Some(samples),
            ..self
        }
    }

    /// The same rows with `views` augmented rows per photo in `augmented` (the whole set's
    /// photos, in order). Ignored when its size does not match.
    pub fn with_augmented(self, augmented: &'a [f32], views: usize) -> Self {
        let fits = views > 0 && augmented.len() == self.labels.len() * views * self.width;
        Self {
            augmented: fits.then_some((augmented, views)),
            ..self
        }
    }

    pub fn len(&self) -> usize {
        self.samples.map_or(self.labels.len(), <[usize]>::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Views of each photo to draw from: the plain one and the augmented ones.
    pub fn views(&self) -> usize {
        1 + self.augmented.map_or(0, |(_, views)| views)
    }

    /// Classes of the photos, in order.
    pub fn classes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).map(|i| self.labels[self.sample(i)])
    }

    fn sample(&self, i: usize) -> usize {
        self.samples.map_or(i, |s| s[i])
    }

    /// Row `view` of photo `i` (view 0: the plain photo).
    fn row(&self, i: usize, view: usize) -> &'a [f32] {
        let (w, sample) = (self.width, self.sample(i));
        match (view, self.augmented) {
            (1.., Some((augmented, views))) => {
                let at = sample * views + (view - 1).min(views - 1);
                &augmented[at * w..(at + 1) * w]
            }
            _ => &self.features[sample * w..(sample + 1) * w],
        }
    }

    /// The batch of the plain rows of photos `rows`.
    pub(crate) fn tensors(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let picks: Vec<(usize, usize)> = rows.iter().map(|&i| (i, 0)).collect();
        self.view_tensors(&picks, device)
    }

    /// The batch of `(photo, view)` rows.
    pub(crate) fn view_tensors(
        &self,
        picks: &[(usize, usize)],
        device: &Device,
    ) -> (Tensor<2>, Tensor<1, Int>) {
        let w = self.width;
        let mut x = Vec::with_capacity(picks.len() * w);
        for &(i, view) in picks {
            x.extend_from_slice(self.row(i, view));
        }
        let y: Vec<i64> = picks
            .iter()
            .map(|&(i, _)| self.labels[self.sample(i)] as i64)
            .collect();
        (
            Tensor::from_data(TensorData::new(x, [picks.len(), w]), device),
            Tensor::from_data(TensorData::new(y, [picks.len()]), device),
        )
    }
}

/// Indices of the photos in `part` of a split.
pub fn samples_in(parts: &[Part], part: Part) -> Vec<usize> {
    (0..parts.len()).filter(|&i| parts[i] == part).collect()
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
    /// A worker training together with this one stopped (or the run it followed ended).
    #[error("a worker training together with this one stopped")]
    PeerLost,
    /// The share of a stage handed to this worker does not fit the model it follows.
    #[error("the share of photos handed to this worker does not fit its model")]
    BadShare,
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
