//! The inference API: photos → the pretrained network → pooled features, ImageNet
//! probabilities and labelled top-K predictions (or the user's classes, through trained parts).
//!
//! Every read from the device is asynchronous, so the same calls run natively (block on them)
//! and in a browser worker on WebGPU.

use afinar_core::classify::labelled_top_k;
pub use afinar_core::classify::{Answers, Arithmetic, CpuClassifier, Embedding, PackedHead, top_k};
pub use afinar_vocabulary::Prediction;
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::architecture::{FEATURE_DIM, FeatureStage, INPUT_SIZE};
use crate::head::model::TrainedParts;
use crate::model::MobileNetV2;
use crate::model::kernels::CpuKernels;
use crate::preprocess::{INPUT_BYTES, InputScaling, ModelInput};
use crate::tflite::{MobileNetV2Weights, ModelError};
use crate::train::pipeline::BaseModel;

/// Photos per forward pass on a GPU. Larger batches are split: WebGPU's default storage-buffer
/// binding limit (128 MiB) must hold the largest activation, 96×112×112 floats (4.8 MB) per
/// photo. The CPU takes [`CPU_BATCH`].
pub const MAX_DEVICE_BATCH: usize = 16;

/// Photos per forward pass on the CPU backend: larger batches' activations outgrow the caches.
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
    /// The frozen backbone on Afinar's CPU kernels, on the CPU device (else Burn runs it).
    fast: Option<CpuClassifier>,
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

    /// Builds the model on `device`. `labels` must have one entry per output. On the CPU, the
    /// frozen backbone runs on the fastest kernels this CPU has ([`CpuKernels::from_env`]).
    pub fn new(weights: &MobileNetV2Weights, labels: Vec<String>, device: &Device) -> Self {
        Self::with_cpu_kernels(weights, labels, device, CpuKernels::from_env())
    }

    /// [`Self::new`] with the CPU path chosen by the caller (tests and benchmarks compare them).
    /// A path the CPU cannot run, or any device but the CPU, gets Burn's.
    pub fn with_cpu_kernels(
        weights: &MobileNetV2Weights,
        labels: Vec<String>,
        device: &Device,
        kernels: CpuKernels,
    ) -> Self {
        Self::with_cpu_path(weights, labels, device, kernels, Arithmetic::from_env())
    }

    /// [`Self::with_cpu_kernels`] with the arithmetic of a quantized file's frozen part chosen
    /// by the caller too.
    pub fn with_cpu_path(
        weights: &MobileNetV2Weights,
        labels: Vec<String>,
        device: &Device,
        kernels: CpuKernels,
        arithmetic: Arithmetic,
    ) -> Self {
        let fast = (*device == crate::device::cpu()
            && kernels != CpuKernels::Burn
            && kernels.is_supported())
        .then(|| CpuClassifier::with_arithmetic(weights, labels.clone(), kernels, arithmetic).ok())
        .flatten();
        Self {
            model: MobileNetV2::from_weights(weights, device),
            labels,
            scaling: weights.input_scaling,
            sha256: weights.sha256.clone(),
            device: device.clone(),
            fast,
        }
    }

    /// The path the frozen backbone runs on.
    pub fn cpu_kernels(&self) -> CpuKernels {
        self.fast
            .as_ref()
            .map_or(CpuKernels::Burn, CpuClassifier::kernels)
    }

    /// Where the frozen backbone runs, in words: Afinar's kernels by instruction set, or Burn
    /// on its device.
    pub fn runs_on(&self) -> String {
        match self.cpu_kernels() {
            CpuKernels::Burn if self.device != crate::device::cpu() => {
                "frozen backbone: Burn on the GPU".into()
            }
            CpuKernels::Burn => "frozen backbone: Burn's CPU ops".into(),
            kernels => match self.arithmetic() {
                Arithmetic::Integer => format!(
                    "frozen backbone: Afinar's {} kernels, in the file's 8-bit integers",
                    kernels.name()
                ),
                _ => match self.fast.as_ref().and_then(CpuClassifier::integer_refused) {
                    Some(why) => format!(
                        "frozen backbone: Afinar's {} kernels, in float32 (not the file's \
                         integers: {why})",
                        kernels.name()
                    ),
                    None => format!(
                        "frozen backbone: Afinar's {} kernels, in float32",
                        kernels.name()
                    ),
                },
            },
        }
    }

    /// The arithmetic of the pooled features and ImageNet's answers: the file's integers on
    /// Afinar's kernels where they run them, else float32.
    pub fn arithmetic(&self) -> Arithmetic {
        self.fast
            .as_ref()
            .map_or(Arithmetic::Float, CpuClassifier::arithmetic)
    }

    /// The classifier on the CPU kernels, where they run the frozen backbone.
    pub fn on_cpu_kernels(&self) -> Option<&CpuClassifier> {
        self.fast.as_ref()
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

    /// The network as a base to train the user's classes on.
    pub fn base(&self) -> BaseModel<'_> {
        BaseModel {
            network: &self.model,
            sha256: &self.sha256,
            input_scaling: self.scaling,
        }
    }

    /// The network's input tensor for `inputs`: `[N, 3, 224, 224]`.
    pub fn input_tensor(&self, inputs: &[ModelInput]) -> Tensor<4> {
        to_tensor(inputs, self.scaling, &self.device)
    }

    /// What the frozen backbone computes at `stage`, `[N, stage.width()]` on the device: on
    /// Afinar's CPU kernels where they run, else with Burn's layers.
    fn backbone(&self, inputs: &[ModelInput], stage: FeatureStage) -> Tensor<2> {
        let Some(fast) = &self.fast else {
            let x = self.input_tensor(inputs);
            return match stage {
                FeatureStage::Pooled => self.model.features(x),
                FeatureStage::Boundary(k) => self.model.boundary(x, k).flatten(1, 3),
            };
        };
        let rows = fast.features(inputs, stage);
        let shape = [inputs.len(), stage.width()];
        Tensor::from_data(TensorData::new(rows, shape), &self.device)
    }

    /// The boundary activations below the last `k` blocks (`[N, boundary width]`) and the
    /// pooled features (`[N, 1280]`), from one pass on the CPU kernels where they run.
    fn boundary_and_pooled(&self, inputs: &[ModelInput], k: usize) -> (Tensor<2>, Tensor<2>) {
        let Some(fast) = &self.fast else {
            let boundary = self.backbone(inputs, FeatureStage::Boundary(k));
            let pooled = self.model.top(k).forward_rows(boundary.clone());
            return (boundary, pooled);
        };
        let (boundary, pooled) = fast.boundary_and_pooled(inputs, k);
        let tensor = |rows, width| {
            Tensor::from_data(TensorData::new(rows, [inputs.len(), width]), &self.device)
        };
        let width = FeatureStage::Boundary(k).width();
        (tensor(boundary, width), tensor(pooled, FEATURE_DIM))
    }

    /// ImageNet probabilities, `[N, num_classes]` on the device (Burn's path).
    fn imagenet(&self, inputs: &[ModelInput]) -> Tensor<2> {
        let features = self.backbone(inputs, FeatureStage::Pooled);
        softmax(self.model.logits_from_features(features), 1)
    }

    /// ImageNet top-`k` predictions per input.
    pub async fn classify(
        &self,
        inputs: &[ModelInput],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>, DeviceError> {
        if let Some(fast) = &self.fast {
            return Ok(fast.classify(inputs, k));
        }
        let probs = self.read_in_chunks(inputs, |x| self.imagenet(x)).await?;
        Ok(labelled_top_k(&probs, &self.labels, k))
    }

    /// Top-`k` predictions per input in the classes of trained parts, named by `classes`.
    pub async fn classify_trained(
        &self,
        inputs: &[ModelInput],
        parts: &TrainedParts,
        classes: &[String],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>, DeviceError> {
        let stage = parts.input_stage();
        let probs = self
            .read_in_chunks(inputs, |x| {
                softmax(parts.logits(self.backbone(x, stage)), 1)
            })
            .await?;
        Ok(labelled_top_k(&probs, classes, k))
    }

    /// ImageNet softmax probabilities: one row of `labels().len()` values per input.
    pub async fn probabilities(&self, inputs: &[ModelInput]) -> Result<Vec<Vec<f32>>, DeviceError> {
        let probs = match &self.fast {
            Some(fast) => fast.imagenet_probabilities(inputs),
            None => self.read_in_chunks(inputs, |x| self.imagenet(x)).await?,
        };
        Ok(probs
            .chunks_exact(self.labels.len().max(1))
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// What the frozen backbone computes at `stage`, one row of `stage.width()` values per
    /// input, concatenated.
    pub async fn features(
        &self,
        inputs: &[ModelInput],
        stage: FeatureStage,
    ) -> Result<Vec<f32>, DeviceError> {
        if let Some(fast) = &self.fast {
            return Ok(fast.features(inputs, stage));
        }
        self.read_in_chunks(inputs, |x| self.backbone(x, stage))
            .await
    }

    /// A training photo's pooled features, its boundary activations below the last
    /// `unfreeze` blocks (when set) and the ImageNet top-`k`, in one pass; the same rows for
    /// its augmented `views` in that pass too.
    pub async fn embed(
        &self,
        input: &ModelInput,
        views: &[ModelInput],
        unfreeze: Option<usize>,
        k: usize,
    ) -> Result<Embedding, DeviceError> {
        // On the CPU kernels, their classifier's: the same arithmetic for features and answers.
        if let Some(fast) = &self.fast {
            return Ok(fast.embed(input, views, unfreeze, k));
        }
        let batch: Vec<ModelInput> = std::iter::once(input).chain(views).cloned().collect();
        let (pooled, boundary) = match unfreeze {
            Some(k) => {
                let (boundary, pooled) = self.boundary_and_pooled(&batch, k);
                (pooled, Some(boundary))
            }
            None => (self.backbone(&batch, FeatureStage::Pooled), None),
        };
        let plain = pooled.clone().slice([0..1, 0..FEATURE_DIM]);
        let probs = softmax(self.model.logits_from_features(plain), 1);
        let imagenet = labelled_top_k(&read(probs).await?, &self.labels, k)
            .pop()
            .unwrap_or_default();
        let boundary = match boundary {
            Some(b) => {
                let width = b.dims()[1];
                Some((read(b).await?, width))
            }
            None => None,
        };
        Ok(Embedding::from_rows(
            read(pooled).await?,
            boundary,
            imagenet,
        ))
    }

    /// Photos per forward pass on this classifier's device.
    fn device_batch(&self) -> usize {
        if self.device == crate::device::cpu() {
            CPU_BATCH
        } else {
            MAX_DEVICE_BATCH
        }
    }

    /// Runs `pass` on at most [`Self::device_batch`] inputs at a time and reads each result
    /// back, concatenated row-major.
    async fn read_in_chunks(
        &self,
        inputs: &[ModelInput],
        pass: impl Fn(&[ModelInput]) -> Tensor<2>,
    ) -> Result<Vec<f32>, DeviceError> {
        let mut values = Vec::new();
        for chunk in inputs.chunks(self.device_batch()) {
            values.extend(read(pass(chunk)).await?);
        }
        Ok(values)
    }
}

/// A tensor's values, read back asynchronously (any device, wasm too).
async fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, DeviceError> {
    t.into_data_async()
        .await
        .map_err(device_error)?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| DeviceError(format!("unreadable output: {e:?}")))
}

/// Stacks inputs into the network's tensor. `N × [224, 224, 3]` u8 → `[N, 3, 224, 224]` real.
fn to_tensor(inputs: &[ModelInput], scaling: InputScaling, device: &Device) -> Tensor<4> {
    let plane = INPUT_SIZE * INPUT_SIZE;
    let mut values = vec![0.0f32; inputs.len() * INPUT_BYTES];
    for (input, out) in inputs.iter().zip(values.chunks_exact_mut(INPUT_BYTES)) {
        for (pixel, rgb) in input.rgb().chunks_exact(3).enumerate() {
            for (channel, &p) in rgb.iter().enumerate() {
                out[channel * plane + pixel] = scaling.scale * (f32::from(p) - scaling.zero_point);
            }
        }
    }
    let shape = [inputs.len(), 3, INPUT_SIZE, INPUT_SIZE];
    Tensor::from_data(TensorData::new(values, shape), device)
}
