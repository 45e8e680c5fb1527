//! The training photos as plain data, and what the page works out from them: each class's
//! tally, the imbalance warning, and the rows a training run is sent. No signals and no DOM, so
//! `cargo test` checks it natively; the page's `training` module keeps its signals around it.

use afinar_protocol::{PreparedPhoto, RowsPart, TrainingRows};
use afinar_vocabulary::limits::{MAX_CLASSES, MIN_PHOTOS_PER_CLASS};
use afinar_vocabulary::{RowsNeeded, TrainSettings};
use serde::{Deserialize, Serialize};

/// A class of training photos, as the user named it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainClass {
    pub id: u32,
    pub name: String,
}

/// The class called `name` (trimmed, any case) in `classes`, created at the end if there is
/// none; `Err` (a message for people) when there is none and no room for another.
pub fn class_named(classes: &mut Vec<TrainClass>, name: &str) -> Result<u32, String> {
    let name = name.trim();
    if let Some(c) = classes.iter().find(|c| same_name(&c.name, name)) {
        return Ok(c.id);
    }
    if classes.len() >= MAX_CLASSES {
        return Err(classes_not_added(&[name]));
    }
    Ok(new_class(classes, name))
}

/// What the page says of classes refused for the limit (`names` in the order they came): the
/// first by name, and how many more.
pub fn classes_not_added(names: &[&str]) -> String {
    let first = names.first().copied().unwrap_or_default();
    match names.len() {
        0 | 1 => format!("At most {MAX_CLASSES} classes: “{first}” was not added."),
        n => format!(
            "At most {MAX_CLASSES} classes: “{first}” and {} more were not added, with their photos.",
            n - 1
        ),
    }
}

/// Adds a class called `name` (trimmed; "class N" when empty) with an id no class has had.
pub fn new_class(classes: &mut Vec<TrainClass>, name: &str) -> u32 {
    let id = classes.iter().map(|c| c.id + 1).max().unwrap_or(0);
    let name = match name.trim() {
        "" => format!("class {}", id + 1),
        name => name.to_string(),
    };
    classes.push(TrainClass { id, name });
    id
}

/// Renames class `id` to `name` (trimmed; an empty name changes nothing); `Err` (a message for
/// people) when another class has that name already, in any case.
pub fn rename_class(classes: &mut [TrainClass], id: u32, name: &str) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(());
    }
    if classes
        .iter()
        .any(|c| c.id != id && same_name(&c.name, name))
    {
        return Err(format!("There is already a class called “{name}”."));
    }
    if let Some(c) = classes.iter_mut().find(|c| c.id == id) {
        c.name = name.to_string();
    }
    Ok(())
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// A photo's prepared rows with what they were prepared for (the unfrozen blocks its boundary
/// activations are for, its augmented views) and by which model.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPrepared {
    pub embedding: PreparedPhoto,
    pub rows: RowsNeeded,
    /// The sha256 of the model file that computed it: another model's rows are another
    /// network's features, which a head trained on one cannot use with the other.
    pub model: String,
}

impl StoredPrepared {
    /// Whether the model in use computed these rows (`None`: no model is ready yet, so none
    /// can be told apart and all are kept).
    pub fn by_model(&self, in_use: Option<&str>) -> bool {
        in_use.is_none_or(|m| m == self.model)
    }

    /// Whether a run needing `needed` can train on these rows with the model in use.
    pub fn usable(&self, needed: &RowsNeeded, model_in_use: Option<&str>) -> bool {
        self.rows.serves(needed) && self.by_model(model_in_use)
    }
}

/// A class with its photos counted.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassTally {
    pub class: TrainClass,
    pub photos: usize,
    /// Photos the worker has prepared.
    pub ready: usize,
}

/// Photos per class, in class order, from each photo's `(class id, prepared)`.
pub fn tally(
    classes: Vec<TrainClass>,
    photos: impl IntoIterator<Item = (u32, bool)>,
) -> Vec<ClassTally> {
    let mut tallies: Vec<ClassTally> = classes
        .into_iter()
        .map(|class| ClassTally {
            class,
            photos: 0,
            ready: 0,
        })
        .collect();
    for (class_id, ready) in photos {
        if let Some(t) = tallies.iter_mut().find(|t| t.class.id == class_id) {
            t.photos += 1;
            t.ready += usize::from(ready);
        }
    }
    tallies
}

/// A class with under this share of the largest class's photos makes the set badly unbalanced.
const UNBALANCED_BELOW: usize = 3;

