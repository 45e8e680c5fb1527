//! The Burn port reproduces the float32 reference pass over the dequantized TFLite weights.

mod common;

use afinar::architecture::{FEATURE_DIM, boundary_shape};
use afinar::model::kernels::CpuKernels;
use afinar::tflite::QuantizedMobileNetV2;
use afinar::{Arithmetic, Classifier, FeatureStage, MobileNetV2Weights, ModelInput, top_k};
use afinar_core::kernels::integer_backbone::IntegerBackbone;
use afinar_core::kernels::integer_reference;
use burn::prelude::*;
use common::{Reference, TF2_PTQ, V1_QUANT, max_abs_diff, model_bytes, references};
use futures_lite::future::block_on;

/// Tolerances from `shared/models/reference/README.md`: float32 rounding is ~1e-5, a
/// structural mistake (e.g. symmetric padding) moves probabilities by ~0.2.
const PROBS_ATOL: f32 = 1e-4;
const LOGITS_ATOL: f32 = 1e-3;
const FEATURES_ATOL: f32 = 1e-3;

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 tensor data")
}

/// The classifier on `device`, its CPU path being `kernels`.
fn classifier(device: &Device, kernels: CpuKernels) -> Classifier {
    let weights = MobileNetV2Weights::from_tflite(&model_bytes(V1_QUANT)).expect("model loads");
    let labels = weights.labels_or(None).expect("labels");
    // The float32 path: what these references are.
    Classifier::with_cpu_path(&weights, labels, device, kernels, Arithmetic::Float)
}

/// Runs all references through the model in one batch and checks every output.
fn check_parity(device: &Device, kernels: CpuKernels) {
    let classifier = classifier(device, kernels);
    println!("backbone on {}", classifier.cpu_kernels().name());
    let refs = references();
    let inputs: Vec<ModelInput> = refs.iter().map(|(_, r)| r.input()).collect();
    let features = block_on(classifier.features(&inputs, FeatureStage::Pooled)).expect("runs");
    let rows = Tensor::<2>::from_data(
        TensorData::new(features.clone(), [inputs.len(), 1280]),
        device,
    );
    let logits = to_vec(classifier.model().logits_from_features(rows));
    let probs: Vec<f32> = block_on(classifier.probabilities(&inputs))
        .expect("runs")
        .concat();
    for (i, (name, r)) in refs.iter().enumerate() {
        let row = |v: &[f32], n: usize| v[i * n..(i + 1) * n].to_vec();
        let (f, l, p) = (row(&features, 1280), row(&logits, 1001), row(&probs, 1001));
        let (df, dl, dp) = (
            max_abs_diff(&f, &r.features),
            max_abs_diff(&l, &r.logits),
            max_abs_diff(&p, &r.probs),
        );
        println!("{name}: max |Δ| features {df:.2e}, logits {dl:.2e}, probs {dp:.2e}");
        assert!(df <= FEATURES_ATOL, "{name}: features differ by {df}");
        assert!(dl <= LOGITS_ATOL, "{name}: logits differ by {dl}");
        assert!(dp <= PROBS_ATOL, "{name}: probabilities differ by {dp}");
        let top5: Vec<usize> = top_k(&p, 5).into_iter().map(|(i, _)| i).collect();
        let want: Vec<usize> = r.top5.iter().map(|t| t.0).collect();
        assert_eq!(top5, want, "{name}: top-5");
    }
}

#[test]
fn every_cpu_path_matches_the_float32_reference() {
    for kernels in CpuKernels::ALL {
        if kernels.is_supported() {
            check_parity(&afinar::device::cpu(), kernels);
        } else {
            // CI machines differ in their CPU: only a run that asks for a path requires it.
            common::skip_unless_required(
                &kernels.name().to_ascii_uppercase(),
                false,
                "this CPU does not have it",
            );
        }
    }
}

