//! TFLite files built here with the flatbuffer schema (`common::tflite_graph`): MobileNetV2s
//! in float32, uint8 and int8 that load and run, an exported classifier read back, and broken
//! variants that must be refused with the right message. With `AFINAR_FUZZ_SEEDS=DIR` the
//! small variants are also written there as fuzzing seeds.

mod common;

use afinar::model::kernels::CpuKernels;
use afinar::tflite::ExportedClassifier;
use afinar::{Arithmetic, Classifier, InputScaling, MobileNetV2Weights, ModelError, ModelInput};
use common::tflite_graph::{Edit, GraphPlan, Top, Weights};

/// ImageNet's classifier: 1001 outputs.
const IMAGENET: Top = Top::Conv { classes: 1001 };

fn standard(weights: Weights) -> Vec<u8> {
    GraphPlan::new(weights, IMAGENET).to_tflite()
}

/// The structure alone, with one `edit`.
fn broken(edit: Edit) -> Vec<u8> {
    GraphPlan::new(Weights::Empty, IMAGENET)
        .with(edit)
        .to_tflite()
}

fn save_seed(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("AFINAR_FUZZ_SEEDS") {
        std::fs::create_dir_all(&dir).expect("seed dir");
        std::fs::write(std::path::Path::new(&dir).join(name), bytes).expect("seed");
    }
}

#[test]
fn a_float32_model_loads_and_runs() {
    let bytes = standard(Weights::Float32);
    let weights = MobileNetV2Weights::from_tflite(&bytes).expect("float32 file loads");
    assert_eq!(weights.input_scaling, InputScaling::MOBILENET);
    assert_eq!(weights.labels, None);
    let labels: String = (0..1001).map(|i| format!("class {i}\n")).collect();
    let classifier =
        Classifier::from_tflite(&bytes, Some(&labels), &afinar::device::cpu()).expect("loads");
    // Zero kernels: every layer outputs its bias, so features are 0.5 and logits the classifier bias.
    let input = ModelInput::from_rgb(vec![77; 224 * 224 * 3]).expect("input");
    let features = classifier
        .model()
        .features(classifier.input_tensor(std::slice::from_ref(&input)));
    let features = features
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32");
    assert!(features.iter().all(|&f| (f - 0.5).abs() < 1e-6));
    let top =
        &futures_lite::future::block_on(classifier.classify(&[input], 2)).expect("classifies")[0];
    assert_eq!((top[0].index, top[0].label.as_str()), (1000, "class 1000"));
    assert_eq!(top[1].index, 999);
}

#[test]
fn the_structure_without_weights_is_corrupt() {
    let bytes = standard(Weights::Empty);
    save_seed("structure-only.tflite", &bytes);
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(
        matches!(&err, ModelError::Corrupt(m) if m.contains("holds 0 bytes")),
        "{err}"
    );
}

#[test]
fn a_wrong_stride_is_refused() {
    let bytes = broken(Edit::Stride { conv: 4, stride: 1 });
    save_seed("wrong-stride.tflite", &bytes);
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(
        matches!(&err, ModelError::WrongArchitecture(m) if m.contains("convolution 4: stride (1, 1)")),
        "{err}"
    );
}

#[test]
fn a_missing_residual_is_refused() {
    let bytes = broken(Edit::Adds(9));
    save_seed("nine-adds.tflite", &bytes);
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert_eq!(
        err,
        ModelError::WrongArchitecture("9 residual additions, MobileNetV2 has 10".into())
    );
}

#[test]
fn a_standard_conv_where_a_depthwise_belongs_is_refused() {
    let bytes = broken(Edit::Kind { conv: 1 });
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(
        matches!(&err, ModelError::WrongArchitecture(m) if m.starts_with("convolution 1: found a Standard")),
        "{err}"
    );
}

