use crate::project::{LastRun, Manifest};
use crate::{RecipeName, RowsNeeded, RunScores, TrainSettings, budget, defaults};

#[test]
fn the_ladder_climbs_from_the_defaults() {
    let quick = TrainSettings::named(RecipeName::Quick);
    assert_eq!(quick, TrainSettings::default());
    assert_eq!((quick.views, quick.unfreeze), (0, None));
    let better = TrainSettings::named(RecipeName::Better);
    assert_eq!(better.views, defaults::AUGMENTED_VIEWS);
    assert!(better.cosine_decay && better.warmup_epochs > 0);
    let best = TrainSettings::named(RecipeName::Best);
    assert_eq!(best.unfreeze, Some(defaults::BEST_UNFREEZE));
    assert_eq!(best.views, better.views);
    assert_eq!(
        best.total_epochs(),
        defaults::BETTER_EPOCHS + defaults::BEST_FINETUNE_EPOCHS
    );
}

#[test]
fn the_page_picks_the_best_recipe_that_fits_its_time() {
    let seconds = |name| TrainSettings::named(name).estimated_seconds(1000, 1);
    assert!(seconds(RecipeName::Quick) < seconds(RecipeName::Better));
    assert!(seconds(RecipeName::Better) < seconds(RecipeName::Best));
    let pick = |photos| TrainSettings::fitting(photos, budget::PAGE_SECONDS, 1).recipe;
    assert_eq!(pick(50), RecipeName::Best);
    assert_eq!(pick(1_000_000), RecipeName::Quick);
    // Photos prepared and fine-tuned on more workers leave time for more: the flowers' 3,470
    // photos get *best* on two workers, a lesser recipe on one.
    let on = |workers| TrainSettings::fitting(3470, budget::PAGE_SECONDS, workers).recipe;
    assert_ne!(on(1), RecipeName::Best);
    assert_eq!(on(2), RecipeName::Best);
    let best = TrainSettings::named(RecipeName::Best);
    assert!(best.estimated_seconds(1000, 2) < best.estimated_seconds(1000, 1));
    assert_eq!(
        best.estimated_seconds(1000, 0),
        best.estimated_seconds(1000, 1)
    );
    // While the page picks, the user's seed and validation share stay.
    let auto = TrainSettings {
        auto: true,
        seed: 7,
        val_fraction: 0.3,
        ..TrainSettings::default()
    };
    let effective = auto.effective(50, 1);
    assert_eq!(effective.recipe, RecipeName::Best);
    assert_eq!((effective.seed, effective.val_fraction), (7, 0.3));
    // Settings the user chose are used as they are.
    let chosen = TrainSettings::named(RecipeName::Quick);
    assert_eq!(chosen.effective(50, 1), chosen);
}

#[test]
fn prepared_rows_serve_a_recipe_only_with_its_boundary_and_views() {
    let best = TrainSettings::named(RecipeName::Best).rows_needed();
    let plain = RowsNeeded::default();
    assert!(best.serves(&plain));
    assert!(best.serves(&best));
    assert!(!plain.serves(&best));
    let other_seed = RowsNeeded {
        seed: best.seed + 1,
        ..best
    };
    assert!(!other_seed.serves(&best));
    assert!(best.check().is_ok());
    let too_many = RowsNeeded {
        views: crate::limits::MAX_VIEWS + 1,
        ..plain
    };
    assert!(too_many.check().unwrap_err().contains("augmented views"));
}

/// A manifest written before the scores had a type of their own (they were the page's
/// training message, head file included) still reads.
#[test]
fn a_manifest_whose_scores_carry_the_old_message_fields_reads() {
    let json = r#"{
        "format": "afinar-project", "version": 1, "written_by": "afinar 0.1.0",
        "classes": [{"name": "a", "photos": [{"name": "x.jpg", "file": "photos/0/x.jpg"}]}],
        "settings": {}, "head": "head.safetensors",
        "last_run": {"rows": [0], "outcome": {
            "classes": ["a", "b"], "head_file": [], "val_rows": [0], "val_accuracy": 1.0,
            "frozen_val_accuracy": null, "per_class": [1.0, 0.0], "confusion": [[1, 0], [0, 0]],
            "epochs": [], "backend": "Cpu", "train_ms": 12.5
        }}
    }"#;
    let manifest: Manifest = serde_json::from_str(json).expect("reads");
    let LastRun { outcome, rows } = manifest.last_run.expect("a last run");
    assert_eq!(rows, [0]);
    let RunScores {
        classes,
        val_accuracy,
        train_ms,
        ..
    } = outcome;
    assert_eq!(
        (classes.len(), val_accuracy, train_ms),
        (2, Some(1.0), 12.5)
    );
}

#[test]
fn photo_workers_follow_the_cores_within_memory_and_limits() {
    use crate::limits::{MAX_PHOTO_WORKERS, automatic_photo_workers as workers};
    assert_eq!(workers(Some(2.0), None), 2);
    assert_eq!(workers(Some(16.0), Some(8.0)), MAX_PHOTO_WORKERS);
    // A phone with 8 cores and 2 GB: two workers per GB.
    assert_eq!(workers(Some(8.0), Some(2.0)), 4);
    assert_eq!(workers(Some(8.0), Some(0.25)), 1);
    // Nothing reported, or nonsense: one worker.
    assert_eq!(workers(None, None), 1);
    assert_eq!(workers(Some(f64::NAN), Some(-1.0)), 1);
    assert_eq!(workers(Some(0.0), None), 1);
}

#[test]
fn the_most_confused_pairs_come_largest_first_without_the_diagonal() {
    use crate::scores::{Confused, most_confused};
    let confusion = vec![vec![9, 3, 0], vec![1, 8, 3], vec![0, 5, 7]];
    let cell = |truth, predicted, count| Confused {
        truth,
        predicted,
        count,
    };
    assert_eq!(
        most_confused(&confusion, 3),
        [cell(2, 1, 5), cell(0, 1, 3), cell(1, 2, 3)]
    );
    // Empty cells and the diagonal never appear, however many are asked for.
    assert_eq!(most_confused(&confusion, 100).len(), 4);
    assert!(most_confused(&[vec![4]], 5).is_empty());
    assert!(most_confused(&[], 5).is_empty());
}

#[test]
fn the_weakest_classes_come_first() {
    use crate::scores::weakest_first;
    assert_eq!(weakest_first(&[0.9, 0.2, 0.5], &[0.8, 0.3, 0.3]), [1, 2, 0]);
    // Without F1 (scores from an older file), recall decides.
    assert_eq!(weakest_first(&[0.9, 0.2, 0.5], &[]), [1, 2, 0]);
    assert!(weakest_first(&[], &[]).is_empty());
}

#[test]
fn the_memory_summary_names_every_worker() {
    let mut scores: RunScores = serde_json::from_str(
        r#"{"classes": [], "val_rows": [], "val_accuracy": null, "frozen_val_accuracy": null,
            "per_class": [], "confusion": [], "epochs": [], "backend": "Cpu", "train_ms": 1}"#,
    )
    .expect("scores");
    scores.wasm_memory_bytes = 1_252_300_000;
    assert_eq!(scores.memory_summary(), "1,252 MB in the training worker");
    scores.helper_memory_bytes = vec![610_400_000];
    assert_eq!(
        scores.memory_summary(),
        "1,252 MB in the training worker, 610 MB in its helper"
    );
    scores.helper_memory_bytes = vec![610_400_000, 1_005_000_000, 98_000_000];
    assert_eq!(
        scores.memory_summary(),
        "1,252 MB in the training worker, 610 + 1,005 + 98 MB in its 3 helpers"
    );
}
