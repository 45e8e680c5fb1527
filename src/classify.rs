//! Features → ImageNet probabilities → labelled top-K predictions.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::head::TrainedParts;
use crate::model::MobileNetV2;
use crate::preprocess::{ModelInput, to_tensor};
use crate::tflite::{InputScaling, MobileNetV2Weights, ModelError};

pub use afinar_protocol::Prediction;

/// Photos per forward pass on a GPU. Larger batches are split: WebGPU's default storage-buffer
/// binding limit (128 MiB) must hold the largest activation, 96×112×112 floats (4.8 MB) per
/// photo. The CPU takes [`CPU_BATCH`].
pub const MAX_DEVICE_BATCH: usize = 16;

/// Photos per forward pass on the CPU backend. Measured natively on 2 cores: 22 ms per photo at
/// batch 1, 20 at 2, 27 at 4, 41 from 8 up — larger batches' activations outgrow the caches.
pub const CPU_BATCH: usize = 2;

/// The device failed while running the model (for example a lost WebGPU device or out of memory).
#[derive(Debug, thiserror::Error)]
#[error("the compute device failed: {0}")]
pub struct DeviceError(pub String);

fn device_error(e: impl std::fmt::Display) -> DeviceError {
    DeviceError(e.to_string())
}

/// The pretrained network with its labels, ready to classify photos on one device.
#[derive(Debug)]
pub struct Classifier {
    model: MobileNetV2,
    labels: Vec<String>,
    scaling: InputScaling,
    sha256: String,
    device: Device,
}

impl Classifier {
    /// Reads a `.tflite` file. `fallback_labels` is the text of a label list for files that do
    /// not carry one.
    pub fn from_tflite(
        bytes: &[u8],
        fallback_labels: Option<&str>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let weights = MobileNetV2Weights::from_tflite(bytes)?;
        let labels = weights.labels_or(fallback_labels)?;
        Ok(Self::new(&weights, labels, device))
    }

    /// Builds the model on `device`. `labels` must have one entry per output.
    pub fn new(weights: &MobileNetV2Weights, labels: Vec<String>, device: &Device) -> Self {
        Self {
            model: MobileNetV2::from_weights(weights, device),
            labels,
            scaling: weights.input_scaling,
            sha256: weights.sha256.clone(),
            device: device.clone(),
        }
    }

