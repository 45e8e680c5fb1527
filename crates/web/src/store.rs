//! What survives a reload, in IndexedDB: the training photos (as blobs, with their computed
//! features), the class list, and the trained head with its scores.
//!
//! The stored schema has a version (IndexedDB's own): version 2 tags each photo's prepared rows
//! with the model that computed them, and a store of an older version is migrated forward when
//! it is opened ([`upgrade`]).
//!
//! Every write is best effort: if storage is unavailable (private mode) or full (the browser's
//! quota for the page) the app keeps working for this visit and says so. A write that does not
//! fit is a transaction the browser aborts: what was stored before stays as it was.

use idb::{Database, DatabaseEvent, Factory, ObjectStoreParams, Transaction, TransactionMode};
use js_sys::{Float32Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use web_sys::{Blob, IdbTransaction};

use afinar_protocol::PreparedPhoto;
use afinar_vocabulary::RowsNeeded;
use afinar_web::roster::StoredPrepared;

const DB_NAME: &str = "afinar-training";
/// The schema written here; see [`upgrade`].
const DB_VERSION: u32 = 2;
const PHOTOS: &str = "photos";
/// Photo records read back in one turn of the page's event loop: thousands at once would hold
/// the page for seconds.
const RECORDS_PER_SLICE: usize = 500;
const META: &str = "meta";

/// A training photo as stored.
pub struct StoredPhoto {
    pub id: u32,
    pub class_id: u32,
    pub name: String,
    pub blob: Blob,
    /// Present once the worker computed it.
    pub embedding: Option<StoredPrepared>,
}

/// The fields of a photo record that hold its prepared rows (recomputed from its file when
/// missing).
const PREPARED_FIELDS: [&str; 11] = [
    "features",
    "boundary",
    "unfreeze",
    "views",
    "seed",
    "augmented",
    "augmentedBoundary",
    "imagenet",
    "sha256",
    "thumb",
    "model",
];

pub struct Store {
    db: Database,
}

/// Why a write did not land; nothing of it was kept.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteError {
    /// The browser's storage quota for the page is reached.
    Full,
    Failed(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full => f.write_str("this browser's storage for the page is full"),
            Self::Failed(e) => f.write_str(e),
        }
    }
}

const QUOTA_EXCEEDED: &str = "QuotaExceededError";

impl WriteError {
    fn from_idb(e: idb::Error) -> Self {
        match &e {
            idb::Error::DomException(d) if d.name() == QUOTA_EXCEEDED => Self::Full,
            // Other variants carry the browser's error as a JS value; its text names it.
            _ if e.to_string().contains(QUOTA_EXCEEDED) => Self::Full,
            _ => Self::Failed(e.to_string()),
        }
    }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The record a photo is stored as.
fn photo_record(photo: &StoredPhoto) -> Object {
    let record = Object::new();
    set(&record, "id", &photo.id.into());
    set(&record, "classId", &photo.class_id.into());
    set(&record, "name", &photo.name.as_str().into());
    set(&record, "blob", &photo.blob);
    if let Some(stored) = &photo.embedding {
        let e = &stored.embedding;
        set(
            &record,
            "features",
            &Float32Array::from(e.features.as_slice()),
        );
        if let Some(boundary) = &e.boundary {
            set(
                &record,
                "boundary",
                &Float32Array::from(boundary.as_slice()),
            );
        }
        if let Some(k) = stored.rows.unfreeze {
            set(&record, "unfreeze", &(k as u32).into());
        }
        if stored.rows.views > 0 {
            set(&record, "views", &(stored.rows.views as u32).into());
            // As text: a u64 seed does not fit a JS number.
            set(&record, "seed", &stored.rows.seed.to_string().into());
            set(
                &record,
                "augmented",
                &Float32Array::from(e.augmented.as_slice()),
            );
            if let Some(views) = &e.augmented_boundary {
                set(
                    &record,
                    "augmentedBoundary",
                    &Float32Array::from(views.as_slice()),
                );
            }
        }
        let imagenet = serde_json::to_string(&e.imagenet).unwrap_or_default();
        set(&record, "imagenet", &imagenet.into());
        set(&record, "sha256", &e.sha256.as_str().into());
        set(&record, "model", &stored.model.as_str().into());
        set(
            &record,
            "thumb",
            &Uint8Array::from(e.thumbnail_jpeg.as_slice()),
        );
    }
    record
}

/// Puts each of `photos` in `store` (the `photos` object store), keyed by its id.
fn put_photos(store: &idb::ObjectStore, photos: &[StoredPhoto]) -> Result<(), idb::Error> {
    for photo in photos {
        store
            .put(&photo_record(photo), Some(&photo.id.into()))
            .map(|_| ())?;
    }
    Ok(())
}

/// Brings a store of schema `from` (0: none yet) to [`DB_VERSION`], in the upgrade transaction:
/// a reload part-way leaves the old version whole, and the next visit upgrades it again.
///
/// - 1: the `photos` (records by id) and `meta` (values by name) object stores.
/// - 2: prepared rows name the model that computed them (`model`). Version 1 did not say, and a
///   page could load another model file, so its prepared rows are dropped and recomputed from
///   each photo's file; the photos themselves, their classes and names stay as they were.
fn upgrade(db: &Database, event: web_sys::IdbVersionChangeEvent, from: u32) {
    if from < 1 {
        for name in [PHOTOS, META] {
            if !db.store_names().iter().any(|n| n == name) {
                let _ = db.create_object_store(name, ObjectStoreParams::new());
            }
        }
        return;
    }
    if from < 2 {
        let photos = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::IdbOpenDbRequest>().ok())
            .and_then(|request| request.transaction())
            .and_then(|tx| tx.object_store(PHOTOS).ok());
        if let Some(photos) = photos {
            drop_prepared_rows(&photos);
        }
    }
}

