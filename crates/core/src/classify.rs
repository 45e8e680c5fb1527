//! Photos → ImageNet's and a trained head's probabilities and top-K, on the CPU kernels. With a
//! head, the frozen blocks run once per photo for both answers.

pub use afinar_vocabulary::Prediction;

mod packed_head;

pub use crate::embedding::Embedding;
pub use crate::kernels::Arithmetic;
pub use packed_head::PackedHead;

use crate::architecture::{FEATURE_DIM, FeatureStage, INPUT_SIZE};
use crate::kernels::backbone::channels_first;
use crate::kernels::integer_backbone::IntegerBackbone;
use crate::kernels::{CpuKernels, PackedBackbone};
use crate::preprocess::{INPUT_BYTES, InputScaling, ModelInput};
use crate::tflite::{MobileNetV2Weights, ModelError, QuantizedMobileNetV2, file_labels};

/// The pretrained network with its labels, packed for the CPU kernels.
#[derive(Debug)]
pub struct CpuClassifier {
    frozen: Frozen,
    /// Why the file's integers do not run where they were asked for.
    integer_refused: Option<String>,
    labels: Vec<String>,
    scaling: InputScaling,
    sha256: String,
}

/// What runs the pretrained network: one arithmetic, packed once. (One per classifier: the
/// variants' sizes do not matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Frozen {
    Float(PackedBackbone),
    /// The file's own integers: its activations at a fine-tuned top's boundary, the pooled
    /// features and ImageNet's answers (what trains, and a fine-tuned top, stay float32). Its
    /// float32 weights are neither dequantized nor packed.
    Integer(IntegerBackbone),
}

/// What one photo is, for ImageNet and for a trained head.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub imagenet: Vec<Prediction>,
    pub head: Vec<Prediction>,
}

impl CpuClassifier {
    /// Reads a `.tflite` file. `fallback_labels` is the text of a label list for files that do
    /// not carry one.
    pub fn from_tflite(
        bytes: &[u8],
        fallback_labels: Option<&str>,
        kernels: CpuKernels,
    ) -> Result<Self, ModelError> {
        let weights = MobileNetV2Weights::from_tflite(bytes)?;
        let labels = weights.labels_or(fallback_labels)?;
        Self::new(&weights, labels, kernels)
    }

    /// Packs `weights` for `kernels` (a path this CPU cannot run gets the portable kernels),
    /// in the arithmetic [`Arithmetic::from_env`] names. `labels` must have one entry per
    /// output.
    pub fn new(
        weights: &MobileNetV2Weights,
        labels: Vec<String>,
        kernels: CpuKernels,
    ) -> Result<Self, ModelError> {
        Self::with_arithmetic(weights, labels, kernels, Arithmetic::from_env())
    }

    /// [`Self::new`] in the given arithmetic.
    pub fn with_arithmetic(
        weights: &MobileNetV2Weights,
        labels: Vec<String>,
        kernels: CpuKernels,
        arithmetic: Arithmetic,
    ) -> Result<Self, ModelError> {
        let integer = match (arithmetic.wants_integers(kernels), &weights.quantized) {
            (false, _) => Ok(None),
            (true, Ok(q)) => pack_integers(q, kernels).map(Some),
            (true, Err(why)) => Err(why.clone()),
        };
        let (frozen, refused) = match integer {
            Ok(Some(integer)) => (Frozen::Integer(integer), None),
            Ok(None) => (Frozen::Float(pack_float(weights, kernels)?), None),
            Err(why) => (Frozen::Float(pack_float(weights, kernels)?), Some(why)),
        };
        let classifier = Self {
            frozen,
            integer_refused: refused.filter(|_| arithmetic == Arithmetic::Integer),
            labels,
            scaling: weights.input_scaling,
            sha256: weights.sha256.clone(),
        };
        classifier.check_labels()
    }

