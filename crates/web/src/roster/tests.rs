use afinar_vocabulary::RecipeName;
use afinar_vocabulary::limits::MAX_CLASSES;

use super::*;

fn class(id: u32, name: &str) -> TrainClass {
    TrainClass {
        id,
        name: name.into(),
    }
}

fn counted(classes: &[(u32, &str)], photos: &[(u32, usize, usize)]) -> Vec<ClassTally> {
    let classes = classes.iter().map(|&(id, name)| class(id, name)).collect();
    let photos = photos
        .iter()
        .flat_map(|&(class_id, total, ready)| (0..total).map(move |i| (class_id, i < ready)));
    tally(classes, photos)
}

/// A run's rows as the worker gets them: the plan's set, its rows sent in parts of two photos.
fn training_rows<'a>(
    classes: &[TrainClass],
    photos: impl IntoIterator<Item = RosterPhoto<'a>>,
    settings: &TrainSettings,
    model_in_use: Option<&str>,
) -> Result<(TrainingRows, Vec<u32>), Vec<u32>> {
    let photos: Vec<RosterPhoto> = photos.into_iter().collect();
    let TrainingPlan {
        mut set,
        ids,
        picked,
    } = training_plan(classes, photos.iter().copied(), settings, model_in_use)?;
    let rows: Vec<&PreparedPhoto> = picked
        .iter()
        .filter_map(|&at| photos[at].prepared.map(|e| &e.embedding))
        .collect();
    assert_eq!(rows.len(), ids.len(), "every row's photo picked");
    let mut ahead = afinar_protocol::RowsAhead::default();
    for (k, part) in rows.chunks(2).enumerate() {
        let part = rows_part(part, 2 * k, rows.len(), &settings.rows_needed());
        ahead.add(part).expect("in order");
    }
    ahead.fill(&mut set).expect("every part");
    Ok((set, ids))
}

/// A photo prepared for `rows` by `model`, its features all `value`.
fn prepared(value: f32, rows: RowsNeeded, model: &str) -> StoredPrepared {
    let width = 4;
    StoredPrepared {
        embedding: PreparedPhoto {
            features: vec![value; width],
            boundary: rows.unfreeze.map(|_| vec![value; 2]),
            augmented: vec![value; width * rows.views],
            augmented_boundary: (rows.views > 0 && rows.unfreeze.is_some())
                .then(|| vec![value; 2 * rows.views]),
            imagenet: Vec::new(),
            sha256: format!("sha-{value}"),
            thumbnail_jpeg: Vec::new(),
        },
        rows,
        model: model.into(),
    }
}

#[test]
fn tally_counts_each_class_in_order_and_skips_photos_of_no_class() {
    let tallies = counted(
        &[(7, "roses"), (3, "tulips")],
        &[(3, 4, 1), (7, 2, 2), (99, 5, 5)],
    );
    let got: Vec<_> = tallies
        .iter()
        .map(|t| (t.class.name.as_str(), t.photos, t.ready))
        .collect();
    assert_eq!(got, [("roses", 2, 2), ("tulips", 4, 1)]);
}

#[test]
fn imbalance_warns_when_the_smallest_class_has_under_a_third_of_the_largest() {
    // 3 × 3 < 10: unbalanced, and the message names both classes.
    let warning = imbalance(&counted(
        &[(1, "daisy"), (2, "roses")],
        &[(1, 10, 0), (2, 3, 0)],
    ))
    .expect("a warning");
    assert!(warning.contains("“roses” has 3 photos"), "{warning}");
    assert!(warning.contains("“daisy”'s 10"), "{warning}");
    // 4 × 3 ≥ 10: fine.
    assert_eq!(
        imbalance(&counted(
            &[(1, "daisy"), (2, "roses")],
            &[(1, 10, 0), (2, 4, 0)]
        )),
        None
    );
    // A class too small to train on yet is not counted (it has its own message).
    assert_eq!(
        imbalance(&counted(
            &[(1, "daisy"), (2, "roses")],
            &[(1, 10, 0), (2, 1, 0)]
        )),
        None
    );
    assert_eq!(imbalance(&[]), None);
}

