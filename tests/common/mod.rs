//! Paths and reference data shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod tflite_graph;

use std::path::{Path, PathBuf};

use afinar::ModelInput;
use serde::Deserialize;

/// `shared/` beside the repository (or `$AFINAR_SHARED`): models, references, photos.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("AFINAR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("models/README.md").is_file(),
        "the tests need shared/ (models, references, photos) at {}; set AFINAR_SHARED",
        dir.display()
    );
    dir
}

pub fn models_dir() -> PathBuf {
    shared_dir().join("models")
}

pub const V1_QUANT: &str = "mobilenet_v2_1.0_224_quant.tflite";
pub const TF2_PTQ: &str = "tf2_mobilenet_v2_1.0_224_ptq.tflite";

pub fn model_bytes(name: &str) -> Vec<u8> {
    let path = models_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// One `shared/models/reference/*.json` record (the fields the tests use).
#[derive(Debug, Deserialize)]
pub struct Reference {
    /// Path of the source image, relative to `shared/`.
    pub image: String,
    /// Path of the exact preprocessed input, relative to `shared/`.
    pub input_rgb: String,
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
    pub features: Vec<f32>,
    pub top5: Vec<(usize, String, f32)>,
    pub top5_litert: Vec<(usize, String, f32)>,
}

impl Reference {
    pub fn input(&self) -> ModelInput {
        let bytes = std::fs::read(shared_dir().join(&self.input_rgb)).expect("reference input");
        ModelInput::from_rgb(bytes).expect("224x224x3 reference input")
    }

    pub fn image_path(&self) -> PathBuf {
        shared_dir().join(&self.image)
    }

    pub fn is_jpeg(&self) -> bool {
        self.image.ends_with(".jpg")
    }

    pub fn top1(&self) -> usize {
        self.top5[0].0
    }
}

/// Every reference record, by name, sorted.
pub fn references() -> Vec<(String, Reference)> {
    let dir = models_dir().join("reference");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("reference dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".layers.json")
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 8,
        "expected the 8 reference records in {}",
        dir.display()
    );
    names
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&p).expect("reference json");
            (
                name,
                serde_json::from_str(&text).expect("reference json fields"),
            )
        })
        .collect()
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A check that needs a tool this machine may lack (`AFINAR_REQUIRE_<TOOL>` names it, e.g.
/// `LITERT`, `WGPU`, `AVX512`): where that variable is set, or `CI` is set and `in_ci` says CI
/// always has the tool, its absence fails the test; elsewhere the test goes on and says
/// `SKIPPED` loudly, on stdout and stderr.
pub fn skip_unless_required(tool: &str, in_ci: bool, why: &str) {
    let variable = format!("AFINAR_REQUIRE_{tool}");
    let required = std::env::var_os(&variable).is_some_and(|v| !v.is_empty() && v != "0")
        || (in_ci && std::env::var_os("CI").is_some_and(|v| !v.is_empty()));
    assert!(
        !required,
        "{tool} is required here ({variable} or CI is set), but {why}"
    );
    println!("SKIPPED {tool}: {why}");
    eprintln!("SKIPPED {tool}: {why} (set {variable}=1 to make this a failure)");
}

/// A head file that says it is Afinar's (format and metadata), with these float32 tensors, all
/// zeros: for files that must be refused by their shapes and counts, built here rather than
/// kept as binaries.
pub fn crafted_head(
    classes: &[&str],
    tensors: &[(&str, Vec<usize>)],
    unfrozen_blocks: usize,
) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape)| {
            let bytes = vec![0u8; shape.iter().product::<usize>() * 4];
            (name.to_string(), shape.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes).expect("view");
            (name.clone(), view)
        })
        .collect();
    let metadata = serde_json::json!({
        "classes": classes, "base_model_sha256": "crafted", "preprocessing": "crafted",
        "unfrozen_blocks": unfrozen_blocks,
    });
    let info = std::collections::HashMap::from([
        ("format".to_string(), "afinar-head-1".to_string()),
        ("metadata".to_string(), metadata.to_string()),
    ]);
    safetensors::serialize(views, Some(info)).expect("serializes")
}
