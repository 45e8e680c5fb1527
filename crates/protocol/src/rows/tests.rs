use afinar_vocabulary::{RecipeName, TrainSettings};

use super::*;

/// Five photos with every kind of row, each value telling its photo and place.
fn set() -> TrainingRows {
    let rows = |width: usize| -> Vec<f32> { (0..5 * width).map(|i| i as f32).collect() };
    TrainingRows {
        classes: vec!["a".into(), "b".into()],
        labels: vec![0, 1, 0, 1, 1],
        features: rows(4),
        boundary: Some(rows(6)),
        augmented: Some(rows(8)),
        augmented_boundary: Some(rows(12)),
        sha256: vec![String::new(); 5],
        names: vec![String::new(); 5],
        validation: None,
        rows_ahead: true,
        settings: TrainSettings::named(RecipeName::Best),
    }
}

/// `set`'s rows in parts of `per_part` photos.
fn parts_of(set: &TrainingRows, per_part: usize) -> Vec<RowsPart> {
    let photos = set.labels.len();
    (0..photos)
        .step_by(per_part)
        .map(|first| {
            let count = per_part.min(photos - first);
            let cut = |rows: &[f32]| {
                let width = rows.len() / photos;
                rows[first * width..(first + count) * width].to_vec()
            };
            RowsPart {
                first,
                count,
                photos,
                features: cut(&set.features),
                boundary: set.boundary.as_deref().map(cut),
                augmented: set.augmented.as_deref().map(cut),
                augmented_boundary: set.augmented_boundary.as_deref().map(cut),
            }
        })
        .collect()
}

/// The set as the worker gets it: its rows left out of the message.
fn without_rows(set: &TrainingRows) -> TrainingRows {
    TrainingRows {
        features: Vec::new(),
        boundary: None,
        augmented: None,
        augmented_boundary: None,
        ..set.clone()
    }
}

#[test]
fn parts_in_order_make_the_rows_whole() {
    let whole = set();
    for per_part in [1, 2, 5] {
        let mut ahead = RowsAhead::default();
        for part in parts_of(&whole, per_part) {
            ahead.add(part).expect("in order");
        }
        let mut got = without_rows(&whole);
        ahead.fill(&mut got).expect("every part");
        assert_eq!(got, whole, "{per_part} photos per part");
    }
}

#[test]
fn a_new_run_starts_over_and_missing_or_stray_parts_are_refused() {
    let whole = set();
    let parts = parts_of(&whole, 2);

    // A run that was abandoned half-way, then a whole one.
    let mut ahead = RowsAhead::default();
    ahead.add(parts[0].clone()).expect("first");
    for part in parts.clone() {
        ahead.add(part).expect("in order");
    }
    let mut got = without_rows(&whole);
    ahead.fill(&mut got).expect("the second run whole");
    assert_eq!(got, whole);

    // A part missing.
    let mut ahead = RowsAhead::default();
    ahead.add(parts[0].clone()).expect("first");
    ahead.add(parts[2].clone()).expect_err("out of order");
    assert!(ahead.fill(&mut without_rows(&whole)).is_err());

    // The last part never came.
    let mut ahead = RowsAhead::default();
    for part in &parts[..2] {
        ahead.add(part.clone()).expect("in order");
    }
    let why = ahead
        .fill(&mut without_rows(&whole))
        .expect_err("incomplete");
    assert!(why.contains("4 photos"), "{why}");

    // A part with a kind of row the run's first part did not have.
    let mut ahead = RowsAhead::default();
    ahead.add(parts[0].clone()).expect("first");
    let mut odd = parts[1].clone();
    odd.boundary = None;
    ahead.add(odd).expect_err("another shape");

    // A run of more photos than a project may hold reserves nothing and is refused.
    let mut huge = parts[0].clone();
    huge.photos = usize::MAX;
    let mut ahead = RowsAhead::default();
    ahead.add(huge).expect_err("too many photos");
    assert!(ahead.fill(&mut without_rows(&whole)).is_err());
}
