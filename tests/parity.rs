//! The Burn port reproduces the float32 reference pass over the dequantized TFLite weights.

mod common;

use afinar::{Classifier, ModelInput, top_k};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use common::{Reference, V1_QUANT, max_abs_diff, model_bytes, references};
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

/// Runs all references through the model in one batch and checks every output.
fn check_parity(device: &Device) {
    let classifier =
        Classifier::from_tflite(&model_bytes(V1_QUANT), None, device).expect("model loads");
    let refs = references();
    let inputs: Vec<ModelInput> = refs.iter().map(|(_, r)| r.input()).collect();
    let features = classifier
        .model()
        .features(classifier.input_tensor(&inputs));
    let logits = classifier.model().logits_from_features(features.clone());
    let probs = softmax(logits.clone(), 1);
    let (features, logits, probs) = (to_vec(features), to_vec(logits), to_vec(probs));
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
fn ndarray_matches_the_float32_reference() {
    check_parity(&afinar::device::cpu());
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_the_float32_reference_where_an_adapter_exists() {
    match Device::wgpu_options().init() {
        Ok(device) => {
            check_parity(&device);
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
        Err(e) => println!("SKIPPED: no wgpu adapter on this machine ({e})"),
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
