//! Training a head on backbone features of real flower photos (a small subset), saving and
//! loading it, and refusing bad datasets.

mod common;

use std::path::PathBuf;

use afinar::architecture::boundary_shape;
use afinar::head::{self, HeadFileError, HeadMetadata, TrainedParts};
use afinar::model::kernels::CpuKernels;
use afinar::model::{ConvLayer, InvertedResidual};
use afinar::recipe::{FineTuneConfig, Recipe};
use afinar::train::finetune;
use afinar::train::{
    AuditConfig, AugmentedRows, BaseModel, Dataset, DatasetError, Disputed, LabelledFeatures, Part,
    Sample, Split, TrainError, TrainingSet, disputed_labels, evaluate, run, select_rows,
    train_head,
};
use afinar::{Arithmetic, Classifier, FeatureStage, MobileNetV2Weights, ModelInput};
use afinar_vocabulary::limits::MAX_CLASSES;
use common::{V1_QUANT, model_bytes, shared_dir};
use futures_lite::future::block_on;

const PER_CLASS: usize = 24;

fn flowers_dir() -> PathBuf {
    shared_dir().join("data/flower_photos")
}

/// The first `PER_CLASS` photos of each flower class.
fn small_flowers() -> Dataset {
    let full = Dataset::from_dir(&flowers_dir()).expect("flower_photos");
    let mut samples = Vec::new();
    for class in 0..full.classes.len() {
        samples.extend(
            full.samples
                .iter()
                .filter(|s| s.class == class)
                .take(PER_CLASS)
                .cloned(),
        );
    }
    Dataset {
        classes: full.classes,
        samples,
    }
}

/// Blocks the fine-tuning test unfreezes (the recipe's default).
const UNFREEZE: usize = 2;

struct Prepared {
    classifier: Classifier,
    inputs: Vec<ModelInput>,
    /// Activations below the last [`UNFREEZE`] blocks, one row per photo.
    boundary: Vec<f32>,
    /// Pooled features, computed from `boundary` through the frozen top.
    features: Vec<f32>,
    labels: Vec<usize>,
    parts: Vec<Part>,
}

fn prepare() -> Prepared {
    let device = afinar::device::cpu();
    // Float32 throughout: the fine-tuned top's pooled features (float32 on the boundary) are
    // held to the whole backbone's.
    let weights = MobileNetV2Weights::from_tflite(&model_bytes(V1_QUANT)).expect("model");
    let labels = weights.labels_or(None).expect("labels");
    let classifier = Classifier::with_cpu_path(
        &weights,
        labels,
        &device,
        CpuKernels::from_env(),
        Arithmetic::Float,
    );
    let data = small_flowers();
    data.check().expect("a trainable dataset");
    let inputs: Vec<ModelInput> = data
        .samples
        .iter()
        .map(|s| {
            ModelInput::from_image_bytes(&std::fs::read(&s.path).expect("photo")).expect("decodes")
        })
        .collect();
    let boundary =
        block_on(classifier.features(&inputs, FeatureStage::Boundary(UNFREEZE))).expect("boundary");
    let top = classifier.model().top(UNFREEZE);
    let features = block_on(finetune::pooled_features(&top, &boundary, &device)).expect("features");
    Prepared {
        classifier,
        inputs,
        boundary,
        features,
        labels: data.samples.iter().map(|s| s.class).collect(),
        parts: data.stratified_split(0.25, 7),
    }
}

fn select(p: &Prepared, part: Part) -> (Vec<f32>, Vec<usize>) {
    select_rows(&p.features, 1280, &p.labels, &p.parts, part)
}