/// What to say when the classes are badly unbalanced: the smallest class (of those with enough
/// photos to train) has under a third of the largest one's photos.
pub fn imbalance(tallies: &[ClassTally]) -> Option<String> {
    let usable = tallies.iter().filter(|t| t.photos >= MIN_PHOTOS_PER_CLASS);
    let small = usable.clone().min_by_key(|t| t.photos)?;
    let large = usable.max_by_key(|t| t.photos)?;
    let (few, many) = (small.photos, large.photos);
    let (small, large) = (&small.class.name, &large.class.name);
    (few * UNBALANCED_BELOW < many).then(|| {
        format!(
            "The classes are badly unbalanced: “{small}” has {few} photos, under a third of \
             “{large}”'s {many}. The model will lean towards the larger classes: a photo of \
             “{small}” is often put in another class (its recall drops), while the overall \
             accuracy can still look good, as most validation photos come from the large \
             classes. Add photos to “{small}”, or use fewer of the others."
        )
    })
}

/// A training photo as [`training_plan`] reads it.
#[derive(Debug, Clone, Copy)]
pub struct RosterPhoto<'a> {
    pub id: u32,
    pub class_id: u32,
    pub name: &'a str,
    /// Its rows, once the worker prepared it.
    pub prepared: Option<&'a StoredPrepared>,
}

/// A run as it goes to the worker: the set without its rows (they follow in parts, built by
/// [`rows_part`]), the photo id of each row, and which of the photos given (their positions)
/// the rows are of, in the rows' order.
#[derive(Debug)]
pub struct TrainingPlan {
    pub set: TrainingRows,
    pub ids: Vec<u32>,
    pub picked: Vec<usize>,
}

/// The prepared photos (in the order they were added) as a run with `settings`. A photo of no
/// class or not prepared yet is left out; `Err` lists the photos that must be prepared again
/// first (fine-tuning needs each photo's activations below the unfrozen blocks, augmentation
/// its views, and every row must come from the model in use).
pub fn training_plan<'a>(
    classes: &[TrainClass],
    photos: impl IntoIterator<Item = RosterPhoto<'a>>,
    settings: &TrainSettings,
    model_in_use: Option<&str>,
) -> Result<TrainingPlan, Vec<u32>> {
    let needed = settings.rows_needed();
    let mut set = TrainingRows {
        classes: classes.iter().map(|c| c.name.clone()).collect(),
        labels: Vec::new(),
        features: Vec::new(),
        boundary: None,
        augmented: None,
        augmented_boundary: None,
        sha256: Vec::new(),
        names: Vec::new(),
        validation: None,
        rows_ahead: true,
        settings: settings.clone(),
    };
    let (mut ids, mut picked, mut stale) = (Vec::new(), Vec::new(), Vec::new());
    for (at, p) in photos.into_iter().enumerate() {
        let Some(label) = classes.iter().position(|c| c.id == p.class_id) else {
            continue;
        };
        let Some(e) = p.prepared else {
            continue;
        };
        if !e.usable(&needed, model_in_use) {
            stale.push(p.id);
            continue;
        }
        set.labels.push(label);
        set.sha256.push(e.embedding.sha256.clone());
        set.names.push(p.name.to_string());
        ids.push(p.id);
        picked.push(at);
    }
    if stale.is_empty() {
        Ok(TrainingPlan { set, ids, picked })
    } else {
        Err(stale)
    }
}

/// The rows of `photos`, photos `first..` of a run of `total` that needs `needed`.
pub fn rows_part(
    photos: &[&PreparedPhoto],
    first: usize,
    total: usize,
    needed: &RowsNeeded,
) -> RowsPart {
    let views = needed.views > 0;
    // Each kind of row in a vector sized once.
    let rows = |kind: fn(&PreparedPhoto) -> Option<&[f32]>| -> Vec<f32> {
        let mut rows = Vec::with_capacity(
            photos
                .iter()
                .filter_map(|p| kind(p))
                .map(<[f32]>::len)
                .sum(),
        );
        for p in photos {
            rows.extend_from_slice(kind(p).unwrap_or_default());
        }
        rows
    };
    RowsPart {
        first,
        count: photos.len(),
        photos: total,
        features: rows(|p| Some(&p.features)),
        boundary: needed.unfreeze.map(|_| rows(|p| p.boundary.as_deref())),
        augmented: views.then(|| rows(|p| Some(&p.augmented))),
        augmented_boundary: (views && needed.unfreeze.is_some())
            .then(|| rows(|p| p.augmented_boundary.as_deref())),
    }
}

#[cfg(test)]
mod tests;
