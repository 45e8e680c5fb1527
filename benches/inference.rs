//! Native inference speed: ms per photo at batch 1 and batch 32 on the CPU (and on wgpu when
//! an adapter exists), from decoded 224×224 input and from a JPEG file.
//!
//! `cargo bench --bench inference`; `scripts/bench` runs it interleaved with LiteRT and reads
//! criterion's samples. Needs the model in `www/models/` (`scripts/setup-model`) and `../shared`
//! (or `$AFINAR_SHARED`) for the inputs (the reference `.input.rgb` files: the exact pixels LiteRT is fed too).
//! `AFINAR_BENCH_WGPU=0` skips wgpu. On Afinar's CPU kernels, `head/1` and `finetuned-top/1` are
//! batch 1 with a trained head (ImageNet and the head's classes from one pass), the head alone
//! and with a fine-tuned top of 2 blocks: beside `decoded/1`, what a head costs a photo.

use std::path::PathBuf;
use std::time::Duration;

use afinar::classify::PackedHead;
use afinar::head::{self, HeadConfig, HeadMetadata, TrainedParts};
use afinar::model::kernels::CpuKernels;
use afinar::{Arithmetic, Classifier, DEFAULT_MODEL_FILE, MobileNetV2Weights, ModelInput};
use burn::tensor::Device;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_lite::future::block_on;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the repository, or `$AFINAR_SHARED` (as the tests).
fn shared() -> PathBuf {
    std::env::var_os("AFINAR_SHARED").map_or_else(|| root().join("../shared"), PathBuf::from)
}

fn model_path() -> PathBuf {
    root().join("www/models").join(DEFAULT_MODEL_FILE)
}

fn classifier(device: &Device, kernels: CpuKernels, arithmetic: Arithmetic) -> Classifier {
    let path = model_path();
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup-model", path.display()));
    let weights = MobileNetV2Weights::from_tflite(&bytes).expect("model loads");
    let labels = weights.labels_or(None).expect("labels");
    Classifier::with_cpu_path(&weights, labels, device, kernels, arithmetic)
}

fn jpeg_path() -> PathBuf {
    shared().join("data/flower_photos/daisy/100080576_f52e8ee070_n.jpg")
}

/// The six preprocessed reference photos (224×224×3 uint8), sorted by name.
fn decoded_inputs() -> Vec<ModelInput> {
    let dir = shared().join("models/reference");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".input.rgb"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no .input.rgb files in {}",
        dir.display()
    );
    files
        .iter()
        .map(|f| ModelInput::from_rgb(std::fs::read(f).expect("read")).expect("224×224×3"))
        .collect()
}

/// `batch` inputs, cycling through the reference photos.
fn batch_of(inputs: &[ModelInput], batch: usize) -> Vec<ModelInput> {
    inputs.iter().cycle().take(batch).cloned().collect()
}

fn bench_device(c: &mut Criterion, name: &str, device: &Device, kernels: CpuKernels) {
    let classifier = classifier(device, kernels, Arithmetic::from_env());
    // What the figures measured, for the report (`scripts/bench` names the file).
    if name == "ndarray"
        && let Ok(path) = std::env::var("AFINAR_BENCH_RUNS_ON")
    {
        std::fs::write(path, classifier.runs_on()).expect("writes what runs");
    }
    let decoded = decoded_inputs();
    let jpeg = std::fs::read(jpeg_path()).expect("photo");
    let mut group = c.benchmark_group(format!("inference/{name}"));
    for batch in [1usize, 32] {
        let inputs = batch_of(&decoded, batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("decoded", batch), &inputs, |b, inputs| {
            b.iter(|| block_on(classifier.classify(inputs, 5)))
        });
    }
    group.throughput(Throughput::Elements(1));
    if let Some(fast) = classifier.on_cpu_kernels() {
        for (id, unfrozen) in [("head/1", 0), ("finetuned-top/1", 2)] {
            let head = packed_head(&classifier, unfrozen);
            group.bench_function(id, |b| {
                b.iter(|| fast.classify_with_head(&decoded[0], &head, 5))
            });
        }
    }
    group.bench_function("jpeg/1", |b| {
        b.iter(|| {
            let input = ModelInput::from_image_bytes(&jpeg).expect("decodes");
            block_on(classifier.classify(&[input], 5))
        })
    });
    group.finish();
}

/// A head of 5 classes (and a top of `unfrozen` blocks, the file's own) as the page packs it
/// from its file.
fn packed_head(classifier: &Classifier, unfrozen: usize) -> PackedHead {
    let device = classifier.device();
    let classes: Vec<String> = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
        .map(String::from)
        .to_vec();
    let parts = TrainedParts {
        head: HeadConfig::new(classes.len()).init(device),
        top: (unfrozen > 0).then(|| classifier.model().top(unfrozen)),
    };
    let metadata = HeadMetadata {
        classes,
        base_model_sha256: classifier.model_sha256().to_string(),
        recipe: None,
        split: String::new(),
        preprocessing: String::new(),
        unfrozen_blocks: unfrozen,
        trained: None,
    };
    let file = block_on(head::save(&parts, &metadata)).expect("saves");
    let kernels = classifier.cpu_kernels();
    PackedHead::from_file(&file, classifier.model_sha256(), kernels).expect("packs")
}

fn inference(c: &mut Criterion) {
    // The CPU on Afinar's kernels (the best this CPU runs, or $AFINAR_CPU_KERNELS), and on
    // Burn's own layers: the path before the kernels, kept as an anchor.
    let cpu = afinar::device::cpu();
    bench_device(c, "ndarray", &cpu, CpuKernels::from_env());
    bench_device(c, "ndarray-burn", &cpu, CpuKernels::Burn);
    // The same kernels in float32 over the dequantized weights: the anchor of a quantized
    // file's integer path (the same as `ndarray` where the integers do not run).
    let float = classifier(&cpu, CpuKernels::from_env(), Arithmetic::Float);
    let decoded = decoded_inputs();
    let mut group = c.benchmark_group("inference/ndarray-float");
    for batch in [1usize, 32] {
        let inputs = batch_of(&decoded, batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("decoded", batch), &inputs, |b, inputs| {
            b.iter(|| block_on(float.classify(inputs, 5)))
        });
    }
    group.finish();
    #[cfg(feature = "wgpu")]
    if std::env::var("AFINAR_BENCH_WGPU").as_deref() != Ok("0") {
        match Device::wgpu_options().init() {
            Ok(device) => bench_device(c, "wgpu", &device, CpuKernels::Burn),
            Err(e) => eprintln!("wgpu skipped: {e}"),
        }
    }
}

fn preprocessing(c: &mut Criterion) {
    let jpeg = std::fs::read(jpeg_path()).expect("photo");
    c.bench_function("preprocess/jpeg 320x263", |b| {
        b.iter(|| ModelInput::from_image_bytes(&jpeg))
    });
}

criterion_group! {
    name = benches;
    // Defaults that command-line flags (as `scripts/bench` passes) override.
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(10));
    targets = inference, preprocessing
}
criterion_main!(benches);