/// Odd batch sizes and every freeze boundary give the same rows on Afinar's kernels as on
/// Burn's layers.
#[test]
fn the_cpu_kernels_match_burn_on_odd_batches_and_every_boundary() {
    let device = afinar::device::cpu();
    let burn = classifier(&device, CpuKernels::Burn);
    let photos: Vec<ModelInput> = references().iter().map(|(_, r)| r.input()).collect();
    // The smallest photo accepted, scaled up to the input like any other.
    let tiny = image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 16) as u8, (y * 16) as u8, 77])
    });
    let tiny = ModelInput::from_image(&image::DynamicImage::ImageRgb8(tiny));
    let batch = |n: usize| -> Vec<ModelInput> {
        (0..n)
            .map(|i| {
                if i == n / 2 {
                    tiny.clone()
                } else {
                    photos[i % photos.len()].clone()
                }
            })
            .collect()
    };
    for kernels in CpuKernels::ALL
        .into_iter()
        .filter(|k| *k != CpuKernels::Burn && k.is_supported())
    {
        let fast = classifier(&device, kernels);
        assert_eq!(fast.cpu_kernels(), kernels);
        for (n, stage) in [
            (1, FeatureStage::Pooled),
            (2, FeatureStage::Boundary(1)),
            (3, FeatureStage::Boundary(2)),
            (17, FeatureStage::Pooled),
            (1, FeatureStage::Boundary(4)),
            (1, FeatureStage::Boundary(10)),
            (1, FeatureStage::Boundary(17)),
        ] {
            let inputs = batch(n);
            let want = block_on(burn.features(&inputs, stage)).expect("burn runs");
            let got = block_on(fast.features(&inputs, stage)).expect("kernels run");
            assert_eq!(got.len(), want.len());
            let worst = max_abs_diff(&got, &want);
            println!(
                "{}: batch {n}, {stage:?}: max |Δ| {worst:.2e}",
                kernels.name()
            );
            assert!(
                worst <= FEATURES_ATOL,
                "{} {stage:?} batch {n}: {worst}",
                kernels.name()
            );
        }
        // A training photo's rows (for a head, and for a fine-tuning recipe: boundary and
        // pooled from one pass), by the Burn classifier on these kernels and by the core's
        // CPU classifier (the page's inference worker), against Burn's own layers.
        let weights = MobileNetV2Weights::from_tflite(&model_bytes(V1_QUANT)).expect("loads");
        let labels = burn.labels().to_vec();
        let core = afinar::classify::CpuClassifier::with_arithmetic(
            &weights,
            labels,
            kernels,
            Arithmetic::Float,
        )
        .expect("packs");
        for unfreeze in [None, Some(1), Some(2), Some(17)] {
            let views = [tiny.clone(), photos[1].clone()];
            let want = block_on(burn.embed(&photos[0], &views, unfreeze, 5)).expect("embeds");
            let rows = |e: &afinar::classify::Embedding| {
                [
                    e.pooled.clone(),
                    e.augmented.clone(),
                    e.boundary.clone().unwrap_or_default(),
                    e.augmented_boundary.clone().unwrap_or_default(),
                ]
            };
            let on_kernels = block_on(fast.embed(&photos[0], &views, unfreeze, 5)).expect("embeds");
            let on_core = core.embed(&photos[0], &views, unfreeze, 5);
            for (who, got) in [("Burn on the kernels", on_kernels), ("core", on_core)] {
                assert_eq!(got.boundary.is_some(), unfreeze.is_some(), "{who}");
                assert_eq!(got.augmented.len(), 2 * FEATURE_DIM, "{who}");
                for (name, (g, w)) in ["pooled", "augmented", "boundary", "augmented boundary"]
                    .iter()
                    .zip(rows(&got).iter().zip(&rows(&want)))
                {
                    assert_eq!(g.len(), w.len(), "{who}: {name}");
                    let worst = max_abs_diff(g, w);
                    println!(
                        "{} ({who}): embed, unfreeze {unfreeze:?}, {name}: max |Δ| {worst:.2e}",
                        kernels.name()
                    );
                    assert!(
                        worst <= FEATURES_ATOL,
                        "{who}: {name}, unfreeze {unfreeze:?}: {worst}"
                    );
                }
                assert_eq!(got.imagenet.len(), 5, "{who}");
                assert_eq!(got.imagenet[0].index, want.imagenet[0].index, "{who}");
                assert!(
                    (got.imagenet[0].prob - want.imagenet[0].prob).abs() < 1e-3,
                    "{who}"
                );
            }
        }
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_the_float32_reference_where_an_adapter_exists() {
    match Device::wgpu_options().init() {
        Ok(device) => {
            check_parity(&device, CpuKernels::from_env());
            // More photos than one device pass holds (WebGPU's 128 MiB buffer limit): split.
            let classifier = Classifier::from_tflite(&model_bytes(V1_QUANT), None, &device)
                .expect("model loads");
            let bird = references()
                .into_iter()
                .find(|(n, _)| n == "bird")
                .expect("bird")
                .1
                .input();
            let many = vec![bird; afinar::classify::MAX_DEVICE_BATCH + 4];
            let results =
                block_on(classifier.classify(&many, 1)).expect("a large batch runs in parts");
            assert_eq!(results.len(), many.len());
            assert!(results.iter().all(|r| r[0].index == 20));
        }
        Err(e) => common::skip_unless_required(
            "WGPU",
            true,
            &format!("no wgpu adapter on this machine ({e})"),
        ),
    }
}

#[test]
fn a_photo_gets_the_same_result_alone_and_in_a_batch() {
    let device = afinar::device::cpu();
    let classifier =
        Classifier::from_tflite(&model_bytes(V1_QUANT), None, &device).expect("model loads");
    let refs = references();
    let bird: &Reference = &refs
        .iter()
        .find(|(n, _)| n == "bird")
        .expect("bird reference")
        .1;
    let alone = block_on(classifier.classify(&[bird.input()], 5)).expect("classifies");
    let batch: Vec<ModelInput> = refs.iter().map(|(_, r)| r.input()).collect();
    let together = block_on(classifier.classify(&batch, 5)).expect("classifies");
    let position = refs.iter().position(|(n, _)| n == "bird").expect("bird");
    assert_eq!(alone[0][0].index, 20);
    assert_eq!(alone[0][0].label, "chickadee");
    for (a, b) in alone[0].iter().zip(&together[position]) {
        assert_eq!(a.index, b.index);
        assert!((a.prob - b.prob).abs() < 1e-5);
    }
}

/// The warm-up (a made-up photo down the whole path, answers dropped) leaves nothing behind in
/// the reused buffers: the same photos get the same probabilities before and after it.
#[test]
fn warming_up_changes_no_answer() {
    use afinar::classify::CpuClassifier;

    let weights = MobileNetV2Weights::from_tflite(&model_bytes(V1_QUANT)).expect("model loads");
    let labels = weights.labels_or(None).expect("labels");
    let fast = CpuClassifier::new(&weights, labels, CpuKernels::best()).expect("packs");
    let photos: Vec<ModelInput> = references().iter().map(|(_, r)| r.input()).collect();
    let before = fast.imagenet_probabilities(&photos);
    fast.warm_up();
    assert_eq!(fast.imagenet_probabilities(&photos), before);
    let cold =
        CpuClassifier::new(&weights, fast.labels().to_vec(), CpuKernels::best()).expect("packs");
    cold.warm_up();
    assert_eq!(
        cold.imagenet_probabilities(&photos[..1]),
        before[..fast.labels().len()]
    );
}

/// Reading a file straight into the arithmetic that runs it (the page's way: no float32 copy of
/// the weights beside the integers) gives the classifier that packing all of its weights gives:
/// same labels, same probabilities, same boundary activations.
#[test]
fn reading_a_file_into_one_arithmetic_gives_the_same_classifier() {
    use afinar::classify::CpuClassifier;

    let bytes = model_bytes(V1_QUANT);
    let weights = MobileNetV2Weights::from_tflite(&bytes).expect("model loads");
    let labels = weights.labels_or(None).expect("the file carries labels");
    let photos: Vec<ModelInput> = references().iter().map(|(_, r)| r.input()).collect();
    let kernels = CpuKernels::best();
    for arithmetic in [Arithmetic::Integer, Arithmetic::Float] {
        let packed = CpuClassifier::with_arithmetic(&weights, labels.clone(), kernels, arithmetic)
            .expect("packs");
        let read = CpuClassifier::read(&bytes, weights.sha256.clone(), None, kernels, arithmetic)
            .expect("reads");
        assert_eq!(read.arithmetic(), arithmetic);
        assert_eq!(read.integer_refused(), None);
        assert_eq!(read.labels(), labels.as_slice());
        assert_eq!(read.model_sha256(), weights.sha256);
        assert_eq!(read.kernels(), packed.kernels());
        assert_eq!(
            read.imagenet_probabilities(&photos),
            packed.imagenet_probabilities(&photos),
            "{arithmetic:?}"
        );
        let boundary = FeatureStage::Boundary(2);
        assert_eq!(
            read.features(&photos[..1], boundary),
            packed.features(&photos[..1], boundary),
            "{arithmetic:?}"
        );
    }
}

/// A trained head (with and without a fine-tuned top) gives the same answers on the core's CPU
/// kernels, read from its file, as Burn's trained parts do, and ImageNet's answer from that
/// same pass is the plain classifier's.
#[test]
fn a_head_file_on_the_cpu_kernels_matches_burns_trained_parts() {
    use afinar::classify::{CpuClassifier, PackedHead};
    use afinar::head::{self, HeadConfig, HeadMetadata, TrainedParts};

    let device = afinar::device::cpu();
    let burn = classifier(&device, CpuKernels::Burn);
    let fast = CpuClassifier::with_arithmetic(
        &MobileNetV2Weights::from_tflite(&model_bytes(V1_QUANT)).expect("model loads"),
        burn.labels().to_vec(),
        CpuKernels::best(),
        Arithmetic::Float,
    )
    .expect("packs");
    let integer = CpuClassifier::with_arithmetic(
        &MobileNetV2Weights::from_tflite(&model_bytes(V1_QUANT)).expect("model loads"),
        burn.labels().to_vec(),
        CpuKernels::best(),
        Arithmetic::Integer,
    )
    .expect("packs");
    assert_eq!(integer.arithmetic(), Arithmetic::Integer);
    let references = references();
    let photos: Vec<ModelInput> = references.iter().map(|(_, r)| r.input()).collect();
    let classes: Vec<String> = ["daisy", "roses", "tulips"].map(String::from).to_vec();
    for unfrozen in [0, 2, 17] {
        let parts = TrainedParts {
            head: HeadConfig::new(classes.len()).init(&device),
            top: (unfrozen > 0).then(|| altered_top(&burn, unfrozen)),
        };
        let metadata = HeadMetadata {
            classes: classes.clone(),
            base_model_sha256: burn.model_sha256().to_string(),
            recipe: None,
            split: String::new(),
            preprocessing: "reference".into(),
            unfrozen_blocks: unfrozen,
            trained: None,
        };
        let file = block_on(head::save(&parts, &metadata)).expect("saves");
        let packed =
            PackedHead::from_file(&file, burn.model_sha256(), fast.kernels()).expect("packs");
        assert_eq!(packed.unfrozen(), unfrozen);
        let (parts, _) = head::load(&file, None, &device).expect("loads");
        let in_integers =
            PackedHead::from_file(&file, burn.model_sha256(), integer.kernels()).expect("packs");
        let mut answers = std::collections::HashSet::new();
        for (photo, (_, reference)) in photos.iter().zip(&references) {
            let got = fast.classify_with_head(photo, &packed, 5);
            // The frozen part in the file's integers (a fine-tuned top in float32 on their
            // boundary): ImageNet's first answer LiteRT's, the head's within the rounding.
            let rounded = integer.classify_with_head(photo, &in_integers, 5);
            assert_eq!(rounded.imagenet[0].label, reference.top5_litert[0].1);
            for p in &got.head {
                let q = rounded.head.iter().find(|q| q.label == p.label);
                let diff = q.map_or(1.0, |q| (q.prob - p.prob).abs());
                assert!(diff < 0.05, "unfrozen {unfrozen}: {p:?} against {q:?}");
            }
            answers.insert(format!("{:?}", got.head));
            let one = std::slice::from_ref(photo);
            let want_head = block_on(burn.classify_trained(one, &parts, &classes, 3))
                .expect("burn runs")
                .remove(0);
            let want_imagenet = block_on(burn.classify(one, 5)).expect("runs").remove(0);
            for (name, got, want) in [
                ("head", &got.head, &want_head),
                ("imagenet", &got.imagenet, &want_imagenet),
            ] {
                let labels = |p: &[afinar::Prediction]| -> Vec<String> {
                    p.iter().map(|p| p.label.clone()).collect()
                };
                let probs =
                    |p: &[afinar::Prediction]| -> Vec<f32> { p.iter().map(|p| p.prob).collect() };
                let worst = max_abs_diff(&probs(got), &probs(want));
                println!("unfrozen {unfrozen}, {name}: max |Δ| {worst:.2e}");
                assert_eq!(labels(got), labels(want), "unfrozen {unfrozen}, {name}");
                assert!(worst <= PROBS_ATOL, "unfrozen {unfrozen}, {name}: {worst}");
            }
        }
        // The head tells the photos apart (a top that saturates would answer alike).
        assert_eq!(answers.len(), photos.len(), "unfrozen {unfrozen}");
    }
}

/// The file's top `unfrozen` blocks with every weight moved by a few percent: a fine-tuned
/// top unlike the file's, so that running the wrong one shows.
fn altered_top(classifier: &Classifier, unfrozen: usize) -> afinar::model::BackboneTop {
    let device = classifier.device().clone();
    let mut top = classifier.model().top(unfrozen);
    for (i, conv) in top.convs_mut().into_iter().enumerate() {
        let weight = conv.conv.weight.val();
        let dims = weight.dims();
        let scale = 1.0 + 0.05 * ((i % 3) as f32 - 1.0) + 0.02;
        let weight = (weight * scale).into_data();
        let bias = conv
            .conv
            .bias
            .as_ref()
            .expect("bias")
            .val()
            .add_scalar(0.01);
        conv.set_weights(weight, bias.into_data(), &device);
        assert_eq!(conv.conv.weight.dims(), dims);
    }
    top
}

/// Each reference photo as the file's quantized input.
fn quantized_inputs(model: &QuantizedMobileNetV2) -> Vec<(String, Reference, Vec<u8>)> {
    let table = model.pixel_table();
    references()
        .into_iter()
        .map(|(name, r)| {
            let q = r
                .input()
                .rgb()
                .iter()
                .map(|&p| table[usize::from(p)])
                .collect();
            (name, r, q)
        })
        .collect()
}

/// LiteRT's uint8 logits (an int8 file's `q + 128`) for photos' pixels, through
/// `tests/litert_logits.py`; `None` (skipped, or failed in CI) where LiteRT is missing.
fn litert_logits(file: &str, pixels: &[u8], classes: usize) -> Option<Vec<u8>> {
    let Ok(python) = std::env::var("AFINAR_LITERT_PYTHON") else {
        common::skip_unless_required("LITERT", true, "AFINAR_LITERT_PYTHON is not set");
        return None;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (input, output) = (dir.path().join("inputs.u8"), dir.path().join("logits.u8"));
    std::fs::write(&input, pixels).expect("inputs");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/litert_logits.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(common::models_dir().join(file))
        .args([&input, &output])
        .output()
        .expect("run LiteRT");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logits = std::fs::read(&output).expect("LiteRT's logits");
    assert_eq!(logits.len(), classes * pixels.len() / (224 * 224 * 3));
    Some(logits)
}

/// The integer arithmetic of both quantized files, in plain loops, against LiteRT's on the same
/// file: the same top-1 on every reference photo, the uint8 logits equal almost everywhere and
/// never more than a step apart.
#[test]
fn the_integer_reference_matches_litert_on_both_quantized_files() {
    for file in [V1_QUANT, TF2_PTQ] {
        let model = QuantizedMobileNetV2::from_tflite(&model_bytes(file)).expect("reads");
        let photos = quantized_inputs(&model);
        let mut ours = Vec::new();
        for (name, reference, input) in &photos {
            let out = integer_reference::forward(&model, input).expect("integer pass");
            // Every path of the integer kernels gives exactly the plain loops' answer.
            for kernels in CpuKernels::ALL
                .into_iter()
                .filter(|k| *k != CpuKernels::Burn && k.is_supported())
            {
                let packed = IntegerBackbone::pack(&model, kernels).expect("packs");
                let got = packed.run(reference.input().rgb());
                assert_eq!(got, out, "{file} {name} on {kernels:?}");
                // Stopping at a fine-tuned top's boundary changes nothing, and gives that
                // boundary's real activations.
                for unfrozen in [1, 2, 17] {
                    let (at, whole) =
                        packed.run_to_boundary(reference.input().rgb(), unfrozen, true);
                    assert_eq!(whole.as_ref(), Some(&out), "{name} {unfrozen}");
                    let [c, side, _] = boundary_shape(unfrozen);
                    assert_eq!((at.channels, at.side), (c, side), "{unfrozen}");
                    assert_eq!(at.values.len(), FeatureStage::Boundary(unfrozen).width());
                    let (alone, none) =
                        packed.run_to_boundary(reference.input().rgb(), unfrozen, false);
                    assert_eq!((alone, none), (at, None));
                }
            }
            assert_eq!(out.pooled.len(), FEATURE_DIM);
            let top = top_k(
                &out.logits.iter().map(|&q| f32::from(q)).collect::<Vec<_>>(),
                1,
            );
            if file == V1_QUANT {
                assert_eq!(top[0].0, reference.top5_litert[0].0, "{file} {name}");
                // The head's features: the float32 pass's, up to the file's own rounding.
                let (a, b) = (&out.pooled, &reference.features);
                let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
                let cosine = dot / (norm(a) * norm(b));
                let mean =
                    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
                assert!(
                    cosine > 0.99 && mean < 0.05,
                    "{file} {name}: features cosine {cosine}, mean |Δ| {mean} from the float32 pass"
                );
            }
            ours.extend(out.logits);
        }
        let pixels: Vec<u8> = photos
            .iter()
            .flat_map(|(_, r, _)| r.input().rgb().to_vec())
            .collect();
        let classes = model.classifier.spec.out_channels;
        let Some(litert) = litert_logits(file, &pixels, classes) else {
            continue;
        };
        let unequal = ours.iter().zip(&litert).filter(|(a, b)| a != b).count();
        let worst = ours.iter().zip(&litert).map(|(a, b)| a.abs_diff(*b)).max();
        println!(
            "{file}: {unequal} of {} logits differ from LiteRT's, by at most {worst:?} steps",
            ours.len()
        );
        assert!(
            worst <= Some(1),
            "{file}: a logit {worst:?} steps from LiteRT's"
        );
        assert!(
            unequal * 1000 <= ours.len(),
            "{file}: {unequal} of {} logits differ from LiteRT's",
            ours.len()
        );
    }
}