/// Walks every record of `photos` and takes its prepared rows out ([`PREPARED_FIELDS`]).
/// Errors abort the upgrade transaction, which leaves the store as it was.
fn drop_prepared_rows(photos: &web_sys::IdbObjectStore) {
    let Ok(walk) = photos.open_cursor() else {
        return;
    };
    let request = walk.clone();
    let on_record = Closure::<dyn FnMut()>::new(move || {
        let Ok(cursor) = request
            .result()
            .and_then(|c| c.dyn_into::<web_sys::IdbCursorWithValue>())
        else {
            return; // the end of the records
        };
        if let Ok(record) = cursor.value()
            && record.is_object()
        {
            for field in PREPARED_FIELDS {
                let _ = Reflect::delete_property(
                    record.unchecked_ref::<Object>(),
                    &JsValue::from(field),
                );
            }
            let _ = cursor.update(&record);
        }
        let _ = cursor.continue_();
    });
    // Owned by the request from here (collected with it): it fires once per record.
    walk.set_onsuccess(Some(on_record.into_js_value().unchecked_ref()));
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &key.into(), value);
}

impl Store {
    /// Opens the store. `on_newer`: a newer build of the page asks for it (to upgrade it); the
    /// connection is closed, so that it can, and nothing more is written from here.
    pub async fn open(on_newer: impl FnOnce() + 'static) -> Result<Self, String> {
        let factory = Factory::new().map_err(text)?;
        let mut request = factory.open(DB_NAME, Some(DB_VERSION)).map_err(text)?;
        request.on_upgrade_needed(|event| {
            let from = event.old_version().unwrap_or(0);
            if let Ok(db) = event.database() {
                upgrade(&db, web_sys::IdbVersionChangeEvent::from(event), from);
            }
        });
        let mut db = request.await.map_err(|e| {
            if e.to_string().contains("VersionError") {
                "a newer version of Afinar keeps its photos in this browser: reload the page to \
                 use it"
                    .to_string()
            } else {
                e.to_string()
            }
        })?;
        db.on_version_change(move |event| {
            if let Some(db) = event
                .target()
                .and_then(|t| t.dyn_into::<web_sys::IdbDatabase>().ok())
            {
                db.close();
            }
            on_newer();
        });
        Ok(Self { db })
    }

    /// Closes the connection: what was asked before is still written.
    pub fn close(&self) {
        self.db.close();
    }

    async fn write(
        &self,
        store: &str,
        key: JsValue,
        value: Option<&JsValue>,
    ) -> Result<(), WriteError> {
        self.transact(&[store], |tx| {
            let objects = tx.object_store(store)?;
            match value {
                Some(value) => objects.put(value, Some(&key)).map(|_| ()),
                None => objects.delete(key).map(|_| ()),
            }
        })
        .await
    }

    /// Makes the `requests` in one read-write transaction over `stores` and waits until the
    /// browser has committed it: all of them are kept, or none.
    async fn transact(
        &self,
        stores: &[&str],
        requests: impl FnOnce(&Transaction) -> Result<(), idb::Error>,
    ) -> Result<(), WriteError> {
        let tx = self
            .db
            .transaction(stores, TransactionMode::ReadWrite)
            .map_err(WriteError::from_idb)?;
        let raw = IdbTransaction::from(tx);
        // Settled by the transaction's own end: `complete` once every request succeeded and it
        // is on disk, `abort` otherwise (a request's own error event comes first and says less).
        let ended = js_sys::Promise::new(&mut |complete, abort| {
            raw.set_oncomplete(Some(&complete));
            raw.set_onabort(Some(&abort));
        });
        // The requests need not be awaited one by one: the transaction commits only if each
        // of them succeeds.
        let tx = Transaction::from(raw.clone());
        let made = match requests(&tx) {
            Ok(()) => tx.commit().map(drop).map_err(WriteError::from_idb),
            Err(e) => {
                let _ = raw.abort();
                Err(WriteError::from_idb(e))
            }
        };
        let ended = wasm_bindgen_futures::JsFuture::from(ended).await;
        match (ended, raw.error()) {
            (Ok(_), _) => Ok(()),
            (Err(_), Some(e)) if e.name() == QUOTA_EXCEEDED => Err(WriteError::Full),
            (Err(_), Some(e)) => Err(WriteError::Failed(format!("{}: {}", e.name(), e.message()))),
            (Err(_), None) => Err(made
                .err()
                .unwrap_or_else(|| WriteError::Failed("the browser did not keep it".into()))),
        }
    }

