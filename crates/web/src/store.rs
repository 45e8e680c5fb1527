//! What survives a reload, in IndexedDB: the training photos (as blobs, with their computed
//! features), the class list, and the trained head with its scores.
//!
//! Every write is best effort: if storage is unavailable (private mode, quota) the app keeps
//! working for this visit and says so once.

use idb::{Database, DatabaseEvent, Factory, ObjectStoreParams, TransactionMode};
use js_sys::{Float32Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::Blob;

use afinar_protocol::{Embedding, RowsNeeded};

const DB_NAME: &str = "afinar-training";
const DB_VERSION: u32 = 1;
const PHOTOS: &str = "photos";
const META: &str = "meta";

/// A training photo as stored.
pub struct StoredPhoto {
    pub id: u32,
    pub class_id: u32,
    pub name: String,
    pub blob: Blob,
    /// Present once the worker computed it.
    pub embedding: Option<StoredEmbedding>,
}

/// An [`Embedding`] with what it was prepared for (the unfrozen blocks its boundary
/// activations are for, its augmented views).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEmbedding {
    pub embedding: Embedding,
    pub rows: RowsNeeded,
}

pub struct Store {
    db: Database,
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &key.into(), value);
}

impl Store {
    pub async fn open() -> Result<Self, String> {
        let factory = Factory::new().map_err(text)?;
        let mut request = factory.open(DB_NAME, Some(DB_VERSION)).map_err(text)?;
        request.on_upgrade_needed(|event| {
            if let Ok(db) = event.database() {
                for name in [PHOTOS, META] {
                    if !db.store_names().iter().any(|n| n == name) {
                        let _ = db.create_object_store(name, ObjectStoreParams::new());
                    }
                }
            }
        });
        let db = request.await.map_err(text)?;
        Ok(Self { db })
    }

    async fn write(
        &self,
        store: &str,
        key: JsValue,
        value: Option<&JsValue>,
    ) -> Result<(), String> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadWrite)
            .map_err(text)?;
        let objects = tx.object_store(store).map_err(text)?;
        match value {
            Some(value) => {
                objects
                    .put(value, Some(&key))
                    .map_err(text)?
                    .await
                    .map_err(text)?;
            }
            None => {
                objects.delete(key).map_err(text)?.await.map_err(text)?;
            }
        }
        tx.commit().map_err(text)?.await.map_err(text)?;
        Ok(())
    }

    pub async fn put_photo(&self, photo: &StoredPhoto) -> Result<(), String> {
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
            set(
                &record,
                "thumb",
                &Uint8Array::from(e.thumbnail_jpeg.as_slice()),
            );
        }
        self.write(PHOTOS, photo.id.into(), Some(&record)).await
    }

    pub async fn delete_photo(&self, id: u32) -> Result<(), String> {
        self.write(PHOTOS, id.into(), None).await
    }

    pub async fn photos(&self) -> Result<Vec<StoredPhoto>, String> {
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
        for record in values {
            let (Some(id), Some(class_id), Ok(blob)) = (
                get(&record, "id").as_f64(),
                get(&record, "classId").as_f64(),
                get(&record, "blob").dyn_into::<Blob>(),
            ) else {
                continue;
            };
            let floats = |key: &str| {
                get(&record, key)
                    .dyn_into::<Float32Array>()
                    .ok()
                    .map(|a| a.to_vec())
            };
            let embedding = floats("features").map(|features| StoredEmbedding {
                embedding: Embedding {
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
        Ok(photos)
    }

    /// Stores a small value (JSON text or bytes) under `key`; `None` deletes it.
    pub async fn put_meta(&self, key: &str, value: Option<JsValue>) -> Result<(), String> {
        self.write(META, key.into(), value.as_ref()).await
    }

    /// A value stored as JSON text by [`Self::put_meta_json`]; `None` when absent or unreadable.
    pub async fn meta_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let text = self.meta(key).await.ok()?.as_string()?;
        serde_json::from_str(&text).ok()
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