    pub fn model(&self) -> &MobileNetV2 {
        &self.model
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// sha256 of the `.tflite` file the weights came from.
    pub fn model_sha256(&self) -> &str {
        &self.sha256
    }

    /// The network's input tensor for `inputs`: `[N, 3, 224, 224]`.
    pub fn input_tensor(&self, inputs: &[ModelInput]) -> Tensor<4> {
        to_tensor(inputs, self.scaling, &self.device)
    }

    /// Softmax probabilities, `[N, num_classes]`, still on the device.
    pub fn probabilities(&self, inputs: &[ModelInput]) -> Tensor<2> {
        softmax(self.model.forward(self.input_tensor(inputs)), 1)
    }

    /// Top-`k` predictions per input. Reads the device synchronously: native and CPU only
    /// (WebGPU in a browser needs [`Self::classify_async`]).
    pub fn classify(
        &self,
        inputs: &[ModelInput],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>, DeviceError> {
        let mut predictions = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(self.device_batch()) {
            let data = self
                .probabilities(chunk)
                .try_into_data()
                .map_err(device_error)?;
            predictions.extend(self.top_predictions(&f32_values(data)?, k));
        }
        Ok(predictions)
    }

    /// Top-`k` predictions per input, reading the device asynchronously (any device, wasm too).
    pub async fn classify_async(
        &self,
        inputs: &[ModelInput],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>, DeviceError> {
        let probs = self
            .read_in_chunks(inputs, |chunk| self.probabilities(chunk))
            .await?;
        Ok(self.top_predictions(&probs, k))
    }

    /// Pooled backbone features (`[N, 1280]` row-major), read back asynchronously: the input
    /// of a trained head.
    pub async fn features_async(&self, inputs: &[ModelInput]) -> Result<Vec<f32>, DeviceError> {
        self.read_in_chunks(inputs, |chunk| {
            self.model.features(self.input_tensor(chunk))
        })
        .await
    }

    /// Top-`k` predictions per input in the classes of trained parts, named by `classes`.
    pub async fn classify_trained_async(
        &self,
        inputs: &[ModelInput],
        parts: &TrainedParts,
        classes: &[String],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>, DeviceError> {
        let probs = self
            .read_in_chunks(inputs, |chunk| {
                softmax(parts.logits(&self.model, self.input_tensor(chunk)), 1)
            })
            .await?;
        Ok(labelled_top_k(&probs, classes, k))
    }

    /// What a training photo needs, in one pass: pooled features, the boundary activations
    /// below the last `unfreeze` blocks (when set) and the ImageNet probabilities.
    pub async fn embed_async(
        &self,
        input: &ModelInput,
        unfreeze: Option<usize>,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>, Vec<f32>), DeviceError> {
        let x = self.input_tensor(std::slice::from_ref(input));
        let (pooled, boundary) = match unfreeze {
            Some(k) => {
                let boundary = self.model.boundary(x, k);
                (self.model.top(k).forward(boundary.clone()), Some(boundary))
            }
            None => (self.model.features(x), None),
        };
        let probs = softmax(self.model.logits_from_features(pooled.clone()), 1);
        let pooled = f32_values(pooled.into_data_async().await.map_err(device_error)?)?;
        let probs = f32_values(probs.into_data_async().await.map_err(device_error)?)?;
        let boundary = match boundary {
            Some(b) => Some(f32_values(
                b.into_data_async().await.map_err(device_error)?,
            )?),
            None => None,
        };
        Ok((pooled, boundary, probs))
    }

    /// Labelled top-`k` of one row of ImageNet probabilities.
    pub fn top_labels(&self, probs: &[f32], k: usize) -> Vec<Prediction> {
        self.top_predictions(probs, k).pop().unwrap_or_default()
    }

    /// Activations at the freeze boundary below the last `unfrozen` blocks, flattened to one
    /// row of `C·H·W` values per input (see [`crate::architecture::boundary_shape`]).
    pub async fn boundary_async(
        &self,
        inputs: &[ModelInput],
        unfrozen: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        self.read_in_chunks(inputs, |chunk| {
            self.model
                .boundary(self.input_tensor(chunk), unfrozen)
                .flatten(1, 3)
        })
        .await
    }

    /// Softmax probabilities read back asynchronously (any device, wasm too): one row of
    /// `num_classes` values per input.
    pub async fn probability_rows_async(
        &self,
        inputs: &[ModelInput],
    ) -> Result<Vec<Vec<f32>>, DeviceError> {
        let probs = self
            .read_in_chunks(inputs, |chunk| self.probabilities(chunk))
            .await?;
        Ok(probs
            .chunks_exact(self.labels.len())
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// Photos per forward pass on this classifier's device.
    fn device_batch(&self) -> usize {
        if self.device == crate::device::cpu() {
            CPU_BATCH
        } else {
            MAX_DEVICE_BATCH
        }
    }

    /// Runs `pass` on at most [`Self::device_batch`] inputs at a time and reads each result back
    /// asynchronously, concatenated row-major.
    async fn read_in_chunks(
        &self,
        inputs: &[ModelInput],
        pass: impl Fn(&[ModelInput]) -> Tensor<2>,
    ) -> Result<Vec<f32>, DeviceError> {
        let mut values = Vec::new();
        for chunk in inputs.chunks(self.device_batch()) {
            let data = pass(chunk).into_data_async().await.map_err(device_error)?;
            values.extend(f32_values(data)?);
        }
        Ok(values)
    }

    /// Labelled top-`k` of each row of `probs` (`[N, num_classes]` row-major).
    fn top_predictions(&self, probs: &[f32], k: usize) -> Vec<Vec<Prediction>> {
        labelled_top_k(probs, &self.labels, k)
    }
}

/// Labelled top-`k` of each row of `probs` (`[N, labels.len()]` row-major).
fn labelled_top_k(probs: &[f32], labels: &[String], k: usize) -> Vec<Vec<Prediction>> {
    probs
        .chunks_exact(labels.len().max(1))
        .map(|row| {
            top_k(row, k)
                .into_iter()
                .map(|(index, prob)| Prediction {
                    index,
                    label: labels.get(index).cloned().unwrap_or_default(),
                    prob,
                })
                .collect()
        })
        .collect()
}

fn f32_values(data: TensorData) -> Result<Vec<f32>, DeviceError> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| DeviceError(format!("unreadable output: {e:?}")))
}

/// Indices and values of the `k` largest values, largest first; ties go to the lower index.
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.into_iter().take(k).map(|i| (i, values[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_orders_by_value_then_index() {
        assert_eq!(
            top_k(&[0.1, 0.5, 0.2, 0.5], 3),
            [(1, 0.5), (3, 0.5), (2, 0.2)]
        );
        assert_eq!(top_k(&[0.1], 5), [(0, 0.1)]);
    }
}
