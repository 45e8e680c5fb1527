//! Photos → ImageNet's and a trained head's probabilities and top-K, on the CPU kernels. With a
//! head, the frozen blocks run once per photo for both answers.

pub use afinar_vocabulary::Prediction;

use crate::architecture::{FEATURE_DIM, FeatureStage, INPUT_SIZE};
use crate::head::{HeadFileError, HeadWeights};
use crate::kernels::backbone::channels_first;
use crate::kernels::gemm::PackedGemm;
use crate::kernels::integer_backbone::IntegerBackbone;
use crate::kernels::{CpuKernels, PackedBackbone, PackedTop};
use crate::preprocess::{INPUT_BYTES, InputScaling, ModelInput};
use crate::tflite::{DenseWeights, MobileNetV2Weights, ModelError};

/// The arithmetic of a quantized file's frozen part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arithmetic {
    /// The file's own 8-bit integers where the kernels run them faster than float32
    /// ([`CpuKernels::integer_is_faster`]), else float32.
    Auto,
    /// The file's 8-bit integers on any path (a float32 file stays float32).
    Integer,
    /// Float32 over the dequantized weights.
    Float,
}

impl Arithmetic {
    pub const ALL: [Self; 3] = [Self::Auto, Self::Integer, Self::Float];

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Integer => "integer",
            Self::Float => "float",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// `AFINAR_ARITHMETIC` (`auto`, `integer`, `float`) where set, else [`Self::Auto`].
    pub fn from_env() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(name) = std::env::var("AFINAR_ARITHMETIC")
            && let Some(arithmetic) = Self::from_name(&name)
        {
            return arithmetic;
        }
        Self::Auto
    }
}

/// The pretrained network with its labels, packed for the CPU kernels.
#[derive(Debug)]
pub struct CpuClassifier {
    backbone: PackedBackbone,
    /// The file's own integers, where they run the pooled features and ImageNet's answers
    /// (a fine-tuned top and its boundary stay float32).
    integer: Option<IntegerBackbone>,
    labels: Vec<String>,
    scaling: InputScaling,
    sha256: String,
}

/// A trained head packed for the CPU kernels: its fine-tuned top (if any) and its two dense
/// layers.
#[derive(Debug)]
pub struct PackedHead {
    classes: Vec<String>,
    top: Option<PackedTop>,
    hidden: PackedGemm,
    output: PackedGemm,
}

/// What one photo is, for ImageNet and for a trained head.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub imagenet: Vec<Prediction>,
    pub head: Vec<Prediction>,
}

/// What a training photo needs, computed in one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Pooled features (1280 values).
    pub pooled: Vec<f32>,
    /// Activations below the last K blocks, when asked for.
    pub boundary: Option<Vec<f32>>,
    /// Pooled features of the photo's augmented views, one row per view.
    pub augmented: Vec<f32>,
    /// The views' activations below the last K blocks, when asked for.
    pub augmented_boundary: Option<Vec<f32>>,
    /// What the ImageNet classifier alone says: its top predictions.
    pub imagenet: Vec<Prediction>,
}

impl Embedding {
    /// Splits a pass over the photo and its views (the photo's rows first): `pooled` holds
    /// [`FEATURE_DIM`] values per input, `boundary` (when asked for) `width` values per input.
    pub fn from_rows(
        mut pooled: Vec<f32>,
        boundary: Option<(Vec<f32>, usize)>,
        imagenet: Vec<Prediction>,
    ) -> Self {
        let augmented = pooled.split_off(FEATURE_DIM.min(pooled.len()));
        let (boundary, augmented_boundary) = match boundary {
            Some((mut rows, width)) => {
                let views = rows.split_off(width.min(rows.len()));
                (Some(rows), Some(views))
            }
            None => (None, None),
        };
        Self {
            pooled,
            boundary,
            augmented,
            augmented_boundary,
            imagenet,
        }
    }
}

/// A dense layer (`[in, out]` weights) as a GEMM.
fn dense(layer: &DenseWeights, kernels: CpuKernels) -> PackedGemm {
    let outputs = layer.outputs;
    PackedGemm::pack(
        layer.inputs,
        outputs,
        |kk, j| layer.weight[kk * outputs + j],
        &layer.bias,
        kernels,
    )
}