    /// Reads and packs a `.tflite` file whose sha256 (lower-case hex) is `sha256`, for
    /// `kernels` in `arithmetic`; `fallback_labels` as for [`Self::from_tflite`]. Where the
    /// file's integers run, its float32 weights are neither dequantized nor packed (the page's
    /// worker starts sooner and keeps less memory).
    pub fn read(
        bytes: &[u8],
        sha256: String,
        fallback_labels: Option<&str>,
        kernels: CpuKernels,
        arithmetic: Arithmetic,
    ) -> Result<Self, ModelError> {
        let mut refused = None;
        if arithmetic.wants_integers(kernels) {
            let integers = QuantizedMobileNetV2::from_tflite(bytes)
                .map_err(|e| e.to_string())
                .and_then(|q| Ok((pack_integers(&q, kernels)?, q.input_scaling)));
            match integers {
                Ok((integer, scaling)) => {
                    let classes = integer.outputs();
                    let classifier = Self {
                        frozen: Frozen::Integer(integer),
                        integer_refused: None,
                        labels: file_labels(bytes, classes, fallback_labels)?,
                        scaling,
                        sha256,
                    };
                    return classifier.check_labels();
                }
                Err(why) => refused = Some(why),
            }
        }
        let weights = MobileNetV2Weights::read(bytes, sha256, false)?;
        let labels = weights.labels_or(fallback_labels)?;
        let mut classifier = Self::with_arithmetic(&weights, labels, kernels, Arithmetic::Float)?;
        classifier.integer_refused = refused.filter(|_| arithmetic == Arithmetic::Integer);
        Ok(classifier)
    }

    /// `self`, where it has one label per output.
    fn check_labels(self) -> Result<Self, ModelError> {
        let classes = match &self.frozen {
            Frozen::Float(backbone) => backbone.outputs(),
            Frozen::Integer(integer) => integer.outputs(),
        };
        match self.labels.len() == classes {
            true => Ok(self),
            false => Err(ModelError::LabelCount {
                classes,
                labels: self.labels.len(),
            }),
        }
    }

    pub fn kernels(&self) -> CpuKernels {
        match &self.frozen {
            Frozen::Float(backbone) => backbone.kernels(),
            Frozen::Integer(integer) => integer.kernels(),
        }
    }

    /// Why the file's integers do not run, where they were asked for and do not.
    pub fn integer_refused(&self) -> Option<&str> {
        self.integer_refused.as_deref()
    }