#[test]
fn valid_padding_is_refused_as_unsupported() {
    let bytes = broken(Edit::ValidPadding);
    save_seed("valid-padding.tflite", &bytes);
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert_eq!(
        err,
        ModelError::Unsupported("convolution 0 uses VALID padding; only SAME is supported".into())
    );
}

#[test]
fn a_missing_layer_is_refused() {
    let bytes = broken(Edit::DropConv { conv: 51 });
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(
        matches!(&err, ModelError::WrongArchitecture(m) if m.starts_with("52 convolutions")),
        "{err}"
    );
}

/// Every backbone layer outputs its bias (zero kernels): features of 0.5 whatever the photo,
/// and the classifier's biases as logits.
fn features_and_top(bytes: &[u8]) -> (Vec<f32>, Vec<usize>) {
    let weights = MobileNetV2Weights::from_tflite(bytes).expect("loads");
    let labels = (0..weights.num_classes())
        .map(|i| format!("class {i}"))
        .collect();
    // The dequantized float32 weights are what this checks.
    let classifier = Classifier::with_cpu_path(
        &weights,
        labels,
        &afinar::device::cpu(),
        CpuKernels::from_env(),
        Arithmetic::Float,
    );
    let input = ModelInput::from_rgb(vec![77; 224 * 224 * 3]).expect("input");
    let features = classifier
        .model()
        .features(classifier.input_tensor(std::slice::from_ref(&input)))
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32");
    let top = futures_lite::future::block_on(classifier.classify(&[input], 3)).expect("classifies");
    (features, top[0].iter().map(|p| p.index).collect())
}

#[test]
fn quantized_files_are_dequantized_per_tensor_and_per_channel() {
    for weights in [Weights::Uint8, Weights::Int8] {
        let bytes = standard(weights);
        let (features, top) = features_and_top(&bytes);
        assert_eq!(features.len(), 1280);
        // The biases are int32 steps of scale / 128: 0.5 within a step.
        assert!(
            features.iter().all(|&f| (f - 0.5).abs() < 1e-4),
            "{weights:?}: {:?}",
            &features[..4]
        );
        assert_eq!(top, [1000, 999, 998], "{weights:?}");
    }
}

/// `CpuClassifier::read` (the page's way in): a quantized file runs in its integers and a
/// float32 one in float32 even where the integers were asked for (saying why); the labels a
/// file lacks come from the fallback list, which must name each output.
#[test]
fn reading_a_file_picks_the_arithmetic_it_can_run_and_checks_its_labels() {
    use afinar::classify::CpuClassifier;

    let labels: String = (0..1001).map(|i| format!("class {i}\n")).collect();
    let kernels = CpuKernels::best();
    let read = |bytes: &[u8], fallback: Option<&str>| {
        CpuClassifier::read(bytes, "sha".into(), fallback, kernels, Arithmetic::Integer)
    };
    let input = ModelInput::from_rgb(vec![77; 224 * 224 * 3]).expect("input");
    for (weights, arithmetic) in [
        (Weights::Uint8, Arithmetic::Integer),
        (Weights::Int8, Arithmetic::Integer),
        (Weights::Float32, Arithmetic::Float),
    ] {
        let bytes = standard(weights);
        let classifier = read(&bytes, Some(&labels)).expect("reads");
        assert_eq!(classifier.arithmetic(), arithmetic, "{weights:?}");
        assert_eq!(classifier.labels()[1000], "class 1000");
        assert_eq!(classifier.model_sha256(), "sha");
        // Zero kernels: the classifier's biases are the logits, the last the largest (tied
        // with its neighbours once rounded to the integers' 8 bits).
        let probs = classifier.imagenet_probabilities(std::slice::from_ref(&input));
        assert!(probs.iter().all(|&p| p <= probs[1000]), "{weights:?}");
        assert!(probs[1000] > probs[0], "{weights:?}");
        if arithmetic == Arithmetic::Float {
            let why = classifier.integer_refused().expect("says why");
            assert!(why.contains("float32"), "{why}");
        } else {
            assert_eq!(classifier.integer_refused(), None);
        }
        assert!(matches!(read(&bytes, None), Err(ModelError::NoLabels)));
        assert!(matches!(
            read(&bytes, Some("daisy\nroses\n")),
            Err(ModelError::LabelCount {
                classes: 1001,
                labels: 2
            })
        ));
    }
    assert!(matches!(
        read(b"not a model", Some(&labels)),
        Err(ModelError::NotTflite)
    ));
}

