//! Both TFLite files load, carry their labels, and agree with each other.

mod common;

use afinar::{Classifier, InputScaling, MobileNetV2Weights};
use common::{TF2_PTQ, V1_QUANT, model_bytes, models_dir};
use futures_lite::future::block_on;

fn bird() -> afinar::ModelInput {
    let bytes = std::fs::read(models_dir().join("testdata/bird.rgb")).expect("bird.rgb");
    afinar::ModelInput::from_rgb(bytes).expect("224x224x3")
}

#[test]
fn both_files_load_and_agree_on_the_bird() {
    let device = afinar::device::cpu();
    let mut top1 = Vec::new();
    for name in [V1_QUANT, TF2_PTQ] {
        let classifier = Classifier::from_tflite(&model_bytes(name), None, &device)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let top = &block_on(classifier.classify(&[bird()], 1)).expect("classifies")[0][0];
        println!("{name}: {} {} {:.3}", top.index, top.label, top.prob);
        top1.push(top.index);
    }
    assert_eq!(top1, [20, 20], "both files see a chickadee");
}

#[test]
fn labels_come_from_the_zip_inside_the_file() {
    let sidecar =
        std::fs::read_to_string(models_dir().join("imagenet_labels.txt")).expect("labels");
    let expected = afinar::labels::parse_labels(&sidecar);
    for name in [V1_QUANT, TF2_PTQ] {
        let weights = MobileNetV2Weights::from_tflite(&model_bytes(name)).expect("loads");
        assert_eq!(weights.labels.as_ref(), Some(&expected), "{name}");
        assert_eq!(weights.num_classes(), 1001);
        assert_eq!(expected[0], "background");
        assert_eq!(expected[20], "chickadee");
    }
}

#[test]
fn input_scaling_and_identity_are_read_from_the_file() {
    let v1 = MobileNetV2Weights::from_tflite(&model_bytes(V1_QUANT)).expect("loads");
    assert_eq!(
        v1.input_scaling,
        InputScaling {
            scale: 0.0078125,
            zero_point: 128.0
        }
    );
    assert_eq!(
        v1.sha256,
        "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
    );
    let tf2 = MobileNetV2Weights::from_tflite(&model_bytes(TF2_PTQ)).expect("loads");
    assert!((tf2.input_scaling.scale - 0.007843138).abs() < 1e-7);
    assert_eq!(tf2.input_scaling.zero_point, 127.0);
    assert_eq!(v1.convs.len(), 52);
    // Per-channel int8 weights dequantize to values of a plausible size.
    let stem = &tf2.convs[0].weight;
    assert!(stem.iter().all(|w| w.is_finite() && w.abs() < 20.0));
    assert!(stem.iter().any(|&w| w != 0.0));
}

#[test]
fn a_file_without_labels_takes_the_sidecar_list_or_says_so() {
    // Cutting the appended zip off leaves a valid flatbuffer without labels.
    let bytes = model_bytes(V1_QUANT);
    let zip_start = bytes
        .windows(4)
        .rposition(|w| w == b"PK\x03\x04")
        .expect("appended zip");
    let weights =
        MobileNetV2Weights::from_tflite(&bytes[..zip_start]).expect("flatbuffer alone loads");
    assert_eq!(weights.labels, None);
    assert_eq!(
        weights.labels_or(None).unwrap_err(),
        afinar::ModelError::NoLabels
    );
    let sidecar =
        std::fs::read_to_string(models_dir().join("imagenet_labels.txt")).expect("labels");
    assert_eq!(
        weights.labels_or(Some(&sidecar)).expect("sidecar").len(),
        1001
    );
    let short = "background\ntench\n";
    assert_eq!(
        weights.labels_or(Some(short)).unwrap_err().to_string(),
        "the model has 1001 outputs but its label list has 2 lines"
    );
}

/// Where the file's integers were asked for and cannot run, the classifier runs in float32 and
/// says why; where nobody asked (`auto`), it says nothing more.
#[test]
fn integers_asked_for_and_refused_say_why() {
    use afinar::model::kernels::{Arithmetic, CpuKernels};
    let mut weights = MobileNetV2Weights::from_tflite(&model_bytes(V1_QUANT)).expect("loads");
    assert!(weights.quantized.is_ok(), "the uint8 file has integers");
    weights.quantized = Err("a reason for people".into());
    let labels = weights.labels_or(None).expect("labels");
    let device = afinar::device::cpu();
    let kernels = CpuKernels::Portable;
    let asked = Classifier::with_cpu_path(
        &weights,
        labels.clone(),
        &device,
        kernels,
        Arithmetic::Integer,
    );
    assert_eq!(asked.arithmetic(), Arithmetic::Float);
    let says = asked.runs_on();
    assert!(
        says.contains("in float32") && says.contains("a reason for people"),
        "{says}"
    );
    let auto = Classifier::with_cpu_path(&weights, labels, &device, kernels, Arithmetic::Auto);
    assert_eq!(
        auto.runs_on(),
        "frozen backbone: Afinar's portable kernels, in float32"
    );
    let top = &block_on(asked.classify(&[bird()], 1)).expect("classifies")[0][0];
    assert_eq!(top.index, 20, "still a chickadee");
}
