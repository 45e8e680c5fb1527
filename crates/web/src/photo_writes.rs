//! The photo writes waiting for the store, as plain data. Writing each photo in a transaction
//! of its own, once when it is added and again when its features come, cannot keep up with
//! thousands of photos: the writes queue up behind one another, and a reload drops every one the
//! browser has not committed yet. So writes wait here and go a batch at a time, one
//! transaction each; a photo written twice before its batch goes is written once, as it is then.
//!
//! It also knows which photos of this visit the store does not have yet, and which of those it
//! refused for lack of space: those are gone after a reload, and the page says so.

use std::collections::{BTreeMap, BTreeSet};

/// What a photo's next write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhotoWrite {
    /// Writes the photo as it is when its batch goes (its file, and its features if computed).
    Put,
    /// Deletes it.
    Delete,
}

/// Writes taken to go in one transaction, in photo id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhotoBatch {
    pub puts: Vec<u32>,
    pub deletes: Vec<u32>,
}

impl PhotoBatch {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct PhotoWrites {
    /// The next write of each photo: the latest asked for wins.
    waiting: BTreeMap<u32, PhotoWrite>,
    /// Photos added in this visit that no write has stored yet.
    unsaved: BTreeSet<u32>,
    /// Of those, the ones a write did not store for lack of space.
    not_kept: BTreeSet<u32>,
    /// Whether batches are being written (one at a time).
    flushing: bool,
}

impl PhotoWrites {
    /// A photo just added: the store does not have it until a write of it is committed.
    pub fn put_new(&mut self, id: u32) {
        self.unsaved.insert(id);
        self.put(id);
    }

    /// A photo changed (its features came, or its class): it is written again.
    pub fn put(&mut self, id: u32) {
        self.waiting.insert(id, PhotoWrite::Put);
    }

    /// Photos removed: deleted from the store, and no longer counted as not kept.
    pub fn delete(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            self.waiting.insert(id, PhotoWrite::Delete);
            self.unsaved.remove(&id);
            self.not_kept.remove(&id);
        }
    }

    /// Takes up to `most` waiting writes, lowest ids first: deletes alone while any wait, so
    /// that a full disk, which refuses a whole transaction, never refuses a delete with them.
    pub fn take_batch(&mut self, most: usize) -> PhotoBatch {
        let deleting = self.waiting.values().any(|w| *w == PhotoWrite::Delete);
        let ids: Vec<u32> = self
            .waiting
            .iter()
            .filter(|(_, w)| !deleting || **w == PhotoWrite::Delete)
            .map(|(id, _)| *id)
            .take(most)
            .collect();
        let mut batch = PhotoBatch::default();
        for id in ids {
            match self.waiting.remove(&id) {
                Some(PhotoWrite::Put) => batch.puts.push(id),
                Some(PhotoWrite::Delete) => batch.deletes.push(id),
                None => {}
            }
        }
        batch
    }

    /// The batch was committed: its photos are stored.
    pub fn written(&mut self, batch: &PhotoBatch) {
        for id in &batch.puts {
            self.unsaved.remove(id);
            self.not_kept.remove(id);
        }
    }

    /// The store refused the batch for lack of space: the photos of it it did not have before
    /// are not kept (the others stay as they were stored).
    pub fn refused_for_space(&mut self, batch: &PhotoBatch) {
        for id in &batch.puts {
            if self.unsaved.contains(id) {
                self.not_kept.insert(*id);
            }
        }
    }

    /// Drops the waiting writes: what they would write is written otherwise (a project written
    /// whole) or not at all (no store).
    pub fn drop_waiting(&mut self) {
        self.waiting.clear();
    }

    /// How many photos of this visit the store refused for lack of space.
    pub fn not_kept(&self) -> usize {
        self.not_kept.len()
    }

    /// Marks batches as being written; `false` when they already are (one writer at a time, so
    /// that batches are committed in the order they were taken).
    pub fn start_flushing(&mut self) -> bool {
        !std::mem::replace(&mut self.flushing, true)
    }

    pub fn stop_flushing(&mut self) {
        self.flushing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_written_twice_before_its_batch_goes_is_written_once() {
        let mut writes = PhotoWrites::default();
        writes.put_new(3);
        writes.put_new(1);
        writes.put(3);
        writes.put_new(2);
        let batch = writes.take_batch(10);
        assert_eq!(batch.puts, vec![1, 2, 3]);
        assert!(batch.deletes.is_empty());
        assert!(writes.take_batch(10).is_empty());
    }

    #[test]
    fn batches_take_at_most_so_many_writes_lowest_ids_first() {
        let mut writes = PhotoWrites::default();
        for id in (0..25).rev() {
            writes.put_new(id);
        }
        let first = writes.take_batch(10);
        assert_eq!(first.puts, (0..10).collect::<Vec<_>>());
        assert_eq!(writes.take_batch(10).puts, (10..20).collect::<Vec<_>>());
        assert_eq!(writes.take_batch(10).puts, (20..25).collect::<Vec<_>>());
        assert!(writes.take_batch(10).is_empty());
    }

    #[test]
    fn a_delete_replaces_a_write_not_yet_made() {
        let mut writes = PhotoWrites::default();
        writes.put_new(1);
        writes.put_new(2);
        writes.delete([2, 7]);
        writes.put_new(3);
        let deletes = writes.take_batch(10);
        assert_eq!(deletes.deletes, vec![2, 7]);
        assert!(deletes.puts.is_empty(), "deletes go alone");
        assert_eq!(writes.take_batch(10).puts, vec![1, 3]);
    }

    #[test]
    fn photos_refused_for_space_are_not_kept_until_a_later_write_stores_them() {
        let mut writes = PhotoWrites::default();
        writes.put_new(1);
        let stored = writes.take_batch(10);
        writes.written(&stored);
        // Photo 1 is stored: its features not fitting leaves it kept.
        writes.put(1);
        writes.put_new(2);
        writes.put_new(3);
        let refused = writes.take_batch(10);
        writes.refused_for_space(&refused);
        assert_eq!(writes.not_kept(), 2);
        // Room was made: photo 3 is removed; photo 2 is stored with its features.
        writes.put(2);
        writes.delete([3]);
        assert_eq!(writes.not_kept(), 1);
        let deletes = writes.take_batch(10);
        writes.written(&deletes);
        let batch = writes.take_batch(10);
        assert_eq!(batch.puts, vec![2]);
        writes.written(&batch);
        assert_eq!(writes.not_kept(), 0);
    }

    #[test]
    fn one_writer_at_a_time() {
        let mut writes = PhotoWrites::default();
        assert!(writes.start_flushing());
        assert!(!writes.start_flushing());
        writes.stop_flushing();
        assert!(writes.start_flushing());
    }

    #[test]
    fn dropped_writes_are_not_made() {
        let mut writes = PhotoWrites::default();
        writes.put_new(1);
        writes.delete([0]);
        writes.drop_waiting();
        assert!(writes.take_batch(10).is_empty());
    }
}
