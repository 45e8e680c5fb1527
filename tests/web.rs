//! In-browser tests (wasm-bindgen-test in headless Chromium): the model read from the real
//! `.tflite` bytes reproduces the float32 reference on the CPU backend and on WebGPU, a training
//! step lowers the loss on both. (The page ↔ worker messages' trip through JS values is
//! `crates/protocol/tests/web.rs`.)
//!
//! Run by `scripts/test`; by hand: `CHROMEDRIVER=/usr/bin/chromedriver cargo test --release
//! --target wasm32-unknown-unknown --test web` (flags for Chromium in `webdriver.json`).
#![cfg(target_arch = "wasm32")]

use afinar::model::kernels::CpuKernels;
use afinar::{Arithmetic, Classifier, MobileNetV2Weights, ModelInput, top_k};
use burn::tensor::Device;
use serde::Deserialize;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

// The fixtures are compiled in: the test page has no file system. `AFINAR_SHARED` is set in
// .cargo/config.toml (default ../shared) and can be overridden from the environment.
const MODEL: &[u8] = include_bytes!(concat!(
    env!("AFINAR_SHARED"),
    "/models/mobilenet_v2_1.0_224_quant.tflite"
));
const BIRD_RGB: &[u8] = include_bytes!(concat!(env!("AFINAR_SHARED"), "/models/testdata/bird.rgb"));
const BIRD_REFERENCE: &str = include_str!(concat!(
    env!("AFINAR_SHARED"),
    "/models/reference/bird.json"
));

/// The core issue's parity bound on probabilities.
const PROBS_ATOL: f32 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    probs: Vec<f32>,
    top5: Vec<(usize, String, f32)>,
}

