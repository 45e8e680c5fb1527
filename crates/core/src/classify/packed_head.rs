//! A trained head packed for the CPU kernels, read from its file.

use crate::architecture::FEATURE_DIM;
use crate::head::{HeadFileError, HeadWeights};
use crate::kernels::gemm::PackedGemm;
use crate::kernels::{CpuKernels, PackedTop};
use crate::tflite::DenseWeights;

/// A trained head packed for the CPU kernels: its fine-tuned top (if any) and its two dense
/// layers.
#[derive(Debug)]
pub struct PackedHead {
    classes: Vec<String>,
    top: Option<PackedTop>,
    hidden: PackedGemm,
    output: PackedGemm,
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

    /// Its fine-tuned top, if any.
    pub(super) fn top(&self) -> Option<&PackedTop> {
        self.top.as_ref()
    }

    /// Blocks of the backbone its top replaces (0 for a head alone).
    pub fn unfrozen(&self) -> usize {
        self.top.as_ref().map_or(0, PackedTop::unfrozen)
    }

    /// The classes' logits of pooled features: `N × 1280` → `N × classes`.
    pub(super) fn logits(&self, features: &[f32]) -> Vec<f32> {
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