impl PackedHead {
    /// Packs a head file's weights (a fine-tuned top must have MobileNetV2's shapes, which
    /// [`HeadWeights::read`] has checked).
    pub fn pack(weights: &HeadWeights, kernels: CpuKernels) -> Result<Self, HeadFileError> {
        let top = match weights.unfrozen_blocks {
            0 => None,
            unfrozen => Some(PackedTop::pack(unfrozen, &weights.top, kernels).ok_or_else(
                || HeadFileError::Unreadable("its fine-tuned top is not MobileNetV2's".into()),
            )?),
        };
        Ok(Self {
            classes: weights.classes.clone(),
            top,
            hidden: dense(&weights.hidden, kernels),
            output: dense(&weights.output, kernels),
        })
    }

    /// Reads and packs a head file, refusing one trained on another base model than
    /// `base_model_sha256`.
    pub fn from_file(
        bytes: &[u8],
        base_model_sha256: &str,
        kernels: CpuKernels,
    ) -> Result<Self, HeadFileError> {
        Self::pack(&HeadWeights::read(bytes, Some(base_model_sha256))?, kernels)
    }

    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Blocks of the backbone its top replaces (0 for a head alone).
    pub fn unfrozen(&self) -> usize {
        self.top.as_ref().map_or(0, PackedTop::unfrozen)
    }