async fn check_bird_parity(device: &Device, kernels: CpuKernels) {
    let reference: Reference = serde_json::from_str(BIRD_REFERENCE).expect("bird.json");
    let weights = MobileNetV2Weights::from_tflite(MODEL).expect("the model loads");
    let labels = weights.labels_or(None).expect("labels");
    // Float32 whatever the path's default (the page runs the file's integers, held to their
    // own arithmetic by `integer_kernels_in_wasm_are_the_files_arithmetic`).
    let classifier =
        Classifier::with_cpu_path(&weights, labels, device, kernels, Arithmetic::Float);
    assert_eq!(classifier.cpu_kernels(), kernels, "the path asked for runs");
    let bird = ModelInput::from_rgb(BIRD_RGB.to_vec()).expect("224×224×3 input");
    let rows = classifier
        .probabilities(&[bird])
        .await
        .expect("the model runs");
    let probs = &rows[0];
    assert_eq!(probs.len(), reference.probs.len());
    let worst = probs
        .iter()
        .zip(&reference.probs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    web_sys::console::log_1(&format!("bird.rgb: max |Δ prob| {worst:.2e}").into());
    assert!(worst <= PROBS_ATOL, "probabilities differ by {worst}");
    let top5: Vec<usize> = top_k(probs, 5).into_iter().map(|(i, _)| i).collect();
    let want: Vec<usize> = reference.top5.iter().map(|t| t.0).collect();
    assert_eq!(top5, want);
    assert_eq!(classifier.labels()[top5[0]], reference.top5[0].1);
}

thread_local! {
    /// Burn starts its WebGPU runtime once per page; the tests share the device.
    static WEBGPU: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

/// The WebGPU device. Chromium gets --enable-unsafe-webgpu from webdriver.json; without an
/// adapter this fails rather than skips, so a lost WebGPU set-up shows up in CI.
async fn webgpu() -> Device {
    if let Some(device) = WEBGPU.with_borrow(Clone::clone) {
        return device;
    }
    let device = Device::wgpu_options()
        .init_async()
        .await
        .expect("headless Chromium offers a WebGPU adapter (see webdriver.json)");
    WEBGPU.set(Some(device.clone()));
    device
}

#[wasm_bindgen_test]
async fn cpu_backend_matches_the_float32_reference() {
    check_bird_parity(&afinar::device::cpu(), CpuKernels::Burn).await;
}

/// Afinar's kernels in the browser: `simd128` intrinsics (the page's CPU path) and the
/// portable loops.
#[wasm_bindgen_test]
async fn cpu_kernels_in_wasm_match_the_float32_reference() {
    assert_eq!(CpuKernels::best(), CpuKernels::Simd128);
    for kernels in [CpuKernels::Simd128, CpuKernels::Portable] {
        check_bird_parity(&afinar::device::cpu(), kernels).await;
    }
}

/// Each kernel on its own against the plain loops, on the browser's instruction sets.
#[wasm_bindgen_test]
fn each_cpu_kernel_in_wasm_matches_the_plain_loops() {
    use afinar::model::kernels::reference::check_kernels;
    for kernels in [CpuKernels::Simd128, CpuKernels::Portable] {
        assert_eq!(kernels.runnable(), kernels);
        let cases = check_kernels(kernels).unwrap_or_else(|e| panic!("{}: {e}", kernels.name()));
        assert!(cases > 0);
    }
}

/// The integer kernels in the browser against the plain loops of the same arithmetic, one by
/// one and over the whole network on the bird: exactly equal, and the reference's top-1.
#[wasm_bindgen_test]
fn integer_kernels_in_wasm_are_the_files_arithmetic() {
    use afinar::model::kernels::integer_backbone::IntegerBackbone;
    use afinar::model::kernels::integer_reference::{check_kernels, forward};
    let reference: Reference = serde_json::from_str(BIRD_REFERENCE).expect("bird.json");
    let weights = MobileNetV2Weights::from_tflite(MODEL).expect("the model loads");
    let model = weights
        .quantized
        .as_ref()
        .expect("the page reads the file's integers");
    let table = model.pixel_table();
    let input: Vec<u8> = BIRD_RGB.iter().map(|&p| table[usize::from(p)]).collect();
    let want = forward(model, &input).expect("the plain loops run the file");
    for kernels in [CpuKernels::Simd128, CpuKernels::Portable] {
        let cases = check_kernels(kernels).unwrap_or_else(|e| panic!("{}: {e}", kernels.name()));
        assert!(cases > 0);
        let backbone = IntegerBackbone::pack(model, kernels).expect("the integers pack");
        assert_eq!(backbone.kernels(), kernels);
        let got = backbone.run(BIRD_RGB);
        assert_eq!(got, want, "{}", kernels.name());
    }
    let top1 = (0..want.logits.len()).max_by_key(|&i| (want.logits[i], std::cmp::Reverse(i)));
    assert_eq!(top1, Some(reference.top5[0].0));
    // The page's worker asks for nothing: the integers are its default.
    let labels = weights.labels_or(None).expect("labels");
    let page = afinar_core::CpuClassifier::new(&weights, labels, CpuKernels::best())
        .expect("the model packs");
    assert_eq!(page.arithmetic(), Arithmetic::Integer);
}

#[wasm_bindgen_test]
async fn webgpu_backend_matches_the_float32_reference() {
    check_bird_parity(&webgpu().await, CpuKernels::Burn).await;
}

/// `rows` rows of `width` values in two clusters (class 0 around -0.5, class 1 around +0.5),
/// with labels.
fn two_clusters(rows: usize, width: usize) -> (Vec<f32>, Vec<usize>) {
    let labels: Vec<usize> = (0..rows).map(|i| i % 2).collect();
    let values = labels
        .iter()
        .enumerate()
        .flat_map(|(r, &l)| {
            (0..width).map(move |c| {
                let wobble = (((r * 31 + c * 17) % 13) as f32 - 6.0) / 24.0;
                if l == 0 { -0.5 + wobble } else { 0.5 + wobble }
            })
        })
        .collect();
    (values, labels)
}

/// One optimizer step on the head, and one on the unfrozen top with the head, each lower the
/// loss on their batch (the loss of the second epoch is measured after the first step).
async fn one_step_lowers_the_loss(device: &Device) {
    use afinar::recipe::{FineTuneConfig, Recipe};
    use afinar::train::finetune::fine_tune;
    use afinar::train::{LabelledFeatures, train_head};
    let (features, labels) = two_clusters(16, 1280);
    let batch = LabelledFeatures::new(&features, &labels);
    let config = Recipe::new().with_epochs(2).with_batch_size(16);
    let (head, reports) = train_head(&config, 2, batch, None, device, |_| true)
        .await
        .expect("trains");
    let (before, after) = (reports[0].train_loss, reports[1].train_loss);
    web_sys::console::log_1(&format!("head step: loss {before:.4} → {after:.4}").into());
    assert!(after < before, "head: {before} → {after}");

    let classifier = Classifier::from_tflite(MODEL, None, device).expect("the model loads");
    let width: usize = afinar::architecture::boundary_shape(1).iter().product();
    let (boundary, labels) = two_clusters(4, width);
    let batch = LabelledFeatures::new(&boundary, &labels);
    let recipe = Recipe::new().with_epochs(0).with_batch_size(4);
    let stage = FineTuneConfig::new()
        .with_unfreeze(1)
        .with_epochs(2)
        .with_learning_rate(1e-3);
    let (_, reports, _) = fine_tune(
        &recipe,
        &stage,
        classifier.model().top(1),
        head,
        batch,
        None,
        device,
        |_| true,
    )
    .await
    .expect("fine-tunes");
    let (before, after) = (reports[0].train_loss, reports[1].train_loss);
    web_sys::console::log_1(&format!("fine-tuning step: loss {before:.4} → {after:.4}").into());
    assert!(after < before, "fine-tuning: {before} → {after}");
}

#[wasm_bindgen_test]
async fn a_training_step_lowers_the_loss_on_the_cpu() {
    one_step_lowers_the_loss(&afinar::device::cpu()).await;
}

#[wasm_bindgen_test]
async fn a_training_step_lowers_the_loss_on_webgpu() {
    one_step_lowers_the_loss(&webgpu().await).await;
}
