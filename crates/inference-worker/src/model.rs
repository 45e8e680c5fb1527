//! The model and the user's head, packed for the CPU kernels.

use std::rc::Rc;

use afinar_core::ModelInput;
use afinar_core::augment::TrainingPhoto;
use afinar_core::classify::{CpuClassifier, PackedHead};
use afinar_core::kernels::{Arithmetic, CpuKernels};
use afinar_protocol::{Classification, HeadInfo, ModelInfo, ModelSource, PreparedPhoto};
use afinar_vocabulary::{Backend, RowsNeeded};
use afinar_worker_scope::{PREPARED_TOP_K, prepared_photo};

/// Predictions reported per photo.
const TOP_K: usize = 5;

/// A model that was read and packed, with its file (handed to the training worker as it is).
pub struct Loaded {
    pub classifier: Rc<CpuClassifier>,
    pub file: Rc<Vec<u8>>,
}

/// The user's head: its file (handed to the training worker) and its weights, packed.
pub struct UserHead {
    pub file: Vec<u8>,
    pub packed: Rc<PackedHead>,
}

/// Reads and packs a model file whose sha256 (hex) is `sha256`, for `arithmetic`.
/// `current_labels` names the outputs of a file that carries no label list, when their number
/// agrees.
pub fn load(
    bytes: Vec<u8>,
    sha256: String,
    source: ModelSource,
    arithmetic: Arithmetic,
    current_labels: Option<&[String]>,
    load_ms: impl FnOnce() -> f64,
) -> Result<(Loaded, ModelInfo), String> {
    let fallback = current_labels.map(|labels| labels.join("\n"));
    let classifier = CpuClassifier::read(
        &bytes,
        sha256,
        fallback.as_deref(),
        CpuKernels::best(),
        arithmetic,
    )
    .map_err(|e| e.to_string())?;
    let info = ModelInfo {
        source,
        num_classes: classifier.labels().len(),
        sha256: classifier.model_sha256().to_string(),
        size_bytes: bytes.len() as u64,
        load_ms: load_ms(),
        arithmetic: classifier.arithmetic().describe().into(),
    };
    let loaded = Loaded {
        classifier: Rc::new(classifier),
        file: Rc::new(bytes),
    };
    Ok((loaded, info))
}

/// Reads a head file for `model`, refusing one trained on another base model.
pub fn head(model: &CpuClassifier, file: Vec<u8>) -> Result<(UserHead, HeadInfo), String> {
    let packed = PackedHead::from_file(&file, model.model_sha256(), model.kernels())
        .map_err(|e| format!("This head can't be used: {e}."))?;
    let info = HeadInfo {
        classes: packed.classes().to_vec(),
        unfrozen_blocks: packed.unfrozen(),
    };
    let head = UserHead {
        file,
        packed: Rc::new(packed),
    };
    Ok((head, info))
}

/// Prepares a training photo on the CPU kernels: its features, boundary activations and
/// augmented views, as `rows` asks.
pub fn prepare(
    model: &CpuClassifier,
    bytes: &[u8],
    rows: RowsNeeded,
) -> Result<PreparedPhoto, String> {
    let photo = TrainingPhoto::read(bytes, rows)?;
    let embedding = model.embed(&photo.input, &photo.views, rows.unfreeze, PREPARED_TOP_K);
    Ok(prepared_photo(embedding, &photo))
}

/// Classifies a photo's bytes: ImageNet's top-5 and, with a head, the user's classes, from one
/// backbone pass. `clock` reads the time in milliseconds.
pub fn classify(
    model: &CpuClassifier,
    head: Option<&PackedHead>,
    bytes: &[u8],
    clock: impl Fn() -> f64,
) -> Result<Classification, String> {
    let start = clock();
    let input = ModelInput::from_image_bytes(bytes)
        .map_err(|e| format!("This photo can't be read: {e}."))?;
    let decode_ms = clock() - start;
    let model_start = clock();
    let (top, custom) = match head {
        Some(head) => {
            let answers = model.classify_with_head(&input, head, TOP_K);
            (answers.imagenet, Some(answers.head))
        }
        None => (
            model
                .classify(std::slice::from_ref(&input), TOP_K)
                .pop()
                .unwrap_or_default(),
            None,
        ),
    };
    Ok(Classification {
        top,
        model_ms: clock() - model_start,
        decode_ms,
        thumbnail_jpeg: input.thumbnail_jpeg(),
        backend: Backend::Cpu,
        custom,
        wasm_memory_bytes: afinar_worker_scope::wasm_memory_bytes(),
    })
}