#[test]
fn training_lowers_the_loss_and_learns_the_flowers_and_survives_save_and_load() {
    let p = prepare();
    let (tf, tl) = select(&p, Part::Train);
    let (vf, vl) = select(&p, Part::Val);
    assert_eq!(
        vl.len(),
        5 * PER_CLASS / 4,
        "a quarter of each class is held out"
    );
    let train = LabelledFeatures::new(&tf, &tl);
    let val = LabelledFeatures::new(&vf, &vl);
    let device = afinar::device::cpu();
    let config = Recipe::new();
    let (head, reports) =
        block_on(train_head(&config, 5, train, Some(val), &device, |_| true)).expect("trains");
    for r in &reports {
        println!(
            "epoch {}: train loss {:.3} acc {:.3}, val loss {:.3} acc {:.3}",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            r.val_loss.unwrap_or(f64::NAN),
            r.val_accuracy.unwrap_or(f64::NAN)
        );
    }
    let (first, last) = (&reports[0], &reports[reports.len() - 1]);
    assert!(
        last.train_loss < first.train_loss * 0.5,
        "{first:?} → {last:?}"
    );
    let val_accuracy = last.val_accuracy.expect("validation");
    // Chance is 0.2; 18 training photos per class gave 0.77 on the 30 held out (seed 42, split
    // seed 7, Keras initialization); the floor leaves 5 photos of margin.
    assert!(val_accuracy >= 0.6, "validation accuracy {val_accuracy}");
    assert!(last.train_accuracy > 0.9, "{last:?}");

    // Same seed, same result.
    let (_, again) =
        block_on(train_head(&config, 5, train, Some(val), &device, |_| true)).expect("trains");
    assert_eq!(again, reports);

    // Save → load gives the same predictions; another base model is refused.
    let metadata = HeadMetadata {
        classes: small_flowers().classes,
        base_model_sha256: p.classifier.model_sha256().to_string(),
        recipe: Some(config.clone()),
        split: "stratified 0.25".into(),
        preprocessing: afinar::InputScaling::MOBILENET.describe(),
        unfrozen_blocks: 0,
        trained: None,
    };
    let parts = TrainedParts { head, top: None };
    let bytes = block_on(head::save(&parts, &metadata)).expect("saves");
    let (loaded, loaded_meta) =
        head::load(&bytes, Some(p.classifier.model_sha256()), &device).expect("loads");
    assert_eq!(loaded_meta, metadata);
    assert!(loaded.top.is_none());
    let before = block_on(evaluate(&parts.head, val, &device)).expect("evaluates");
    let after = block_on(evaluate(&loaded.head, val, &device)).expect("evaluates");
    assert_eq!(before, after);
    assert!(matches!(
        head::load(&bytes, Some("0000"), &device),
        Err(HeadFileError::OtherBaseModel { .. })
    ));
    assert!(matches!(
        head::load(b"not a head", None, &device),
        Err(HeadFileError::Unreadable(_))
    ));
}

/// Photos put in the wrong class are the ones the label check disputes first, each with its
/// real class suggested: every photo is scored by a head trained without it.
#[test]
fn photos_in_the_wrong_class_lead_the_labels_to_check() {
    let p = prepare();
    let device = afinar::device::cpu();
    // Two daisies (class 0) filed as roses (2), two sunflowers (3) filed as tulips (4).
    let moved = [
        (3, 2),
        (11, 2),
        (3 * PER_CLASS + 5, 4),
        (3 * PER_CLASS + 17, 4),
    ];
    let mut labels = p.labels.clone();
    for &(photo, class) in &moved {
        labels[photo] = class;
    }
    let all: Vec<usize> = (0..labels.len()).collect();
    let config = AuditConfig::new();
    let disputed = block_on(disputed_labels(
        &config,
        &p.features,
        &labels,
        &all,
        5,
        &device,
    ))
    .expect("checks");
    for d in disputed.iter().take(8) {
        println!(
            "photo {} labelled {} → {} ({:.2}; its label {:.2})",
            d.sample, d.label, d.suggested, d.confidence, d.label_probability
        );
    }
    assert!(
        disputed
            .windows(2)
            .all(|w| w[0].confidence >= w[1].confidence)
    );
    // Out of 120 photos, the first few disputes are mostly the moved ones, each with its real
    // class suggested. (Seen here: two of the four lead the list at 0.999; the heads put the
    // other two in the class they were moved to, which was not looked into.)
    let leading: Vec<&Disputed> = disputed
        .iter()
        .take(4)
        .filter(|d| moved.iter().any(|&(photo, _)| photo == d.sample))
        .collect();
    assert!(
        leading.len() >= 2,
        "moved photos among the first 4: {leading:?}"
    );
    for d in leading {
        assert_eq!(
            d.suggested, p.labels[d.sample],
            "its real class is suggested"
        );
        assert!(d.confidence > 0.9 && d.label_probability < 0.05, "{d:?}");
    }
    // Most photos are where they belong.
    assert!(
        disputed.len() < labels.len() / 3,
        "{} disputed",
        disputed.len()
    );
    // A run says which photos it used: all of them here (none is in two classes).
    let set = TrainingSet {
        dataset: small_flowers(),
        hashes: (0..labels.len()).map(|i| format!("{i}")).collect(),
        pooled: Some(p.features.clone()),
        boundary: None,
        augmented: None,
        split: Split::Stratified,
    };
    let trained = block_on(run(
        &set,
        &Recipe::new(),
        p.classifier.base(),
        &device,
        |_| true,
    ))
    .expect("trains");
    assert_eq!(trained.used_samples, all);
}

