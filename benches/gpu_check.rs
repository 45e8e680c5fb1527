//! One look at a GPU: native wgpu over Vulkan beside the CPU, in a few minutes. Prints the
//! adapter, ms/photo for ImageNet classification at batch 1 and 32, the first pass on wgpu
//! (shader compilation) apart from the warm ones, and one training step (the head, and the
//! fine-tuning stage's last blocks) on each device.
//!
//! `scripts/gpu-check` builds and runs it (`cargo bench --bench gpu_check`). Reads the model and
//! the reference inputs from `$AFINAR_SHARED` (default `../shared`): `models/<model>.tflite`
//! and `models/reference/*.input.rgb`. `GPU_CHECK_QUICK=1` repeats each figure fewer times (a
//! smoke run on a software adapter).

use std::path::PathBuf;
use std::process::exit;
use std::time::Instant;

use afinar::model::kernels::CpuKernels;
use afinar::train::{LabelledFeatures, finetune, train_head};
use afinar::{
    Classifier, DEFAULT_MODEL_FILE, FeatureStage, FineTuneConfig, MobileNetV2Weights, ModelInput,
    Recipe,
};
use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::wgpu::wgpu::DeviceType;
use futures_lite::future::block_on;

/// Photos in the large batch and rows in a training step (the recipe's batch size).
const BATCH: usize = 32;
/// Optimizer steps per timed training call, so the head's set-up and read-back weigh little.
const STEPS: usize = 4;
/// Classes of the timed head: one per reference photo.
const CLASSES: usize = 6;

/// `$AFINAR_SHARED`, else `../shared` beside the repository (as the tests and benches).
fn shared() -> PathBuf {
    std::env::var_os("AFINAR_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"),
        PathBuf::from,
    )
}

/// The reference photos, preprocessed (224×224×3), cycled to `BATCH`; their labels.
fn photos() -> (Vec<ModelInput>, Vec<usize>) {
    let dir = shared().join("models/reference");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; set AFINAR_SHARED", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".input.rgb"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .input.rgb in {}", dir.display());
    let inputs: Vec<ModelInput> = files
        .iter()
        .map(|f| ModelInput::from_rgb(std::fs::read(f).expect("read")).expect("224×224×3"))
        .collect();
    let photos = inputs.iter().cycle().take(BATCH).cloned().collect();
    let labels = (0..BATCH).map(|i| i % files.len() % CLASSES).collect();
    (photos, labels)
}

/// The CPU's model name, as /proc/cpuinfo gives it.
fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown CPU".into(), |s| s.trim().to_string())
}

/// Milliseconds of one call of `f`.
fn once(f: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1000.0
}

/// The first call's milliseconds (compilation included) and the median of `reps` more.
fn timed(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    let first = once(&mut f);
    let mut ms: Vec<f64> = (0..reps.max(1)).map(|_| once(&mut f)).collect();
    ms.sort_by(f64::total_cmp);
    (first, ms[ms.len() / 2])
}

/// What one device measured, in milliseconds; `top1` is the large batch's top class per photo.
struct Figures {
    first_1: f64,
    photo_1: f64,
    first_32: f64,
    photo_32: f64,
    first_head: f64,
    head_step: f64,
    first_tune: f64,
    tune_step: f64,
    top1: Vec<usize>,
}

/// Cached rows the training steps run on: pooled features and the boundary below the last
/// `unfreeze` blocks, repeated to `STEPS` batches.
struct Rows {
    pooled: Vec<f32>,
    boundary: Vec<f32>,
    labels: Vec<usize>,
    unfreeze: usize,
}

fn measure(classifier: &Classifier, photos: &[ModelInput], rows: &Rows, reps: usize) -> Figures {
    let device = classifier.device();
    let classify = |inputs: &[ModelInput]| block_on(classifier.classify(inputs, 1));
    let (first_1, ms_1) = timed(reps * 4, || {
        classify(&photos[..1]).expect("classifies");
    });
    let (first_32, ms_32) = timed(reps, || {
        classify(photos).expect("classifies");
    });
    let top1 = classify(photos)
        .expect("classifies")
        .iter()
        .map(|p| p[0].index)
        .collect();

    // One epoch of `STEPS` batches is `STEPS` Adam steps, with one read-back at the end.
    let recipe = Recipe::new().with_epochs(1).with_batch_size(BATCH);
    let train = LabelledFeatures::new(&rows.pooled, &rows.labels);
    let head = || {
        block_on(train_head(&recipe, CLASSES, train, None, device, |_| true))
            .expect("head trains")
            .0
    };
    let (first_head, head_ms) = timed(reps, || {
        head();
    });
    let start = head();
    let stage = FineTuneConfig::new()
        .with_unfreeze(rows.unfreeze)
        .with_epochs(1);
    let boundary = LabelledFeatures::new(&rows.boundary, &rows.labels);
    let (first_tune, tune_ms) = timed(reps, || {
        let top = classifier.model().top(rows.unfreeze);
        block_on(finetune::fine_tune(
            &recipe,
            &stage,
            top,
            start.clone(),
            boundary,
            None,
            device,
            |_| true,
        ))
        .expect("fine-tunes");
    });
    Figures {
        first_1,
        photo_1: ms_1,
        first_32,
        photo_32: ms_32 / BATCH as f64,
        first_head,
        head_step: head_ms / STEPS as f64,
        first_tune,
        tune_step: tune_ms / STEPS as f64,
        top1,
    }
}

