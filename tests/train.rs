//! Training a head on backbone features of real flower photos (a small subset), saving and
//! loading it, and refusing bad datasets.

mod common;

use std::path::PathBuf;

use afinar::dataset::{Dataset, DatasetError, Part, Sample};
use afinar::head::{self, HeadFileError, HeadMetadata};
use afinar::train::{LabelledFeatures, TrainConfig, TrainError, evaluate, train_head};
use afinar::{Classifier, ModelInput};
use common::{V1_QUANT, model_bytes, shared_dir};
use futures_lite::future::block_on;

const PER_CLASS: usize = 16;

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

struct Prepared {
    classifier: Classifier,
    features: Vec<f32>,
    labels: Vec<usize>,
    parts: Vec<Part>,
}

fn prepare() -> Prepared {
    let device = afinar::device::cpu();
    let classifier = Classifier::from_tflite(&model_bytes(V1_QUANT), None, &device).expect("model");
    let data = small_flowers();
    data.check().expect("a trainable dataset");
    let inputs: Vec<ModelInput> = data
        .samples
        .iter()
        .map(|s| {
            ModelInput::from_image_bytes(&std::fs::read(&s.path).expect("photo")).expect("decodes")
        })
        .collect();
    let features = block_on(classifier.features_async(&inputs)).expect("features");
    Prepared {
        classifier,
        features,
        labels: data.samples.iter().map(|s| s.class).collect(),
        parts: data.stratified_split(0.25, 7),
    }
}

fn select(p: &Prepared, part: Part) -> (Vec<f32>, Vec<usize>) {
    let mut f = Vec::new();
    let mut l = Vec::new();
    for (i, _) in p.parts.iter().enumerate().filter(|(_, q)| **q == part) {
        f.extend_from_slice(&p.features[i * 1280..(i + 1) * 1280]);
        l.push(p.labels[i]);
    }
    (f, l)
}

#[test]
fn training_lowers_the_loss_and_learns_the_flowers_and_survives_save_and_load() {
    let p = prepare();
    let (tf, tl) = select(&p, Part::Train);
    let (vf, vl) = select(&p, Part::Val);
    assert_eq!(vl.len(), 5 * 4, "a quarter of each class is held out");
    let train = LabelledFeatures {
        features: &tf,
        labels: &tl,
    };
    let val = LabelledFeatures {
        features: &vf,
        labels: &vl,
    };
    let device = afinar::device::cpu();
    let config = TrainConfig::new();
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
    // Chance is 0.2; 12 training photos per class gave 0.55 (seed 42, split seed 7).
    assert!(val_accuracy >= 0.4, "validation accuracy {val_accuracy}");
    assert!(last.train_accuracy > 0.9, "{last:?}");

    // Same seed, same result.
    let (_, again) =
        block_on(train_head(&config, 5, train, Some(val), &device, |_| true)).expect("trains");
    assert_eq!(again, reports);

    // Save → load gives the same predictions; another base model is refused.
    let metadata = HeadMetadata {
        classes: small_flowers().classes,
        base_model_sha256: p.classifier.model_sha256().to_string(),
        recipe: serde_json::to_value(format!("{config:?}")).expect("json"),
        preprocessing: head::PREPROCESSING.into(),
    };
    let bytes = block_on(head::save(&head, &metadata)).expect("saves");
    let (loaded, loaded_meta) =
        head::load(&bytes, Some(p.classifier.model_sha256()), &device).expect("loads");
    assert_eq!(loaded_meta, metadata);
    let before = block_on(evaluate(&head, val, &device)).expect("evaluates");
    let after = block_on(evaluate(&loaded, val, &device)).expect("evaluates");
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

#[test]
fn training_can_be_cancelled_and_a_diverging_loss_is_reported() {
    let features: Vec<f32> = (0..4 * 1280).map(|i| (i % 7) as f32).collect();
    let labels = [0, 1, 0, 1];
    let data = LabelledFeatures {
        features: &features,
        labels: &labels,
    };
    let device = afinar::device::cpu();
    let cancelled = block_on(train_head(
        &TrainConfig::new(),
        2,
        data,
        None,
        &device,
        |r| r.epoch < 2,
    ));
    assert_eq!(cancelled.err(), Some(TrainError::Cancelled));
    let wild = TrainConfig::new().with_learning_rate(1e30);
    let diverged = block_on(train_head(&wild, 2, data, None, &device, |_| true));
    assert!(
        matches!(diverged, Err(TrainError::NonFiniteLoss { .. })),
        "{diverged:?}"
    );
    let empty = LabelledFeatures {
        features: &[],
        labels: &[],
    };
    let none = block_on(train_head(
        &TrainConfig::new(),
        2,
        empty,
        None,
        &device,
        |_| true,
    ));
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
        classes: names(21),
        samples: vec![],
    };
    assert_eq!(
        many.check(),
        Err(DatasetError::TooManyClasses { found: 21 })
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
    let hashes = ["h1", "h2", "h1", "h3"].map(String::from);
    assert!(matches!(
        ok.check_duplicates(&hashes),
        Err(DatasetError::SamePhotoInTwoClasses { .. })
    ));
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
    assert_eq!((train, val), (1806, 695));
}