#[test]
fn a_quantized_tensor_with_scales_that_do_not_fit_its_channels_is_refused() {
    // Tensor 1 is the stem's weight ([32, 3, 3, 3], int8 per channel).
    let plan = GraphPlan::new(Weights::Int8, IMAGENET);
    let cases = [
        (
            Edit::Scales {
                tensor: 1,
                scales: vec![0.1; 31],
            },
            "31 scales",
        ),
        (
            Edit::ZeroPoints {
                tensor: 1,
                zero_points: vec![0; 3],
            },
            "3 zero points",
        ),
        (
            Edit::QuantizedDimension {
                tensor: 1,
                dimension: 4,
            },
            "bad quantized dimension",
        ),
        (
            Edit::QuantizedDimension {
                tensor: 1,
                dimension: -1,
            },
            "bad quantized dimension",
        ),
        (Edit::NoQuantization { tensor: 1 }, "has no scale"),
        (
            Edit::Resize {
                tensor: 1,
                bytes: 100,
            },
            "holds 100 bytes",
        ),
        (
            Edit::Type {
                tensor: 1,
                code: 10,
            },
            "only float32, uint8, int8 and int32",
        ),
        (
            Edit::Scales {
                tensor: 1,
                scales: vec![f32::NAN; 32],
            },
            "scale of NaN",
        ),
        (
            Edit::Scales {
                tensor: 2,
                scales: vec![f32::INFINITY],
            },
            "scale of inf",
        ),
        (
            Edit::Scales {
                tensor: 1,
                scales: vec![-0.5],
            },
            "scale of -0.5",
        ),
        // Tensor 0 is the image input (int8, one scale).
        (
            Edit::Scales {
                tensor: 0,
                scales: vec![f32::NAN],
            },
            "the input's quantization scale is NaN",
        ),
        (
            Edit::Scales {
                tensor: 0,
                scales: vec![0.0],
            },
            "the input's quantization scale is 0",
        ),
    ];
    for (edit, message) in cases {
        let bytes = plan.clone().with(edit.clone()).to_tflite();
        let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
        assert!(err.to_string().contains(message), "{edit:?}: {err}");
        common::tflite_graph::read_with_every_reader(&bytes);
    }
}

#[test]
fn an_exported_classifier_is_read_back_and_is_not_a_base_model() {
    let bytes = GraphPlan::new(
        Weights::Float32,
        Top::Head {
            hidden: 8,
            classes: 3,
        },
    )
    .to_tflite();
    let exported = ExportedClassifier::from_tflite(&bytes).expect("an exported classifier");
    assert_eq!(exported.convs.len(), 52);
    assert_eq!((exported.hidden.inputs, exported.hidden.outputs), (1280, 8));
    assert_eq!((exported.output.inputs, exported.output.outputs), (8, 3));
    assert_eq!(exported.output.bias, [0.0, 0.001, 0.002]);
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(err.to_string().contains("2 dense layers"), "{err}");
    // A Keras-style file (one dense classifier) is a base model, not an export.
    let keras = GraphPlan::new(Weights::Uint8, Top::Dense { classes: 10 }).to_tflite();
    assert_eq!(
        MobileNetV2Weights::from_tflite(&keras)
            .expect("loads")
            .num_classes(),
        10
    );
    assert!(ExportedClassifier::from_tflite(&keras).is_err());
}