fn conv_weights(layer: &ConvLayer) -> Vec<f32> {
    let mut values: Vec<f32> = layer
        .conv
        .weight
        .val()
        .into_data()
        .try_to_vec()
        .expect("f32");
    if let Some(bias) = &layer.conv.bias {
        values.extend(bias.val().into_data().try_to_vec::<f32>().expect("f32"));
    }
    values
}

/// Every conv of a block, in order.
fn block_convs(block: &InvertedResidual) -> Vec<&ConvLayer> {
    block
        .expand
        .iter()
        .chain([&block.depthwise, &block.project])
        .collect()
}

#[test]
fn fine_tuning_changes_only_the_unfrozen_weights_and_survives_save_and_load() {
    let p = prepare();
    let device = afinar::device::cpu();
    // The cached boundary gives the same pooled features as the whole backbone.
    let direct =
        block_on(p.classifier.features(&p.inputs[..4], FeatureStage::Pooled)).expect("features");
    let worst = direct
        .iter()
        .zip(&p.features)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "pooled features differ by {worst}");

    let (tf, tl) = select(&p, Part::Train);
    let (vf, vl) = select(&p, Part::Val);
    let head_config = Recipe::new().with_epochs(5);
    let (head, head_reports) = block_on(train_head(
        &head_config,
        5,
        LabelledFeatures::new(&tf, &tl),
        Some(LabelledFeatures::new(&vf, &vl)),
        &device,
        |_| true,
    ))
    .expect("trains the head");
    let width: usize = boundary_shape(UNFREEZE).iter().product();
    let (tb, tbl) = select_rows(&p.boundary, width, &p.labels, &p.parts, Part::Train);
    let (vb, vbl) = select_rows(&p.boundary, width, &p.labels, &p.parts, Part::Val);
    let val = LabelledFeatures::new(&vb, &vbl);
    let base = p.classifier.model();
    let config = FineTuneConfig::new().with_epochs(2);
    let (tuned, reports, _) = block_on(finetune::fine_tune(
        &head_config,
        &config,
        base.top(UNFREEZE),
        head.clone(),
        LabelledFeatures::new(&tb, &tbl),
        Some(val),
        &device,
        |_| true,
    ))
    .expect("fine-tunes");
    for r in &reports {
        println!(
            "fine-tune epoch {}: train loss {:.4} acc {:.3}, val loss {:.4} acc {:.3}",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            r.val_loss.unwrap_or(f64::NAN),
            r.val_accuracy.unwrap_or(f64::NAN)
        );
    }
    assert_eq!(reports.iter().map(|r| r.epoch).collect::<Vec<_>>(), [6, 7]);
    let head_last = head_reports.last().expect("reports").train_loss;
    let tuned_last = reports.last().expect("reports").train_loss;
    assert!(
        tuned_last < head_last,
        "fine-tuning went on lowering the loss: {head_last} → {tuned_last}"
    );

    // Put the tuned top back into the backbone: everything below the boundary is untouched,
    // every conv above it (and the head) moved.
    let combined = base.clone().with_top(tuned.top.clone());
    assert_eq!(conv_weights(&combined.stem), conv_weights(&base.stem));
    let frozen = base.blocks.len() - UNFREEZE;
    for (i, (before, after)) in base.blocks.iter().zip(&combined.blocks).enumerate() {
        for (a, b) in block_convs(before).into_iter().zip(block_convs(after)) {
            let (a, b) = (conv_weights(a), conv_weights(b));
            if i < frozen {
                assert_eq!(a, b, "frozen block {i} changed");
            } else {
                assert_ne!(a, b, "unfrozen block {i} did not train");
            }
        }
    }
    assert_ne!(conv_weights(&combined.last), conv_weights(&base.last));
    let head_weights = |h: &afinar::head::Head| -> Vec<f32> {
        h.hidden.weight.val().into_data().try_to_vec().expect("f32")
    };
    assert_ne!(head_weights(&tuned.head), head_weights(&head));

    // Save → load keeps the tuned top: the same scores and the same predictions on photos.
    let before = block_on(finetune::evaluate(&tuned, val, &device)).expect("evaluates");
    let metadata = HeadMetadata {
        classes: small_flowers().classes,
        base_model_sha256: p.classifier.model_sha256().to_string(),
        recipe: Some(head_config.clone().with_finetune(Some(config.clone()))),
        split: "stratified 0.25".into(),
        preprocessing: afinar::InputScaling::MOBILENET.describe(),
        unfrozen_blocks: UNFREEZE,
        trained: None,
    };
    let parts = TrainedParts {
        head: tuned.head.clone(),
        top: Some(tuned.top.clone()),
    };
    let bytes = block_on(head::save(&parts, &metadata)).expect("saves");
    let (loaded, _) =
        head::load(&bytes, Some(p.classifier.model_sha256()), &device).expect("loads");
    assert_eq!(loaded.unfrozen(), UNFREEZE);
    let reloaded = finetune::FineTuned {
        top: loaded.top.clone().expect("top"),
        head: loaded.head.clone(),
    };
    let after = block_on(finetune::evaluate(&reloaded, val, &device)).expect("evaluates");
    assert_eq!(before, after);
    let photos = &p.inputs[..3];
    let classes = &metadata.classes;
    let a = block_on(p.classifier.classify_trained(photos, &parts, classes, 2));
    let b = block_on(p.classifier.classify_trained(photos, &loaded, classes, 2));
    assert_eq!(a.expect("classifies"), b.expect("classifies"));
}

