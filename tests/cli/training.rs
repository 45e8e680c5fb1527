//! `afinar train` and `afinar eval`: a head written, scored, exported and read elsewhere.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::{self, V1_QUANT};
use crate::{afinar, json_lines, model};

#[test]
fn train_writes_a_head_that_eval_scores() {
    let data = tempfile::tempdir().expect("tempdir");
    let flowers = common::shared_dir().join("data/flower_photos");
    for class in ["daisy", "sunflowers"] {
        let dest = data.path().join(class);
        std::fs::create_dir(&dest).expect("class folder");
        let mut photos: Vec<PathBuf> = std::fs::read_dir(flowers.join(class))
            .expect("photos")
            .map(|e| e.expect("entry").path())
            .collect();
        photos.sort();
        for photo in photos.iter().take(6) {
            std::fs::copy(photo, dest.join(photo.file_name().expect("name"))).expect("copy");
        }
    }
    let head = data.path().join("head.safetensors");
    let cache = tempfile::tempdir().expect("cache dir");
    let (data_dir, head_file) = (data.path().to_string_lossy(), head.to_string_lossy());
    let cache_dir = cache.path().to_string_lossy();
    let out = afinar(&[
        "train",
        "--data",
        &data_dir,
        "--out",
        &head_file,
        "--recipe",
        "quick",
        "--epochs",
        "5",
        "--model",
        &model(),
        "--cache-dir",
        &cache_dir,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("train loss").count(), 5, "{stdout}");
    assert!(head.is_file());

    let out = afinar(&[
        "eval",
        "--head",
        &head_file,
        "--data",
        &data_dir,
        "--json",
        "--model",
        &model(),
        "--cache-dir",
        &cache_dir,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each photo's features were computed once and kept.
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        // `-pooled-integer.bin` where the file's integers run (their features are not float32's).
        cached
            .iter()
            .any(|name| name.ends_with("-pooled.bin") || name.ends_with("-pooled-integer.bin")),
        "{cached:?}"
    );
    let scores = json_lines(&out).pop().expect("a JSON line");
    assert_eq!(
        scores["classes"],
        serde_json::json!(["daisy", "sunflowers"])
    );
    let accuracy = scores["accuracy"].as_f64().expect("accuracy");
    // Scored on its own training photos (two easy classes): it must have learnt them.
    assert!(accuracy >= 0.9, "{scores}");
    assert_eq!(scores["confusion"].as_array().expect("matrix").len(), 2);
    let daisy = &scores["per_class"]["daisy"];
    for score in ["recall", "precision", "f1"] {
        assert!(
            daisy[score]
                .as_f64()
                .is_some_and(|v| (0.0..=1.0).contains(&v)),
            "{scores}"
        );
    }
    assert_eq!(daisy["photos"], 6);
    assert!(scores["mistakes"].is_array(), "{scores}");

    // `classify --head` answers in the trained classes.
    let daisy = data.path().join("daisy");
    let photo = std::fs::read_dir(&daisy)
        .expect("photos")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "jpg"))
        .expect("a daisy");
    let photo = photo.to_string_lossy();
    let out = afinar(&[
        "classify",
        "--head",
        &head_file,
        "--json",
        "--model",
        &model(),
        &photo,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = json_lines(&out).pop().expect("a JSON line");
    assert_eq!(line["top"][0]["label"], "daisy", "{line}");
    assert_eq!(line["top"].as_array().expect("top").len(), 2);

    // The default (best) recipe with single settings changed: augmented views, the head's
    // epochs, then the unfrozen blocks'; the recipe that ran is written as JSON.
    let tuned = data.path().join("tuned.safetensors");
    let tuned_file = tuned.to_string_lossy();
    let recipe = data.path().join("recipe.json");
    let recipe_file = recipe.to_string_lossy();
    let out = afinar(&[
        "train",
        "--data",
        &data_dir,
        "--out",
        &tuned_file,
        "--epochs",
        "3",
        "--unfreeze",
        "1",
        "--finetune-epochs",
        "2",
        "--recipe-out",
        &recipe_file,
        "--model",
        &model(),
        "--cache-dir",
        &cache_dir,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("train loss").count(), 5, "{stdout}");
    assert!(
        stdout.contains("after fine-tuning the last 1 blocks"),
        "{stdout}"
    );
    assert!(stdout.contains("kept epoch"), "{stdout}");
    let ran: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&recipe).expect("recipe file")).expect("JSON");
    assert_eq!(ran["augment"]["views"], 4, "{ran}");
    assert_eq!(ran["finetune"]["unfreeze"], 1, "{ran}");
    assert_eq!(ran["epochs"], 3, "{ran}");
    let out = afinar(&[
        "eval",
        "--head",
        &tuned_file,
        "--data",
        &data_dir,
        "--json",
        "--model",
        &model(),
        "--cache-dir",
        &cache_dir,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scores = json_lines(&out).pop().expect("a JSON line");
    assert!(
        scores["accuracy"].as_f64().expect("accuracy") >= 0.9,
        "{scores}"
    );
    exported_model_agrees(&tuned_file, data.path());
    head_opens_in_python(&tuned_file);

    // A folder with one class is refused with a message, not a panic.
    std::fs::remove_dir_all(data.path().join("sunflowers")).expect("remove");
    let out = afinar(&[
        "train",
        "--data",
        &data_dir,
        "--out",
        &head_file,
        "--model",
        &model(),
        "--no-cache",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 2"));
}

/// `afinar export` writes the fine-tuned classifier as a `.tflite` that LiteRT runs (where
/// `AFINAR_LITERT_PYTHON` names a Python that has it, as `scripts/test` sets) and that answers
/// as `afinar classify --head` does: to 1e-3 with every layer in float32 (`--float`), the
/// same class for every photo with the base's quantized layers kept (the default).
fn exported_model_agrees(head_file: &str, data: &std::path::Path) {
    let base = model();
    let photos: Vec<PathBuf> = ["daisy", "sunflowers"]
        .iter()
        .flat_map(|class| std::fs::read_dir(data.join(class)).expect("photos"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    let paths: Vec<String> = photos.iter().map(|p| p.to_string_lossy().into()).collect();
    // Float32 here too: what the `--float` export is held to within 1e-3.
    let mut args = vec![
        "classify",
        "--head",
        head_file,
        "--json",
        "--model",
        &base,
        "--arithmetic",
        "float",
    ];
    args.extend(paths.iter().map(String::as_str));
    let out = afinar(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Afinar's probabilities, in label order.
    let afinar_probs: Vec<[f32; 2]> = json_lines(&out)
        .iter()
        .map(|line| {
            let mut row = [0.0; 2];
            for p in line["top"].as_array().expect("top") {
                let class = usize::from(p["label"] == "sunflowers");
                row[class] = p["prob"].as_f64().expect("prob") as f32;
            }
            row
        })
        .collect();
    assert_eq!(afinar_probs.len(), photos.len());

    // The photos as the model sees them: uint8 pixels, and scaled for a float32 input.
    let weights =
        afinar::MobileNetV2Weights::from_tflite(&common::model_bytes(V1_QUANT)).expect("model");
    let (mut pixels, mut scaled) = (Vec::new(), Vec::new());
    for photo in &photos {
        let input = afinar::ModelInput::from_image_bytes(&std::fs::read(photo).expect("photo"))
            .expect("decodes");
        pixels.extend_from_slice(input.rgb());
        let mut values = vec![0.0; 224 * 224 * 3];
        input.scale_into(weights.input_scaling, &mut values);
        scaled.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }

    let mut sizes = Vec::new();
    let mut read_back = Vec::new();
    for float in [true, false] {
        let exported = data.join(if float { "float.tflite" } else { "kept.tflite" });
        let path = exported.to_string_lossy().into_owned();
        let mut args = vec![
            "export", "--head", head_file, "--out", &path, "--model", &base,
        ];
        if float {
            args.push("--float");
        }
        let out = afinar(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&exported).expect("exported model");
        sizes.push(bytes.len());
        assert_eq!(
            afinar::labels::labels_from_appended_zip(&bytes),
            Some(vec!["daisy".to_string(), "sunflowers".to_string()]),
            "the label list travels with the model"
        );
        // A valid TFLite flatbuffer with the image in and the two classes' probabilities out.
        let file =
            afinar_tflite_schema::tflite::root_as_model(&bytes).expect("a TFLite flatbuffer");
        let graph = file.subgraphs().expect("subgraphs").get(0);
        let tensors = graph.tensors().expect("tensors");
        let tensor = |index: i32| tensors.get(usize::try_from(index).expect("index"));
        let shape =
            |index: i32| -> Vec<i32> { tensor(index).shape().expect("shape").iter().collect() };
        let (input, output) = (
            graph.inputs().expect("inputs").get(0),
            graph.outputs().expect("outputs").get(0),
        );
        assert_eq!(shape(input), [1, 224, 224, 3]);
        assert_eq!(shape(output), [1, 2]);
        let float_input =
            tensor(input).type_() == afinar_tflite_schema::tflite::TensorType::FLOAT32;
        assert_eq!(float_input, float, "float32 input only for --float");
        // Afinar's own reader reads it back.
        let back = afinar::tflite::ExportedClassifier::from_tflite(&bytes).expect("read back");
        let classes = ["daisy".to_string(), "sunflowers".to_string()];
        assert_eq!(back.labels.as_deref(), Some(&classes[..]));
        assert_eq!((back.hidden.inputs, back.output.outputs), (1280, 2));
        read_back.push(back);
        // As a base model it is refused with what it is.
        let Err(err) = afinar::MobileNetV2Weights::from_tflite(&bytes) else {
            panic!("an export read as a base model");
        };
        assert!(
            err.to_string().contains("a classifier Afinar exported"),
            "{err}"
        );

        let Ok(python) = std::env::var("AFINAR_LITERT_PYTHON") else {
            common::skip_unless_required("LITERT", true, "AFINAR_LITERT_PYTHON is not set");
            continue;
        };
        let input_file = data.join("inputs.bin");
        let output_file = data.join("litert.f32");
        std::fs::write(&input_file, if float { &scaled } else { &pixels }).expect("inputs");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/litert_classify.py");
        let out = Command::new(python)
            .args([&script, &exported, &input_file, &output_file])
            .output()
            .expect("run LiteRT");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let litert: Vec<f32> = std::fs::read(&output_file)
            .expect("LiteRT's output")
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(litert.len(), 2 * photos.len());
        let mut worst = 0.0f32;
        for ((photo, want), got) in photos.iter().zip(&afinar_probs).zip(litert.chunks(2)) {
            let diff = (want[0] - got[0]).abs().max((want[1] - got[1]).abs());
            worst = worst.max(diff);
            if float {
                assert!(
                    diff <= 1e-3,
                    "{}: LiteRT {got:?}, Afinar {want:?}",
                    photo.display()
                );
            } else {
                assert_eq!(
                    want[0] > want[1],
                    got[0] > got[1],
                    "{}: LiteRT {got:?}, Afinar {want:?}",
                    photo.display()
                );
            }
        }
        println!(
            "LiteRT on the exported model ({}, {:.1} MB) agrees with Afinar on {} photos (max |Δp| {worst:.1e})",
            if float {
                "float32"
            } else {
                "the base's layers kept"
            },
            bytes.len() as f64 / 1e6,
            photos.len()
        );
    }
    assert!(
        sizes[1] < sizes[0],
        "the kept base is the smaller file: {sizes:?}"
    );
    // Both forms hold the same network: below the boundary the base's layers as the base file
    // has them, above it the fine-tuned ones (which differ from the base's), then the head.
    let [float, kept] = &read_back[..] else {
        panic!("two exports")
    };
    assert_eq!(kept.convs.len(), weights.convs.len());
    let mut changed = 0;
    for ((f, k), base) in float.convs.iter().zip(&kept.convs).zip(&weights.convs) {
        assert!(f.weight == k.weight && f.bias == k.bias);
        changed += usize::from(k.weight != base.weight);
    }
    // One block (3 convolutions) and the last 1×1 conv were fine-tuned.
    assert_eq!(changed, 4, "fine-tuned convolutions");
    assert!(float.hidden.weight == kept.hidden.weight && float.output.bias == kept.output.bias);
    // The uint8 input's quantization is the base's scaling (a float32 input's is only in the
    // TFLite metadata, which MediaPipe reads).
    assert_eq!(kept.input_scaling, weights.input_scaling);
}

/// The head file opens in Python's `safetensors` (where `AFINAR_LITERT_PYTHON` names a Python
/// that has it) with self-explaining tensor names and Afinar's metadata.
fn head_opens_in_python(head_file: &str) {
    let Ok(python) = std::env::var("AFINAR_LITERT_PYTHON") else {
        common::skip_unless_required(
            "LITERT",
            true,
            "AFINAR_LITERT_PYTHON (a Python with safetensors) is not set",
        );
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/read_head.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(head_file)
        .output()
        .expect("run Python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let tensors = &read["tensors"];
    assert_eq!(
        tensors["hidden.weight"],
        serde_json::json!([1280, 128]),
        "{read}"
    );
    assert_eq!(
        tensors["output.weight"],
        serde_json::json!([128, 2]),
        "{read}"
    );
    // One block unfrozen: MobileNetV2's block 16 (960 hidden channels) and the last conv.
    assert_eq!(
        tensors["top.blocks.0.depthwise.weight"],
        serde_json::json!([960, 1, 3, 3]),
        "{read}"
    );
    assert_eq!(
        tensors["top.last.bias"],
        serde_json::json!([1280]),
        "{read}"
    );
    assert_eq!(read["metadata"]["format"], "afinar-head-1", "{read}");
    let metadata: Value =
        serde_json::from_str(read["metadata"]["metadata"].as_str().expect("text"))
            .expect("metadata JSON");
    assert_eq!(
        metadata["classes"],
        serde_json::json!(["daisy", "sunflowers"])
    );
    assert_eq!(metadata["unfrozen_blocks"], 1);
    println!(
        "safetensors in Python reads the head: {} tensors",
        tensors.as_object().map_or(0, |t| t.len())
    );
}