    /// Writes `photos` and deletes the photos `deleted` in one transaction: all of it is kept,
    /// or none.
    pub async fn write_photos(
        &self,
        photos: &[StoredPhoto],
        deleted: &[u32],
    ) -> Result<(), WriteError> {
        self.transact(&[PHOTOS], |tx| {
            let store = tx.object_store(PHOTOS)?;
            put_photos(&store, photos)?;
            for id in deleted {
                store.delete(JsValue::from(*id)).map(|_| ())?;
            }
            Ok(())
        })
        .await
    }

    /// Replaces everything stored with `photos` and the `meta` values (`None` deletes one), in
    /// one transaction: a reload or a full disk leaves either all of it or what was there.
    pub async fn replace_all(
        &self,
        photos: &[StoredPhoto],
        meta: &[(&str, Option<JsValue>)],
    ) -> Result<(), WriteError> {
        self.transact(&[PHOTOS, META], |tx| {
            let store = tx.object_store(PHOTOS)?;
            store.clear().map(|_| ())?;
            put_photos(&store, photos)?;
            let kept = tx.object_store(META)?;
            for (key, value) in meta {
                match value {
                    Some(value) => kept.put(value, Some(&JsValue::from(*key))).map(|_| ())?,
                    None => kept.delete(JsValue::from(*key)).map(|_| ())?,
                }
            }
            Ok(())
        })
        .await
    }

    /// Every stored photo, and how many records could not be read as one (they stay stored,
    /// untouched).
    pub async fn photos(&self) -> Result<(Vec<StoredPhoto>, usize), String> {
        let tx = self
            .db
            .transaction(&[PHOTOS], TransactionMode::ReadOnly)
            .map_err(text)?;
        let values = tx
            .object_store(PHOTOS)
            .map_err(text)?
            .get_all(None, None)
            .map_err(text)?
            .await
            .map_err(text)?;
        let mut photos = Vec::with_capacity(values.len());
        let mut unreadable = 0;
        for (i, record) in values.into_iter().enumerate() {
            if i > 0 && i % RECORDS_PER_SLICE == 0 {
                gloo_timers::future::TimeoutFuture::new(0).await;
            }
            let (Some(id), Some(class_id), Ok(blob)) = (
                get(&record, "id").as_f64(),
                get(&record, "classId").as_f64(),
                get(&record, "blob").dyn_into::<Blob>(),
            ) else {
                unreadable += 1;
                continue;
            };
            let floats = |key: &str| {
                get(&record, key)
                    .dyn_into::<Float32Array>()
                    .ok()
                    .map(|a| a.to_vec())
            };
            let model = get(&record, "model").as_string();
            let embedding = floats("features")
                .zip(model)
                .map(|(features, model)| StoredPrepared {
                    embedding: PreparedPhoto {
                        features,
                        boundary: floats("boundary"),
                        augmented: floats("augmented").unwrap_or_default(),
                        augmented_boundary: floats("augmentedBoundary"),
                        imagenet: get(&record, "imagenet")
                            .as_string()
                            .and_then(|s| serde_json::from_str(&s).ok())
                            .unwrap_or_default(),
                        sha256: get(&record, "sha256").as_string().unwrap_or_default(),
                        thumbnail_jpeg: get(&record, "thumb")
                            .dyn_into::<Uint8Array>()
                            .map(|a| a.to_vec())
                            .unwrap_or_default(),
                    },
                    rows: RowsNeeded {
                        unfreeze: get(&record, "unfreeze").as_f64().map(|k| k as usize),
                        views: get(&record, "views").as_f64().map_or(0, |v| v as usize),
                        seed: get(&record, "seed")
                            .as_string()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0),
                    },
                    model,
                });
            photos.push(StoredPhoto {
                id: id as u32,
                class_id: class_id as u32,
                name: get(&record, "name").as_string().unwrap_or_default(),
                blob,
                embedding,
            });
        }
        photos.sort_by_key(|p| p.id);
        Ok((photos, unreadable))
    }

    /// Stores a small value (JSON text or bytes) under `key`; `None` deletes it.
    pub async fn put_meta(&self, key: &str, value: Option<JsValue>) -> Result<(), WriteError> {
        self.write(META, key.into(), value.as_ref()).await
    }

    /// A value stored as JSON text: `None` when nothing is stored under `key`, an error when
    /// it cannot be read or no longer parses (which is not the same as nothing stored).
    pub async fn meta_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, String> {
        let value = self.meta(key).await?;
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let text = value
            .as_string()
            .ok_or_else(|| format!("the stored {key} is not text"))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("the stored {key}: {e}"))
    }

    pub async fn meta(&self, key: &str) -> Result<JsValue, String> {
        let tx = self
            .db
            .transaction(&[META], TransactionMode::ReadOnly)
            .map_err(text)?;
        let value = tx
            .object_store(META)
            .map_err(text)?
            .get(JsValue::from(key))
            .map_err(text)?
            .await
            .map_err(text)?;
        Ok(value.unwrap_or(JsValue::UNDEFINED))
    }
}
