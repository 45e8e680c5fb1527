//! Photos written to the store: when added, when their features come, when they move to another
//! class, and deleted when removed. The writes wait in [`PhotoWrites`] and go a batch at a time,
//! one transaction each, so that saving keeps up with thousands of photos added and prepared at
//! once (see `afinar_web::photo_writes`).

use leptos::prelude::*;

use super::state::{Prepared, TrainPhoto, Training, WriteTurn, run_local};
use crate::store::{StoredPhoto, WriteError};
use afinar_web::photo_writes::PhotoBatch;

/// Most photo writes in one transaction: enough that a transaction's cost is shared by many
/// photos, few enough that building its records is a short task for the page.
const PHOTOS_PER_WRITE: usize = 200;

impl Training {
    /// Writes a photo just added: its file, and its features once computed.
    pub(super) fn save_new_photo(self, id: u32) {
        self.queue_photo_write(|writes| writes.put_new(id));
    }

    /// Writes a photo again: its features came, or it moved to another class.
    pub(super) fn save_photo(self, id: u32) {
        self.queue_photo_write(|writes| writes.put(id));
    }

    /// Drops the files of photos taken off the list, here and in the store.
    pub(super) fn forget_photos(self, ids: Vec<u32>) {
        self.blobs.update_value(|b| {
            for id in &ids {
                b.remove(id);
            }
        });
        self.queue_photo_write(|writes| writes.delete(ids));
    }

    fn queue_photo_write(self, queue: impl FnOnce(&mut afinar_web::photo_writes::PhotoWrites)) {
        // A project's photos arriving are written with it, whole.
        if self.write_turn() == WriteTurn::LeftOut {
            return;
        }
        self.photo_writes.update_value(queue);
        self.write_waiting_photos();
    }

    /// Writes the waiting photo writes, a batch at a time, unless that is already under way.
    fn write_waiting_photos(self) {
        if !self
            .photo_writes
            .try_update_value(|writes| writes.start_flushing())
            .unwrap_or(false)
        {
            return;
        }
        let writing = self.writing();
        run_local(async move {
            let _writing = writing;
            // The task that asked goes on first: a slice of photos added is one batch.
            gloo_timers::future::TimeoutFuture::new(0).await;
            loop {
                let Some(store) = self.store.get_value() else {
                    self.photo_writes.update_value(|w| w.drop_waiting());
                    break;
                };
                match self.write_turn() {
                    WriteTurn::Now => {}
                    // The project being opened replaces them, and is written whole.
                    WriteTurn::LeftOut => {
                        self.photo_writes.update_value(|w| w.drop_waiting());
                        break;
                    }
                    // They follow once the project opened is kept.
                    WriteTurn::Later => {
                        self.write_later(Box::new(move || self.write_waiting_photos()));
                        break;
                    }
                }
                let Some(batch) = self
                    .photo_writes
                    .try_update_value(|w| w.take_batch(PHOTOS_PER_WRITE))
                    .filter(|batch| !batch.is_empty())
                else {
                    break;
                };
                let records = self.stored_photos(&batch);
                let result = store.write_photos(&records, &batch.deletes).await;
                self.saved(&batch, result);
            }
            self.photo_writes.update_value(|w| w.stop_flushing());
        });
    }

    /// Records how a batch went, and says so when it failed. The batches after it are still
    /// tried, as each photo's write was when it had a transaction of its own: a delete may make
    /// room, and the page says which photos were not kept.
    fn saved(self, batch: &PhotoBatch, result: Result<(), WriteError>) {
        match result {
            Ok(()) => self.photo_writes.update_value(|w| w.written(batch)),
            Err(WriteError::Full) => {
                self.photo_writes
                    .update_value(|w| w.refused_for_space(batch));
                self.say_storage_full();
            }
            Err(e) => self.say(format!("Could not save in this browser: {e}")),
        }
    }

    /// The photos of `batch.puts` as they are stored now; those removed meanwhile are left out.
    fn stored_photos(self, batch: &PhotoBatch) -> Vec<StoredPhoto> {
        // One pass over the list, not one search per photo.
        self.photos.with_untracked(|list| {
            list.iter()
                .filter(|p| batch.puts.binary_search(&p.id).is_ok())
                .filter_map(|p| self.stored_photo(p))
                .collect()
        })
    }

    /// A photo as it is stored: its file, and its features once computed; `None` once its
    /// file is gone (the photo was removed).
    pub(super) fn stored_photo(self, photo: &TrainPhoto) -> Option<StoredPhoto> {
        let embedding = match photo.state.get_untracked() {
            Prepared::Ready(e) => Some((*e).clone()),
            _ => None,
        };
        Some(StoredPhoto {
            id: photo.id,
            class_id: photo.class_id,
            name: photo.name.clone(),
            blob: self.blob(photo.id)?,
            embedding,
        })
    }

    pub(super) fn say_storage_full(self) {
        let not_kept = self.photo_writes.with_value(|w| w.not_kept());
        let photos = if not_kept == 0 {
            String::new()
        } else {
            let kept = self
                .photos
                .with_untracked(Vec::len)
                .saturating_sub(not_kept);
            format!(
                " {not_kept} photo{} added since {} used now but will be gone after a reload; \
                 the {kept} kept before are safe.",
                if not_kept == 1 { "" } else { "s" },
                if not_kept == 1 { "is" } else { "are" },
            )
        };
        // Saving a project is only advice where the page can save one this large.
        let keep = match self.too_large_to_save() {
            None => "Save the project to keep everything in a file, or make room",
            Some(_) => "Make room",
        };
        self.say(format!(
            "This browser's storage for the page is full.{photos} {keep}: remove photos, or \
             clear other sites' data."
        ));
    }
}