/// Native wgpu on Vulkan, and what the adapter says it is; exits with the reason where there is
/// no adapter (a missing Vulkan loader or driver), rather than falling back to anything.
fn wgpu_device() -> Device {
    let (device, setup) = Device::wgpu_options()
        .graphics_api(WgpuBackend::Vulkan)
        .init_with_setup()
        .unwrap_or_else(|e| {
            eprintln!("gpu-check: FAILED: no Vulkan adapter for wgpu: {e}");
            eprintln!("gpu-check: is a Vulkan loader (libvulkan1) and a driver (ICD) installed?");
            exit(2)
        });
    let info = setup.adapter.get_info();
    println!(
        "adapter: {} ({:?}, {:?}; driver {} {}; vendor {:#06x} device {:#06x})",
        info.name,
        info.backend,
        info.device_type,
        info.driver,
        info.driver_info,
        info.vendor,
        info.device
    );
    if info.device_type == DeviceType::Cpu {
        let banner = "!".repeat(78);
        println!(
            "{banner}\n!! SOFTWARE ADAPTER ({}): Vulkan emulated on the CPU, not a GPU.",
            info.name
        );
        println!("!! The wgpu figures below say nothing about GPU speed.\n{banner}");
    }
    device
}

fn main() {
    let started = Instant::now();
    let quick = std::env::var("GPU_CHECK_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let reps = if quick { 1 } else { 5 };
    // First, so that a machine without an adapter fails at once.
    let gpu = wgpu_device();
    let kernels = CpuKernels::best();
    println!(
        "cpu: {} ({} threads), Afinar's {} kernels for inference, Burn's ndarray for training",
        cpu_name(),
        rayon::current_num_threads(),
        kernels.name()
    );

    let path = std::env::var_os("AFINAR_MODEL").map_or_else(
        || shared().join("models").join(DEFAULT_MODEL_FILE),
        PathBuf::from,
    );
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; set AFINAR_SHARED or AFINAR_MODEL", path.display()));
    let weights = MobileNetV2Weights::from_tflite(&bytes).expect("model loads");
    let labels = weights.labels_or(None).expect("labels");
    let cpu =
        Classifier::with_cpu_kernels(&weights, labels.clone(), &afinar::device::cpu(), kernels);
    let (photos, photo_labels) = photos();

    // Computed once on the CPU: the training steps time only the training.
    let unfreeze = FineTuneConfig::new().unfreeze;
    let features = |stage| block_on(cpu.features(&photos, stage)).expect("features");
    let rows = Rows {
        pooled: features(FeatureStage::Pooled).repeat(STEPS),
        boundary: features(FeatureStage::Boundary(unfreeze)).repeat(STEPS),
        labels: photo_labels.repeat(STEPS),
        unfreeze,
    };

    let on_gpu = Classifier::new(&weights, labels, &gpu);
    let wgpu = measure(&on_gpu, &photos, &rows, reps);
    eprintln!(
        "gpu-check: wgpu done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let cpu_figures = measure(&cpu, &photos, &rows, reps);

    let agree = wgpu
        .top1
        .iter()
        .zip(&cpu_figures.top1)
        .filter(|(a, b)| a == b)
        .count();
    let line = |what: &str, w: f64, c: f64| println!("{what:<52} {w:>10.2} {c:>10.2}");
    println!("\n{:<52} {:>10} {:>10}", "milliseconds", "wgpu", "cpu");
    line(
        "classify, batch 1, per photo",
        wgpu.photo_1,
        cpu_figures.photo_1,
    );
    line(
        "classify, batch 32, per photo",
        wgpu.photo_32,
        cpu_figures.photo_32,
    );
    line(
        "first pass, batch 1 (wgpu: shader compilation)",
        wgpu.first_1,
        cpu_figures.first_1,
    );
    line(
        "first pass, batch 32 (whole batch)",
        wgpu.first_32,
        cpu_figures.first_32,
    );
    line(
        "head training step (32 rows)",
        wgpu.head_step,
        cpu_figures.head_step,
    );
    line(
        &format!("fine-tuning step, last {unfreeze} blocks + head (32 rows)"),
        wgpu.tune_step,
        cpu_figures.tune_step,
    );
    let first = |what| format!("first {what} call ({STEPS} steps, compiles on wgpu)");
    line(
        &first("head training"),
        wgpu.first_head,
        cpu_figures.first_head,
    );
    line(
        &first("fine-tuning"),
        wgpu.first_tune,
        cpu_figures.first_tune,
    );
    println!(
        "\ntop-1 on wgpu agrees with the CPU on {agree}/{BATCH} photos; median of {reps} warm \
         runs ({}); {:.0} s in all; wgpu runs {BATCH} photos as passes of {}",
        if quick { "GPU_CHECK_QUICK" } else { "full" },
        started.elapsed().as_secs_f64(),
        afinar::classify::MAX_DEVICE_BATCH
    );
}