    /// The classes' logits of pooled features: `N × 1280` → `N × classes`.
    fn logits(&self, features: &[f32]) -> Vec<f32> {
        let rows = features.len() / FEATURE_DIM;
        let mut hidden = vec![0.0; rows * self.hidden.n];
        self.hidden.run(features, &mut hidden, None, false);
        for h in &mut hidden {
            *h = h.max(0.0);
        }
        let mut logits = vec![0.0; rows * self.output.n];
        self.output.run(&hidden, &mut logits, None, false);
        logits
    }
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
        let integer = match arithmetic {
            Arithmetic::Float => None,
            Arithmetic::Auto if !kernels.runnable().integer_is_faster() => None,
            Arithmetic::Auto | Arithmetic::Integer => weights
                .quantized
                .as_deref()
                .and_then(|q| IntegerBackbone::pack(q, kernels)),
        };
        let backbone = PackedBackbone::pack(weights, kernels).ok_or_else(|| {
            ModelError::WrongArchitecture("its convolutions are not MobileNetV2's".into())
        })?;
        if labels.len() != backbone.outputs() {
            return Err(ModelError::LabelCount {
                classes: backbone.outputs(),
                labels: labels.len(),
            });
        }
        Ok(Self {
            backbone,
            integer,
            labels,
            scaling: weights.input_scaling,
            sha256: weights.sha256.clone(),
        })
    }

    pub fn kernels(&self) -> CpuKernels {
        self.backbone.kernels()
    }

    /// The arithmetic the frozen backbone's pooled features and ImageNet's answers run in:
    /// [`Arithmetic::Integer`] or [`Arithmetic::Float`].
    pub fn arithmetic(&self) -> Arithmetic {
        match self.integer {
            Some(_) => Arithmetic::Integer,
            None => Arithmetic::Float,
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
        let (pooled, boundary, mut probs) = match (unfreeze, &self.integer) {
            (Some(blocks), Some(integer)) => {
                let width = FeatureStage::Boundary(blocks).width();
                let mut boundary = Vec::with_capacity(batch.len() * width);
                let mut pooled = Vec::with_capacity(batch.len() * FEATURE_DIM);
                let mut probs = Vec::new();
                for (i, input) in batch.iter().enumerate() {
                    let (at, out) = integer.run_to_boundary(input.rgb(), blocks, true);
                    channels_first(&at.values, at.channels, &mut boundary);
                    if let Some(out) = out {
                        pooled.extend(out.pooled);
                        if i == 0 {
                            probs = integer_logits(integer, &out.logits);
                        }
                    }
                }
                (pooled, Some((boundary, width)), probs)
            }
            (Some(blocks), None) => {
                let (boundary, pooled) = self.boundary_and_pooled(&batch, blocks);
                let probs = self
                    .backbone
                    .logits(&pooled[..FEATURE_DIM.min(pooled.len())]);
                let width = FeatureStage::Boundary(blocks).width();
                (pooled, Some((boundary, width)), probs)
            }
            (None, Some(integer)) => {
                let mut pooled = Vec::with_capacity(batch.len() * FEATURE_DIM);
                let mut probs = Vec::new();
                for (i, input) in batch.iter().enumerate() {
                    let out = integer.run(input.rgb());
                    pooled.extend(out.pooled);
                    if i == 0 {
                        probs = integer_logits(integer, &out.logits);
                    }
                }
                (pooled, None, probs)
            }
            (None, None) => {
                let pooled = self.features(&batch, FeatureStage::Pooled);
                let probs = self
                    .backbone
                    .logits(&pooled[..FEATURE_DIM.min(pooled.len())]);
                (pooled, None, probs)
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
        let mut logits = match &self.integer {
            Some(integer) => inputs
                .iter()
                .flat_map(|input| integer_logits(integer, &integer.run(input.rgb()).logits))
                .collect(),
            None => self
                .backbone
                .logits(&self.features(inputs, FeatureStage::Pooled)),
        };
        softmax_rows(&mut logits, self.labels.len());
        logits
    }

    /// ImageNet's top-`k` and the head's top-`k` for one photo, the frozen blocks run once.
    pub fn classify_with_head(&self, input: &ModelInput, head: &PackedHead, k: usize) -> Answers {
        let mut pooled = Vec::with_capacity(FEATURE_DIM);
        let mut head_pooled = Vec::with_capacity(FEATURE_DIM);
        let mut integer_answer = None;
        match (&self.integer, &head.top) {
            (Some(integer), None) => {
                let out = integer.run(input.rgb());
                pooled = out.pooled;
                integer_answer = Some(integer_logits(integer, &out.logits));
            }
            // The frozen blocks in the file's integers, the fine-tuned top in float32 on their
            // real activations, the file's own top in integers: one pass below the boundary.
            (Some(integer), Some(top)) => {
                let (at, out) = integer.run_to_boundary(input.rgb(), top.unfrozen(), true);
                self.backbone
                    .run_top_from(&at.values, at.side, at.channels, top, &mut head_pooled);
                if let Some(out) = out {
                    pooled = out.pooled;
                    integer_answer = Some(integer_logits(integer, &out.logits));
                }
            }
            _ => self.each_scaled(std::slice::from_ref(input), |image| match &head.top {
                Some(top) => self
                    .backbone
                    .run_with_top(image, top, &mut pooled, &mut head_pooled),
                None => self.backbone.run(image, FeatureStage::Pooled, &mut pooled),
            }),
        }
        let features = if head.top.is_some() {
            &head_pooled
        } else {
            &pooled
        };
        let mut head_probs = head.logits(features);
        softmax_rows(&mut head_probs, head.classes.len());
        let mut imagenet = integer_answer.unwrap_or_else(|| self.backbone.logits(&pooled));
        softmax_rows(&mut imagenet, self.labels.len());
        let first = |mut rows: Vec<Vec<Prediction>>| rows.pop().unwrap_or_default();
        Answers {
            imagenet: first(labelled_top_k(&imagenet, &self.labels, k)),
            head: first(labelled_top_k(
                &head_probs,
                &head.classes,
                k.min(head.classes.len()),
            )),
        }
    }

    /// What the frozen backbone computes at `stage`, `stage.width()` values per input,
    /// concatenated.
    pub fn features(&self, inputs: &[ModelInput], stage: FeatureStage) -> Vec<f32> {
        let mut rows = Vec::with_capacity(inputs.len() * stage.width());
        match (&self.integer, stage) {
            (Some(integer), FeatureStage::Pooled) => {
                for input in inputs {
                    rows.extend(integer.run(input.rgb()).pooled);
                }
            }
            (Some(integer), FeatureStage::Boundary(k)) => {
                for input in inputs {
                    let (at, _) = integer.run_to_boundary(input.rgb(), k, false);
                    channels_first(&at.values, at.channels, &mut rows);
                }
            }
            _ => self.each_scaled(inputs, |image| self.backbone.run(image, stage, &mut rows)),
        }
        rows
    }

    /// The boundary activations below the last `k` blocks and the pooled features, from one
    /// pass per input: `(N × boundary width, N × 1280)`.
    pub fn boundary_and_pooled(&self, inputs: &[ModelInput], k: usize) -> (Vec<f32>, Vec<f32>) {
        let mut boundary = Vec::with_capacity(inputs.len() * FeatureStage::Boundary(k).width());
        let mut pooled = Vec::with_capacity(inputs.len() * FEATURE_DIM);
        match &self.integer {
            Some(integer) => {
                for input in inputs {
                    let (at, out) = integer.run_to_boundary(input.rgb(), k, true);
                    channels_first(&at.values, at.channels, &mut boundary);
                    pooled.extend(out.map(|o| o.pooled).unwrap_or_default());
                }
            }
            None => self.each_scaled(inputs, |image| {
                self.backbone
                    .run_boundary_and_pooled(image, k, &mut boundary, &mut pooled);
            }),
        }
        (boundary, pooled)
    }

    /// ImageNet logits of pooled features (`N × 1280` → `N × outputs`).
    pub fn logits(&self, features: &[f32]) -> Vec<f32> {
        self.backbone.logits(features)
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
