//! A run's rows sent ahead of it in parts ([`crate::Request::TrainRows`]): a whole set's rows
//! (a gigabyte for the *best* recipe on a few thousand photos) built and posted in one message
//! would hold the page for seconds and keep a second copy of them in its memory. A helper's
//! share of the fine-tuning stage comes the same way ([`crate::Request::StageRows`]).

use serde::{Deserialize, Serialize};

use crate::TrainingRows;
use crate::f32_bytes;

/// Most photos a run's parts may announce: as many as a project may hold.
const MAX_PHOTOS: usize = afinar_vocabulary::project::MAX_PHOTOS;
/// Most values the parts of a run may reserve room for at once (4 GiB of f32, a wasm32
/// worker's whole address space): beyond it the rows grow as they come, and run out of
/// memory there if they must.
const MAX_RESERVED_VALUES: usize = 1 << 30;

/// The rows of photos `first..first + count` of a run of `photos` photos, each field as in
/// [`TrainingRows`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowsPart {
    pub first: usize,
    pub count: usize,
    pub photos: usize,
    #[serde(with = "f32_bytes")]
    pub features: Vec<f32>,
    #[serde(with = "f32_bytes::option", default)]
    pub boundary: Option<Vec<f32>>,
    #[serde(with = "f32_bytes::option", default)]
    pub augmented: Option<Vec<f32>>,
    #[serde(with = "f32_bytes::option", default)]
    pub augmented_boundary: Option<Vec<f32>>,
}

/// The parts of the next run received so far, in order.
#[derive(Debug, Default)]
pub struct RowsAhead {
    photos: usize,
    received: usize,
    features: Vec<f32>,
    boundary: Option<Vec<f32>>,
    augmented: Option<Vec<f32>>,
    augmented_boundary: Option<Vec<f32>>,
    /// Why the parts cannot make a run (a part out of order, one that does not fit).
    broken: Option<String>,
}

impl RowsAhead {
    /// Adds the next part. A part that starts a run (its `first` is 0) drops what came before.
    pub fn add(&mut self, part: RowsPart) -> Result<(), String> {
        if part.first == 0 {
            *self = Self::starting(&part);
        }
        let fits = part.first == self.received
            && part.photos == self.photos
            && part.count <= self.photos - self.received
            && [
                (&mut self.boundary, part.boundary),
                (&mut self.augmented, part.augmented),
                (&mut self.augmented_boundary, part.augmented_boundary),
            ]
            .into_iter()
            .all(|(rows, part)| match (rows, part) {
                (Some(rows), Some(part)) => {
                    rows.extend_from_slice(&part);
                    true
                }
                (None, None) => true,
                _ => false,
            });
        if !fits || self.broken.is_some() {
            let why = "the photos' rows arrived out of order";
            self.broken.get_or_insert_with(|| why.into());
            return Err(why.into());
        }
        self.features.extend_from_slice(&part.features);
        self.received += part.count;
        Ok(())
    }

    /// Room for the run that `first` starts: each kind of row as wide per photo as in it.
    fn starting(first: &RowsPart) -> Self {
        let photos = first.photos.min(MAX_PHOTOS);
        let room = |rows: &[f32]| {
            let per_photo = rows.len() / first.count.max(1);
            let values = per_photo.saturating_mul(photos);
            Vec::with_capacity(if values <= MAX_RESERVED_VALUES {
                values
            } else {
                0
            })
        };
        let broken = (first.photos > MAX_PHOTOS)
            .then(|| format!("a run may have at most {MAX_PHOTOS} photos"));
        Self {
            photos,
            received: 0,
            features: room(&first.features),
            boundary: first.boundary.as_deref().map(room),
            augmented: first.augmented.as_deref().map(room),
            augmented_boundary: first.augmented_boundary.as_deref().map(room),
            broken,
        }
    }

    /// Moves every row into `set`, whose rows came ahead; fails when parts are missing or
    /// broken, or are another run's.
    pub fn fill(self, set: &mut TrainingRows) -> Result<(), String> {
        let rows = self.finish(set.labels.len())?;
        set.features = rows.features;
        set.boundary = rows.boundary;
        set.augmented = rows.augmented;
        set.augmented_boundary = rows.augmented_boundary;
        Ok(())
    }

    /// Every row received, as one part, where they are the rows of `photos` photos.
    pub fn finish(self, photos: usize) -> Result<RowsPart, String> {
        if let Some(why) = self.broken {
            return Err(why);
        }
        if self.received != self.photos || self.photos != photos {
            return Err(format!(
                "the rows of {} photos arrived, for {photos} photos",
                self.received
            ));
        }
        Ok(RowsPart {
            first: 0,
            count: photos,
            photos,
            features: self.features,
            boundary: self.boundary,
            augmented: self.augmented,
            augmented_boundary: self.augmented_boundary,
        })
    }
}

#[cfg(test)]
mod tests;