    /// The arithmetic the frozen backbone's pooled features and ImageNet's answers run in:
    /// [`Arithmetic::Integer`] or [`Arithmetic::Float`].
    pub fn arithmetic(&self) -> Arithmetic {
        match self.frozen {
            Frozen::Integer(_) => Arithmetic::Integer,
            Frozen::Float(_) => Arithmetic::Float,
        }
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// sha256 of the `.tflite` file the weights came from.
    pub fn model_sha256(&self) -> &str {
        &self.sha256
    }

    pub fn input_scaling(&self) -> InputScaling {
        self.scaling
    }

    /// Takes one made-up photo down every stage of a real one's path (JPEG decoding, crop and
    /// resize, the backbone and classifier, the thumbnail's JPEG encoding) and drops the
    /// answers. In the browser, wasm starts on a baseline compiler and a function gets optimized
    /// code only between its calls: a page that warms up while its user picks a photo answers
    /// that photo sooner.
    pub fn warm_up(&self) {
        let (width, height) = (INPUT_SIZE as u32 + 96, INPUT_SIZE as u32 + 32);
        let photo = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let jpeg = ModelInput::from_rgb_image(&photo).thumbnail_jpeg();
        if let Ok(input) = ModelInput::from_image_bytes(&jpeg) {
            self.classify(std::slice::from_ref(&input), 1);
        }
    }

    /// What a training photo needs, in one pass over it and its augmented `views`: pooled
    /// features, the activations below the last `unfreeze` blocks where asked for, and
    /// ImageNet's top-`k` for the photo itself.
    pub fn embed(
        &self,
        input: &ModelInput,
        views: &[ModelInput],
        unfreeze: Option<usize>,
        k: usize,
    ) -> Embedding {
        let batch: Vec<ModelInput> = std::iter::once(input).chain(views).cloned().collect();
        let width = unfreeze.map(|blocks| FeatureStage::Boundary(blocks).width());
        let (pooled, boundary, mut probs) = match &self.frozen {
            Frozen::Integer(integer) => {
                let rows = integer_rows(integer, &batch, unfreeze, true);
                let mut logits = rows.logits;
                logits.truncate(self.labels.len());
                let boundary = width.map(|width| (rows.boundary, width));
                (rows.pooled, boundary, logits)
            }
            Frozen::Float(backbone) => {
                let (boundary, pooled) = match unfreeze {
                    Some(blocks) => {
                        let (boundary, pooled) = self.boundary_and_pooled(&batch, blocks);
                        (Some(boundary), pooled)
                    }
                    None => (None, self.features(&batch, FeatureStage::Pooled)),
                };
                let probs = backbone.logits(&pooled[..FEATURE_DIM.min(pooled.len())]);
                (pooled, boundary.zip(width), probs)
            }
        };
        softmax_rows(&mut probs, self.labels.len());
        let imagenet = labelled_top_k(&probs, &self.labels, k)
            .pop()
            .unwrap_or_default();
        Embedding::from_rows(pooled, boundary, imagenet)
    }

    /// ImageNet top-`k` predictions per input.
    pub fn classify(&self, inputs: &[ModelInput], k: usize) -> Vec<Vec<Prediction>> {
        let probs = self.imagenet_probabilities(inputs);
        labelled_top_k(&probs, &self.labels, k)
    }

    /// ImageNet softmax probabilities, `labels().len()` values per input, concatenated.
    pub fn imagenet_probabilities(&self, inputs: &[ModelInput]) -> Vec<f32> {
        let mut logits = match &self.frozen {
            Frozen::Integer(integer) => integer_rows(integer, inputs, None, true).logits,
            Frozen::Float(backbone) => {
                backbone.logits(&self.features(inputs, FeatureStage::Pooled))
            }
        };
        softmax_rows(&mut logits, self.labels.len());
        logits
    }

    /// ImageNet's top-`k` and the head's top-`k` for one photo, the frozen blocks run once.
    pub fn classify_with_head(&self, input: &ModelInput, head: &PackedHead, k: usize) -> Answers {
        let mut pooled = Vec::with_capacity(FEATURE_DIM);
        let mut head_pooled = Vec::with_capacity(FEATURE_DIM);
        let mut imagenet = Vec::new();
        match (&self.frozen, head.top()) {
            (Frozen::Integer(integer), None) => {
                let out = integer.run(input.rgb());
                pooled = out.pooled;
                imagenet = integer_logits(integer, &out.logits);
            }
            // The frozen blocks in the file's integers, the fine-tuned top in float32 on their
            // real activations, the file's own top in integers: one pass below the boundary.
            (Frozen::Integer(integer), Some(top)) => {
                let (at, out) = integer.run_to_boundary(input.rgb(), top.unfrozen(), true);
                top.run_from(&at.values, at.side, at.channels, &mut head_pooled);
                if let Some(out) = out {
                    imagenet = integer_logits(integer, &out.logits);
                }
            }
            (Frozen::Float(backbone), top) => {
                self.each_scaled(std::slice::from_ref(input), |image| match top {
                    Some(top) => backbone.run_with_top(image, top, &mut pooled, &mut head_pooled),
                    None => backbone.run(image, FeatureStage::Pooled, &mut pooled),
                });
                imagenet = backbone.logits(&pooled);
            }
        }
        let features = if head.top().is_some() {
            &head_pooled
        } else {
            &pooled
        };
        let mut head_probs = head.logits(features);
        softmax_rows(&mut head_probs, head.classes().len());
        softmax_rows(&mut imagenet, self.labels.len());
        let first = |mut rows: Vec<Vec<Prediction>>| rows.pop().unwrap_or_default();
        Answers {
            imagenet: first(labelled_top_k(&imagenet, &self.labels, k)),
            head: first(labelled_top_k(
                &head_probs,
                head.classes(),
                k.min(head.classes().len()),
            )),
        }
    }

    /// What the frozen backbone computes at `stage`, `stage.width()` values per input,
    /// concatenated.
    pub fn features(&self, inputs: &[ModelInput], stage: FeatureStage) -> Vec<f32> {
        match (&self.frozen, stage) {
            (Frozen::Integer(integer), FeatureStage::Pooled) => {
                integer_rows(integer, inputs, None, true).pooled
            }
            (Frozen::Integer(integer), FeatureStage::Boundary(k)) => {
                integer_rows(integer, inputs, Some(k), false).boundary
            }
            (Frozen::Float(backbone), _) => {
                let mut rows = Vec::with_capacity(inputs.len() * stage.width());
                self.each_scaled(inputs, |image| backbone.run(image, stage, &mut rows));
                rows
            }
        }
    }

    /// The boundary activations below the last `k` blocks and the pooled features, from one
    /// pass per input: `(N × boundary width, N × 1280)`.
    pub fn boundary_and_pooled(&self, inputs: &[ModelInput], k: usize) -> (Vec<f32>, Vec<f32>) {
        match &self.frozen {
            Frozen::Integer(integer) => {
                let rows = integer_rows(integer, inputs, Some(k), true);
                (rows.boundary, rows.pooled)
            }
            Frozen::Float(backbone) => {
                let mut boundary =
                    Vec::with_capacity(inputs.len() * FeatureStage::Boundary(k).width());
                let mut pooled = Vec::with_capacity(inputs.len() * FEATURE_DIM);
                self.each_scaled(inputs, |image| {
                    backbone.run_boundary_and_pooled(image, k, &mut boundary, &mut pooled);
                });
                (boundary, pooled)
            }
        }
    }

    /// Calls `f` with each input scaled for the model (`224 × 224 × 3`, NHWC), one buffer
    /// reused for all.
    fn each_scaled(&self, inputs: &[ModelInput], mut f: impl FnMut(&[f32])) {
        let mut image = vec![0.0; INPUT_BYTES];
        for input in inputs {
            input.scale_into(self.scaling, &mut image);
            f(&image);
        }
    }
}

/// Why the integer kernels refuse a file's integers.
const SCALES_REFUSED: &str = "its scales do not fit the integer kernels";

fn pack_integers(q: &QuantizedMobileNetV2, kernels: CpuKernels) -> Result<IntegerBackbone, String> {
    IntegerBackbone::pack(q, kernels).ok_or_else(|| SCALES_REFUSED.to_string())
}

fn pack_float(
    weights: &MobileNetV2Weights,
    kernels: CpuKernels,
) -> Result<PackedBackbone, ModelError> {
    PackedBackbone::pack(weights, kernels).ok_or_else(|| {
        ModelError::WrongArchitecture("its convolutions are not MobileNetV2's".into())
    })
}

/// What integer passes give for photos, concatenated: the real activations below the last
/// `unfreeze` blocks in Burn's `C·H·W` order where asked for, and where `whole` the pooled
/// features and ImageNet's logits.
#[derive(Default)]
struct IntegerRows {
    boundary: Vec<f32>,
    pooled: Vec<f32>,
    logits: Vec<f32>,
}

fn integer_rows(
    integer: &IntegerBackbone,
    inputs: &[ModelInput],
    unfreeze: Option<usize>,
    whole: bool,
) -> IntegerRows {
    let mut rows = IntegerRows::default();
    for input in inputs {
        let out = match unfreeze {
            Some(k) => {
                let (at, out) = integer.run_to_boundary(input.rgb(), k, whole);
                channels_first(&at.values, at.channels, &mut rows.boundary);
                out
            }
            None => Some(integer.run(input.rgb())),
        };
        if let Some(out) = out {
            rows.pooled.extend(out.pooled);
            rows.logits.extend(integer_logits(integer, &out.logits));
        }
    }
    rows
}

/// The real values of an integer pass's uint8 logits.
fn integer_logits(integer: &IntegerBackbone, logits: &[u8]) -> Vec<f32> {
    logits.iter().map(|&q| integer.logit(q)).collect()
}

/// Softmax of each row of `width` values, in place (max subtracted first, so no overflow).
pub fn softmax_rows(values: &mut [f32], width: usize) {
    for row in values.chunks_exact_mut(width.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// Labelled top-`k` of each row of `probs` (`[N, labels.len()]` row-major).
pub fn labelled_top_k(probs: &[f32], labels: &[String], k: usize) -> Vec<Vec<Prediction>> {
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

/// Indices and values of the `k` largest values, largest first; ties go to the lower index.
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.into_iter().take(k).map(|i| (i, values[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::{softmax_rows, top_k};

    #[test]
    fn top_k_orders_by_value_then_index() {
        assert_eq!(
            top_k(&[0.1, 0.5, 0.2, 0.5], 3),
            [(1, 0.5), (3, 0.5), (2, 0.2)]
        );
        assert_eq!(top_k(&[0.1], 5), [(0, 0.1)]);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_keep_order_without_overflow() {
        let mut values = [1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0];
        softmax_rows(&mut values, 3);
        for row in values.chunks_exact(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
        }
        assert!(values[0] < values[1] && values[1] < values[2]);
        assert_eq!(values[3], values[4]);
        assert!(values[5] < 1e-30);
    }
}