#[test]
fn training_rows_follow_the_photos_order_with_each_class_index() {
    let classes = [class(5, "a"), class(9, "b")];
    let plain = RowsNeeded::default();
    let (one, two, three) = (
        prepared(1.0, plain, "m"),
        prepared(2.0, plain, "m"),
        prepared(3.0, plain, "m"),
    );
    let photos = [
        (1, 9, "one.jpg", Some(&one)),
        (2, 5, "two.jpg", Some(&two)),
        // Not prepared yet, and in a class that was removed: neither is a row.
        (3, 5, "waiting.jpg", None),
        (4, 42, "orphan.jpg", Some(&three)),
    ]
    .map(|(id, class_id, name, prepared)| RosterPhoto {
        id,
        class_id,
        name,
        prepared,
    });
    let settings = TrainSettings::default();
    let (rows, ids) = training_rows(&classes, photos, &settings, Some("m")).expect("rows");
    assert_eq!(ids, [1, 2]);
    assert_eq!(rows.classes, ["a", "b"]);
    assert_eq!(rows.labels, [1, 0]);
    assert_eq!(rows.features, [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
    assert_eq!(rows.names, ["one.jpg", "two.jpg"]);
    assert_eq!(rows.sha256, ["sha-1", "sha-2"]);
    assert_eq!((rows.boundary, rows.augmented), (None, None));
    assert_eq!(rows.settings, settings);
}

#[test]
fn training_rows_carry_views_and_boundaries_for_the_best_recipe() {
    let settings = TrainSettings::named(RecipeName::Best);
    let needed = settings.rows_needed();
    let photo = prepared(0.5, needed, "m");
    let photos = (1..=2).map(|id| RosterPhoto {
        id,
        class_id: 1,
        name: "p.jpg",
        prepared: Some(&photo),
    });
    let (rows, _) = training_rows(&[class(1, "a")], photos, &settings, Some("m")).expect("rows");
    let views = needed.views;
    assert!(views > 0 && needed.unfreeze.is_some());
    assert_eq!(rows.augmented.map(|a| a.len()), Some(2 * 4 * views));
    assert_eq!(rows.boundary.map(|b| b.len()), Some(2 * 2));
    assert_eq!(
        rows.augmented_boundary.map(|b| b.len()),
        Some(2 * 2 * views)
    );
}

#[test]
fn photos_prepared_for_less_or_by_another_model_must_be_prepared_again() {
    let settings = TrainSettings::named(RecipeName::Better);
    let needed = settings.rows_needed();
    let (good, no_views, other_model) = (
        prepared(1.0, needed, "m"),
        prepared(2.0, RowsNeeded::default(), "m"),
        prepared(3.0, needed, "other"),
    );
    let photos = [(1, &good), (2, &no_views), (3, &other_model)].map(|(id, p)| RosterPhoto {
        id,
        class_id: 1,
        name: "p.jpg",
        prepared: Some(p),
    });
    let classes = [class(1, "a")];
    assert_eq!(
        training_rows(&classes, photos, &settings, Some("m")).map(|(_, ids)| ids),
        Err(vec![2, 3])
    );
    // Before a model is ready none can be told apart by model; the views still count.
    let photos = [(1, &good), (3, &other_model)].map(|(id, p)| RosterPhoto {
        id,
        class_id: 1,
        name: "p.jpg",
        prepared: Some(p),
    });
    assert_eq!(
        training_rows(&classes, photos, &settings, None).map(|(_, ids)| ids),
        Ok(vec![1, 3])
    );
}

#[test]
fn a_class_is_found_by_name_in_any_case_or_added_with_a_fresh_id() {
    let mut classes = vec![class(0, "Roses"), class(4, "tulips")];
    assert_eq!(class_named(&mut classes, "  roses "), Ok(0));
    assert_eq!(class_named(&mut classes, "daisy"), Ok(5));
    assert_eq!(classes.last(), Some(&class(5, "daisy")));
    // An empty name gets one.
    assert_eq!(new_class(&mut classes, "  "), 6);
    assert_eq!(classes.last(), Some(&class(6, "class 7")));
}

#[test]
fn no_class_is_added_past_the_limit() {
    let mut classes: Vec<_> = (0..MAX_CLASSES as u32)
        .map(|i| class(i, &format!("c{i}")))
        .collect();
    assert_eq!(class_named(&mut classes, "C3"), Ok(3));
    let refused = class_named(&mut classes, "one more").unwrap_err();
    assert!(refused.contains("“one more” was not added"), "{refused}");
    assert_eq!(classes.len(), MAX_CLASSES);
    assert_eq!(
        classes_not_added(&["x", "y", "z"]),
        format!("At most {MAX_CLASSES} classes: “x” and 2 more were not added, with their photos.")
    );
}

#[test]
fn a_class_cannot_take_another_class_s_name() {
    let mut classes = vec![class(0, "roses"), class(1, "tulips")];
    let refused = rename_class(&mut classes, 1, " ROSES ").unwrap_err();
    assert!(
        refused.contains("already a class called “ROSES”"),
        "{refused}"
    );
    assert_eq!(classes[1].name, "tulips");
    // Its own name in another case, and an empty name (nothing changes), are fine.
    assert_eq!(rename_class(&mut classes, 0, "Roses"), Ok(()));
    assert_eq!(rename_class(&mut classes, 1, "  "), Ok(()));
    assert_eq!(
        classes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["Roses", "tulips"]
    );
}