/// Mean absolute change of a block's weights.
fn mean_change(before: &InvertedResidual, after: &InvertedResidual) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for (a, b) in block_convs(before).into_iter().zip(block_convs(after)) {
        for (x, y) in conv_weights(a).iter().zip(conv_weights(b)) {
            sum += f64::from((x - y).abs());
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

#[test]
fn a_deeper_unfreeze_trains_exactly_its_blocks_the_deeper_ones_at_lower_rates() {
    const DEEP: usize = 4;
    let device = afinar::device::cpu();
    let classifier = Classifier::from_tflite(&model_bytes(V1_QUANT), None, &device).expect("model");
    let data = small_flowers();
    let picked: Vec<&Sample> = data.samples.iter().step_by(4).collect();
    let inputs: Vec<ModelInput> = picked
        .iter()
        .map(|s| {
            ModelInput::from_image_bytes(&std::fs::read(&s.path).expect("photo")).expect("decodes")
        })
        .collect();
    let labels: Vec<usize> = picked.iter().map(|s| s.class).collect();
    let boundary =
        block_on(classifier.features(&inputs, FeatureStage::Boundary(DEEP))).expect("boundary");
    let base = classifier.model();
    let pooled = block_on(finetune::pooled_features(
        &base.top(DEEP),
        &boundary,
        &device,
    ))
    .expect("pooled");
    let recipe = Recipe::new().with_epochs(2);
    let rows = LabelledFeatures::new(&pooled, &labels);
    let (head, _) = block_on(train_head(&recipe, 5, rows, None, &device, |_| true)).expect("head");
    let stage = FineTuneConfig::new()
        .with_unfreeze(DEEP)
        .with_epochs(2)
        .with_learning_rate(1e-3)
        .with_layer_decay(0.5);
    let (tuned, reports, kept) = block_on(finetune::fine_tune(
        &recipe,
        &stage,
        base.top(DEEP),
        head,
        LabelledFeatures::new(&boundary, &labels),
        None,
        &device,
        |_| true,
    ))
    .expect("fine-tunes");
    assert_eq!(reports.len(), 2);
    assert_eq!(kept.epoch, 4, "without validation, the last epoch is kept");
    assert_eq!(tuned.top.blocks.len(), DEEP);

    let combined = base.clone().with_top(tuned.top.clone());
    let frozen = base.blocks.len() - DEEP;
    let mut changes = Vec::new();
    for (i, (before, after)) in base.blocks.iter().zip(&combined.blocks).enumerate() {
        let change = mean_change(before, after);
        if i < frozen {
            assert_eq!(change, 0.0, "frozen block {i} changed");
        } else {
            assert!(change > 0.0, "unfrozen block {i} did not train");
            changes.push(change);
        }
    }
    println!("mean weight change per unfrozen block, deepest first: {changes:?}");
    assert!(
        changes[0] < changes[DEEP - 1] / 2.0,
        "the deepest block trains at 1/8 of the top one's rate: {changes:?}"
    );
}

#[test]
fn training_can_be_cancelled_and_a_diverging_loss_is_reported() {
    let features: Vec<f32> = (0..4 * 1280).map(|i| (i % 7) as f32).collect();
    let labels = [0, 1, 0, 1];
    let data = LabelledFeatures::new(&features, &labels);
    let device = afinar::device::cpu();
    let cancelled = block_on(train_head(&Recipe::new(), 2, data, None, &device, |r| {
        r.epoch < 2
    }));
    assert_eq!(cancelled.err(), Some(TrainError::Cancelled));
    let wild = Recipe::new().with_learning_rate(1e30);
    let diverged = block_on(train_head(&wild, 2, data, None, &device, |_| true));
    assert!(
        matches!(diverged, Err(TrainError::NonFiniteLoss { .. })),
        "{diverged:?}"
    );
    let empty = LabelledFeatures::new(&[], &[]);
    let none = block_on(train_head(&Recipe::new(), 2, empty, None, &device, |_| {
        true
    }));
    assert_eq!(none.err(), Some(TrainError::NoTrainingData));
}

fn sample(path: &str, class: usize) -> Sample {
    Sample {
        path: path.into(),
        class,
    }
}

#[test]
fn bad_datasets_get_clear_messages() {
    let names = |n: usize| (0..n).map(|i| format!("class {i}")).collect::<Vec<_>>();
    let one_class = Dataset {
        classes: names(1),
        samples: vec![sample("a", 0), sample("b", 0)],
    };
    assert_eq!(
        one_class.check(),
        Err(DatasetError::TooFewClasses { found: 1 })
    );
    let many = Dataset {
        classes: names(MAX_CLASSES + 1),
        samples: vec![],
    };
    assert_eq!(
        many.check(),
        Err(DatasetError::TooManyClasses {
            found: MAX_CLASSES + 1
        })
    );
    let empty = Dataset {
        classes: names(2),
        samples: vec![sample("a", 0), sample("b", 0)],
    };
    assert_eq!(
        empty.check(),
        Err(DatasetError::EmptyClass {
            class: "class 1".into()
        })
    );
    let lonely = Dataset {
        classes: names(2),
        samples: vec![sample("a", 0), sample("b", 0), sample("c", 1)],
    };
    assert_eq!(
        lonely.check(),
        Err(DatasetError::TooFewPhotos {
            class: "class 1".into(),
            found: 1
        })
    );
    let twice = Dataset {
        classes: vec!["Roses".into(), "roses".into()],
        samples: vec![
            sample("a", 0),
            sample("b", 0),
            sample("c", 1),
            sample("d", 1),
        ],
    };
    assert_eq!(
        twice.check(),
        Err(DatasetError::DuplicateClass("roses".into()))
    );
    let ok = Dataset {
        classes: names(2),
        samples: vec![
            sample("a", 0),
            sample("b", 0),
            sample("c", 1),
            sample("d", 1),
        ],
    };
    assert_eq!(ok.check(), Ok(()));
    // The same photo in two classes stays in the first only; a copy within a class stays.
    let hashes = ["h1", "h1", "h1", "h3"].map(String::from);
    let left_out = ok.cross_class_duplicates(&hashes);
    assert_eq!(left_out.len(), 1, "{left_out:?}");
    assert_eq!(left_out[0].row, 2);
    assert!(
        left_out[0]
            .reason
            .contains("c is the same photo as a in “class 0”"),
        "{}",
        left_out[0].reason
    );
    assert_eq!(ok.without(&[2].into()).counts(), [2, 1]);
    let m = DatasetError::TooFewPhotos {
        class: "tulips".into(),
        found: 1,
    }
    .to_string();
    assert!(m.contains("tulips") && m.contains("at least 2"), "{m}");
}

#[test]
fn the_split_is_stratified_seeded_and_can_come_from_the_csv() {
    let data = Dataset::from_dir(&flowers_dir()).expect("flower_photos");
    assert_eq!(
        data.classes,
        ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    );
    let a = data.stratified_split(0.2, 1);
    assert_eq!(a, data.stratified_split(0.2, 1));
    assert_ne!(a, data.stratified_split(0.2, 2));
    for (class, count) in data.counts().into_iter().enumerate() {
        let val = data
            .samples
            .iter()
            .zip(&a)
            .filter(|(s, p)| s.class == class && **p == Part::Val)
            .count();
        let expected = (count as f64 * 0.2).round() as usize;
        assert_eq!(val, expected, "class {class}");
    }
    let csv =
        std::fs::read_to_string(shared_dir().join("data/flower_photos_split.csv")).expect("csv");
    let parts = data
        .split_from_csv(&csv, &shared_dir().join("data"))
        .expect("every photo is listed");
    let train = parts.iter().filter(|p| **p == Part::Train).count();
    let val = parts.iter().filter(|p| **p == Part::Val).count();
    // flower_photos_split.csv as shipped: the whole train split (2,775) and validation (695).
    assert_eq!((train, val), (2775, 695));
}

/// A training set as the page's worker hands it to the pipeline: `per_class` photos per
/// class, features in separable clusters, distinct photo hashes, named photos.
fn page_set(per_class: &[usize]) -> TrainingSet {
    let classes: Vec<String> = (0..per_class.len()).map(|c| format!("class {c}")).collect();
    let mut samples = Vec::new();
    let mut features = Vec::new();
    let mut hashes = Vec::new();
    for (class, &n) in per_class.iter().enumerate() {
        for i in 0..n {
            samples.push(sample(&format!("{class}-{i}.jpg"), class));
            features.extend((0..1280).map(|j| {
                (if j % per_class.len() == class {
                    1.0
                } else {
                    0.0
                }) + (i as f32) * 0.01
            }));
            hashes.push(format!("{class}-{i}"));
        }
    }
    TrainingSet {
        dataset: Dataset { classes, samples },
        hashes,
        pooled: Some(features),
        boundary: None,
        augmented: None,
        split: Split::Stratified,
    }
}

fn base(network: &afinar::MobileNetV2) -> BaseModel<'_> {
    BaseModel {
        network,
        sha256: "sha",
        input_scaling: afinar::InputScaling::MOBILENET,
    }
}

#[test]
fn a_page_training_run_trains_and_refuses_bad_input_with_clear_messages() {
    let device = afinar::device::cpu();
    let network = afinar::MobileNetV2Config::new().init(&device);
    let recipe = Recipe::new();
    let go = |set: &TrainingSet, recipe: &Recipe| {
        block_on(run(set, recipe, base(&network), &device, |_| true))
    };

    let trained = go(&page_set(&[6, 6, 6]), &recipe).expect("trains");
    assert_eq!(trained.epochs.len(), 10);
    assert_eq!(
        trained.val_samples.len(),
        3,
        "one validation photo per class"
    );
    let accuracy = trained.scores.as_ref().map(|s| s.accuracy);
    assert_eq!(accuracy, Some(1.0), "{:?}", trained.scores);
    assert!(trained.parts.top.is_none());
    assert!(trained.left_out.is_empty());
    let (loaded, metadata) = head::load(&trained.head_file, Some("sha"), &device).expect("loads");
    assert_eq!(metadata.classes, trained.metadata.classes);
    assert_eq!(metadata.recipe.map(|r| r.epochs), Some(recipe.epochs));
    assert_eq!(
        metadata.preprocessing,
        afinar::InputScaling::MOBILENET.describe()
    );
    assert!(metadata.preprocessing.contains("(p - 127.5) / 127.5"));
    assert_eq!(loaded.head.num_classes(), 3);

    let message = |set: &TrainingSet, recipe: &Recipe| match go(set, recipe) {
        Ok(_) => panic!("trained on a bad set"),
        Err(e) => e.to_string(),
    };
    assert!(message(&page_set(&[6, 1]), &recipe).contains("“class 1” has 1 photo(s)"));
    assert!(message(&page_set(&[6, 0]), &recipe).contains("“class 1” has no photos"));
    let too_many = vec![2; MAX_CLASSES + 1];
    assert!(message(&page_set(&too_many), &recipe).contains(&format!("at most {MAX_CLASSES}")));
    let wild = Recipe::new().with_learning_rate(1e30);
    assert!(message(&page_set(&[4, 4]), &wild).contains("try a lower learning rate"));
    let tune = Recipe::new().with_finetune(Some(FineTuneConfig::new()));
    assert!(message(&page_set(&[4, 4]), &tune).contains("activations for fine-tuning are missing"));
    let cancelled = block_on(run(
        &page_set(&[4, 4]),
        &recipe,
        base(&network),
        &device,
        |e| e.epoch < 3,
    ));
    assert!(cancelled.is_err_and(|e| e.to_string().contains("cancelled")));

    // The same photo in two classes: used in the first class only, said, and training goes on.
    let mut twice = page_set(&[3, 3]);
    twice.hashes[4] = twice.hashes[0].clone();
    let trained = go(&twice, &recipe).expect("trains without the second copy");
    assert_eq!(trained.left_out.len(), 1);
    assert_eq!(trained.left_out[0].row, 4);
    let reason = &trained.left_out[0].reason;
    assert!(
        reason.contains("1-1.jpg is the same photo as 0-0.jpg in “class 0”"),
        "{reason}"
    );
    assert!(!trained.val_samples.contains(&4));
    // But a class left with too few photos is still refused.
    let mut emptied = page_set(&[3, 2]);
    emptied.hashes[3] = emptied.hashes[0].clone();
    assert!(message(&emptied, &recipe).contains("“class 1” has 1 photo(s)"));
}

/// flower_photos as shipped has one photo in two classes (a rose among the tulips, byte for
/// byte the same file). The run keeps it in roses, the first class it was added to, names the
/// tulips copy, and trains.
#[test]
fn the_flowers_duplicate_is_left_out_of_the_later_class_and_training_goes_on() {
    let device = afinar::device::cpu();
    let classifier = Classifier::from_tflite(&model_bytes(V1_QUANT), None, &device).expect("model");
    let dir = flowers_dir();
    let pair = "15922772266_1167a06620.jpg";
    let full = Dataset::from_dir(&dir).expect("flower_photos");
    let classes = vec!["roses".to_string(), "tulips".to_string()];
    let mut samples = Vec::new();
    for (class, name) in classes.iter().enumerate() {
        let folder = &full.classes.iter().position(|c| c == name).expect("class");
        let others = full
            .samples
            .iter()
            .filter(|s| s.class == *folder && !s.path.ends_with(pair))
            .take(4);
        samples.extend(others.map(|s| sample(&s.path.to_string_lossy(), class)));
        samples.push(sample(&dir.join(name).join(pair).to_string_lossy(), class));
    }
    let bytes: Vec<Vec<u8>> = samples
        .iter()
        .map(|s| std::fs::read(&s.path).expect("photo"))
        .collect();
    assert_eq!(bytes[4], bytes[9], "the shipped pair is the same file");
    let inputs: Vec<ModelInput> = bytes
        .iter()
        .map(|b| ModelInput::from_image_bytes(b).expect("decodes"))
        .collect();
    let set = TrainingSet {
        dataset: Dataset { classes, samples },
        hashes: bytes
            .iter()
            .map(|b| afinar::preprocess::sha256_hex(b))
            .collect(),
        pooled: Some(
            block_on(classifier.features(&inputs, FeatureStage::Pooled)).expect("features"),
        ),
        boundary: None,
        augmented: None,
        split: Split::Stratified,
    };
    let recipe = Recipe::new().with_epochs(3).with_val_fraction(0.25);
    let trained = block_on(run(&set, &recipe, classifier.base(), &device, |_| true))
        .expect("trains on the folder as shipped");
    assert_eq!(trained.left_out.len(), 1, "{:?}", trained.left_out);
    assert_eq!(trained.left_out[0].row, 9);
    let reason = &trained.left_out[0].reason;
    assert!(
        reason.contains(&format!("tulips/{pair}")) && reason.contains("used in “roses” only"),
        "{reason}"
    );
    assert_eq!(trained.epochs.len(), 3);
}

/// A set whose validation photos are labelled the other way round from the training photos:
/// the more the head learns, the worse validation gets.
fn worsening_set() -> TrainingSet {
    let mut set = page_set(&[8, 8]);
    let parts: Vec<Part> = (0..16)
        .map(|i| if i % 8 < 2 { Part::Val } else { Part::Train })
        .collect();
    let samples = &mut set.dataset.samples;
    for (sample, part) in samples.iter_mut().zip(&parts) {
        if *part == Part::Val {
            sample.class = 1 - sample.class;
        }
    }
    set.split = Split::Fixed {
        parts,
        name: "fixed".into(),
    };
    set
}

#[test]
fn the_best_epoch_is_kept_and_patience_stops_a_stage_early() {
    let device = afinar::device::cpu();
    let network = afinar::MobileNetV2Config::new().init(&device);
    let set = worsening_set();
    let recipe = Recipe::new()
        .with_epochs(12)
        .with_learning_rate(3e-4)
        .with_patience(Some(3));
    let trained = block_on(run(&set, &recipe, base(&network), &device, |_| true)).expect("trains");
    let losses: Vec<f64> = trained.epochs.iter().filter_map(|e| e.val_loss).collect();
    assert!(
        losses.windows(2).all(|w| w[1] > w[0]),
        "validation gets worse every epoch: {losses:?}"
    );
    assert_eq!(trained.kept_epoch, 1, "the first epoch scored best");
    assert_eq!(trained.epochs.len(), 4, "stopped 3 epochs after the best");
    let kept = &trained.epochs[0];
    let scores = trained.scores.as_ref().expect("validation scores");
    assert_eq!(Some(scores.accuracy), kept.val_accuracy);
    assert!(
        (scores.loss - losses[0]).abs() < 1e-6,
        "{} vs {}",
        scores.loss,
        losses[0]
    );

    let last = recipe.with_keep_best(false).with_patience(None);
    let trained = block_on(run(&set, &last, base(&network), &device, |_| true)).expect("trains");
    assert_eq!((trained.kept_epoch, trained.epochs.len()), (12, 12));
}

#[test]
fn augmented_views_are_trained_on_and_checked() {
    let device = afinar::device::cpu();
    let network = afinar::MobileNetV2Config::new().init(&device);
    // The plain training rows look like the other class; only the augmented views show each
    // photo's own. Validation rows (always plain) are the photos' own.
    let mut set = page_set(&[8, 8]);
    let plain = set.pooled.take().expect("features");
    let rows: Vec<&[f32]> = plain.chunks(1280).collect();
    let parts: Vec<Part> = (0..16)
        .map(|i| if i % 8 < 2 { Part::Val } else { Part::Train })
        .collect();
    let views = 4;
    let mut pooled = Vec::new();
    let mut augmented = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let other = rows[(i + 8) % 16];
        pooled.extend_from_slice(if parts[i] == Part::Val { row } else { other });
        for _ in 0..views {
            augmented.extend(row.iter().map(|v| v * 1.1));
        }
    }
    set.pooled = Some(pooled);
    set.split = Split::Fixed {
        parts,
        name: "fixed".into(),
    };
    // The last epoch, not the best: a lucky first epoch must not hide what was learnt.
    let recipe = Recipe::new().with_epochs(15).with_keep_best(false);
    let go = |set: &TrainingSet| block_on(run(set, &recipe, base(&network), &device, |_| true));
    let accuracy = |set: &TrainingSet| go(set).expect("trains").scores.expect("scores").accuracy;
    assert_eq!(
        accuracy(&set),
        0.0,
        "the plain rows teach the wrong classes"
    );
    set.augmented = Some(AugmentedRows {
        views,
        pooled: Some(augmented.clone()),
        boundary: None,
    });
    assert_eq!(accuracy(&set), 1.0, "learnt from the views");

    augmented.pop();
    set.augmented = Some(AugmentedRows {
        views,
        pooled: Some(augmented),
        boundary: None,
    });
    let refused = go(&set).expect_err("views of the wrong size");
    assert!(refused.to_string().contains("augmented views"), "{refused}");
}

/// The browser benchmark's copy of the ladder (`www/bench/recipes.json`, which
/// `bench/browser-recipe.mjs` trains the page's worker with) is the protocol's.
#[test]
fn the_browser_benchmarks_recipes_are_the_ladders() {
    use afinar_vocabulary::{RecipeName, TrainSettings};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/www/bench/recipes.json");
    let text = std::fs::read_to_string(path).expect("www/bench/recipes.json");
    let copy: std::collections::BTreeMap<String, TrainSettings> =
        serde_json::from_str(&text).expect("recipe settings");
    for name in [RecipeName::Quick, RecipeName::Better, RecipeName::Best] {
        let key = serde_json::to_value(name).expect("a name");
        let key = key.as_str().expect("a string");
        let ladder = TrainSettings::named(name);
        assert_eq!(
            copy.get(key),
            Some(&ladder),
            "{path} is out of step; {key} is now {}",
            serde_json::to_string(&ladder).unwrap_or_default()
        );
    }
}
