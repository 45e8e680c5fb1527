//! "Train your own classes": the class list and its photos, the recipe, training with live
//! curves, the scores, and the trained head's export and import.
//!
//! Photos are prepared (features computed) by the worker as soon as they are added, once; the
//! photos, their features, the class list and the trained head are kept in IndexedDB
//! ([`crate::store`]) so a reload loses nothing.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, FileList, Url};

use crate::link::WorkerLink;
use crate::photos::jpeg_url;
use crate::store::{Store, StoredEmbedding, StoredPhoto};
use afinar_protocol::{EpochSummary, HeadInfo, Reply, TrainSettings, TrainingOutcome, TrainingSet};

/// Most classes a head can have (the worker checks too).
const MAX_CLASSES: usize = 20;
const DEFAULT_CLASSES: [&str; 5] = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainClass {
    pub id: u32,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Prepared {
    Waiting,
    Ready(Arc<StoredEmbedding>),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrainPhoto {
    pub id: u32,
    pub class_id: u32,
    pub name: String,
    pub state: RwSignal<Prepared>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    Idle,
    Running,
    Cancelling,
    Done,
    Failed(String),
}

/// A finished run as the page shows it (the head file is kept apart).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    pub outcome: TrainingOutcome,
    /// Photo id of each training-set row.
    pub photo_ids: Vec<u32>,
}

/// Everything the training part of the page owns.
#[derive(Clone, Copy)]
pub struct Training {
    pub classes: RwSignal<Vec<TrainClass>>,
    pub photos: RwSignal<Vec<TrainPhoto>>,
    pub settings: RwSignal<TrainSettings>,
    pub run: RwSignal<RunState>,
    pub epochs: RwSignal<Vec<EpochSummary>>,
    pub result: RwSignal<Option<RunResult>>,
    /// The head the worker uses for new photos.
    pub head: RwSignal<Option<HeadInfo>>,
    pub message: RwSignal<Option<String>>,
    blobs: StoredValue<HashMap<u32, Blob>, LocalStorage>,
    link: StoredValue<Option<WorkerLink>, LocalStorage>,
    store: StoredValue<Option<Rc<Store>>, LocalStorage>,
    head_file: StoredValue<Option<Vec<u8>>>,
    /// A head file being imported, until the worker accepts it.
    importing: StoredValue<Option<Vec<u8>>>,
    /// Rows of the run under way.
    running_ids: StoredValue<Vec<u32>>,
    next_id: StoredValue<u32>,
}

fn run_local(future: impl std::future::Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(future);
}

impl Training {
    pub fn new() -> Self {
        Self {
            classes: RwSignal::new(
                DEFAULT_CLASSES
                    .iter()
                    .enumerate()
                    .map(|(i, name)| TrainClass {
                        id: i as u32,
                        name: name.to_string(),
                    })
                    .collect(),
            ),
            photos: RwSignal::new(Vec::new()),
            settings: RwSignal::new(TrainSettings::default()),
            run: RwSignal::new(RunState::Idle),
            epochs: RwSignal::new(Vec::new()),
            result: RwSignal::new(None),
            head: RwSignal::new(None),
            message: RwSignal::new(None),
            blobs: StoredValue::new_local(HashMap::new()),
            link: StoredValue::new_local(None),
            store: StoredValue::new_local(None),
            head_file: StoredValue::new(None),
            importing: StoredValue::new(None),
            running_ids: StoredValue::new(Vec::new()),
            next_id: StoredValue::new(0),
        }
    }

    /// Connects to the worker and restores what the last visit kept.
    pub fn start(self, link: WorkerLink) {
        self.link.set_value(Some(link));
        run_local(async move {
            let store = match Store::open().await {
                Ok(store) => Rc::new(store),
                Err(e) => {
                    self.message.set(Some(format!(
                        "This browser won't keep training photos between visits ({e})."
                    )));
                    return;
                }
            };
            self.store.set_value(Some(store.clone()));
            self.restore(&store).await;
        });
    }

    async fn restore(self, store: &Store) {
        if let Some(classes) = store.meta_json::<Vec<TrainClass>>("classes").await {
            self.classes.set(classes);
        }
        if let Some(settings) = store.meta_json::<TrainSettings>("settings").await {
            self.settings.set(settings);
        }
        let photos = store.photos().await.unwrap_or_default();
        let mut restored = Vec::with_capacity(photos.len());
        let unfreeze = self.settings.get_untracked().unfreeze;
        for p in photos {
            self.next_id
                .update_value(|n| *n = (*n).max(p.id.saturating_add(1)));
            let state = match p.embedding {
                Some(e) if e.unfreeze == unfreeze || unfreeze.is_none() => {
                    Prepared::Ready(Arc::new(e))
                }
                _ => Prepared::Waiting,
            };
            let waiting = state == Prepared::Waiting;
            self.blobs.update_value(|b| {
                b.insert(p.id, p.blob.clone());
            });
            restored.push(TrainPhoto {
                id: p.id,
                class_id: p.class_id,
                name: p.name,
                state: RwSignal::new(state),
            });
            if waiting {
                self.send_embed(p.id, p.blob, unfreeze);
            }
        }
        self.photos.update(|list| {
            let mut all: Vec<TrainPhoto> = restored;
            all.append(list);
            all.sort_by_key(|p| p.id);
            *list = all;
        });
        if let Some(result) = store.meta_json::<RunResult>("result").await {
            self.epochs.set(result.outcome.epochs.clone());
            self.result.set(Some(result));
        }
        if let Ok(file) = store.meta("head").await
            && let Ok(bytes) = file.dyn_into::<js_sys::Uint8Array>()
        {
            let bytes = bytes.to_vec();
            self.head_file.set_value(Some(bytes.clone()));
            self.with_link(|link| link.use_head(Some(bytes)));
        }
        if store
            .meta("training")
            .await
            .ok()
            .is_some_and(|v| !v.is_undefined())
        {
            self.message.set(Some(
                "The page was closed or reloaded during training. Your classes and photos are \
                 kept; press Train to train again."
                    .into(),
            ));
            self.save_meta("training", None);
        }
    }

    fn with_link(self, f: impl FnOnce(&WorkerLink)) {
        self.link.with_value(|link| {
            if let Some(link) = link {
                f(link)
            }
        });
    }

    fn with_store(
        self,
        f: impl FnOnce(
            Rc<Store>,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>>>>
        + 'static,
    ) {
        let Some(store) = self.store.get_value() else {
            return;
        };
        let message = self.message;
        run_local(async move {
            if let Err(e) = f(store).await {
                message.set(Some(format!("Could not save in this browser: {e}")));
            }
        });
    }

    fn save_meta(self, key: &'static str, value: Option<wasm_bindgen::JsValue>) {
        self.with_store(move |store| Box::pin(async move { store.put_meta(key, value).await }));
    }

    /// Keeps `value` as JSON text (read back by [`Store::meta_json`]).
    fn save_json(self, key: &'static str, value: &impl serde::Serialize) {
        let json = serde_json::to_string(value).unwrap_or_default();
        self.save_meta(key, Some(json.into()));
    }

    fn save_classes(self) {
        self.save_json("classes", &self.classes.get_untracked());
    }

    fn save_photo(self, id: u32) {
        let Some(photo) = self
            .photos
            .with_untracked(|l| l.iter().find(|p| p.id == id).cloned())
        else {
            return;
        };
        let Some(blob) = self.blobs.with_value(|b| b.get(&id).cloned()) else {
            return;
        };
        let embedding = match photo.state.get_untracked() {
            Prepared::Ready(e) => Some((*e).clone()),
            _ => None,
        };
        let record = StoredPhoto {
            id,
            class_id: photo.class_id,
            name: photo.name,
            blob,
            embedding,
        };
        self.with_store(move |store| Box::pin(async move { store.put_photo(&record).await }));
    }

    fn send_embed(self, id: u32, blob: Blob, unfreeze: Option<usize>) {
        self.with_link(|link| link.embed(id, blob, unfreeze));
    }

    /// The class called `name` (any case), created if there is none.
    fn class_named(self, name: &str) -> Option<u32> {
        let name = name.trim();
        if let Some(c) = self.classes.with_untracked(|list| {
            list.iter()
                .find(|c| c.name.to_lowercase() == name.to_lowercase())
                .map(|c| c.id)
        }) {
            return Some(c);
        }
        if self.classes.with_untracked(Vec::len) >= MAX_CLASSES {
            self.message.set(Some(format!(
                "At most {MAX_CLASSES} classes: “{name}” was not added."
            )));
            return None;
        }
        Some(self.add_class(name))
    }

    pub fn add_class(self, name: &str) -> u32 {
        let id = self
            .classes
            .with_untracked(|l| l.iter().map(|c| c.id + 1).max().unwrap_or(0));
        let name = if name.trim().is_empty() {
            format!("class {}", id + 1)
        } else {
            name.trim().to_string()
        };
        self.classes.update(|l| l.push(TrainClass { id, name }));
        self.save_classes();
        id
    }

    pub fn rename_class(self, id: u32, name: String) {
        let name = name.trim().to_string();
        if name.is_empty() {
            return;
        }
        let taken = self.classes.with_untracked(|l| {
            l.iter()
                .any(|c| c.id != id && c.name.to_lowercase() == name.to_lowercase())
        });
        if taken {
            self.message
                .set(Some(format!("There is already a class called “{name}”.")));
            return;
        }
        self.classes.update(|l| {
            if let Some(c) = l.iter_mut().find(|c| c.id == id) {
                c.name = name;
            }
        });
        self.save_classes();
    }

    pub fn remove_class(self, id: u32) {
        let gone: Vec<u32> = self.photos.with_untracked(|l| {
            l.iter()
                .filter(|p| p.class_id == id)
                .map(|p| p.id)
                .collect()
        });
        self.photos.update(|l| l.retain(|p| p.class_id != id));
        self.classes.update(|l| l.retain(|c| c.id != id));
        self.blobs.update_value(|b| {
            for id in &gone {
                b.remove(id);
            }
        });
        self.save_classes();
        self.with_store(move |store| {
            Box::pin(async move {
                for id in gone {
                    store.delete_photo(id).await?;
                }
                Ok(())
            })
        });
    }

    pub fn remove_photo(self, id: u32) {
        self.photos.update(|l| l.retain(|p| p.id != id));
        self.blobs.update_value(|b| {
            b.remove(&id);
        });
        self.with_store(move |store| Box::pin(async move { store.delete_photo(id).await }));
    }

    /// Adds photos, each to the class of that name (created when new).
    pub fn add_photos(self, files: Vec<(String, String, Blob)>) {
        let unfreeze = self.settings.get_untracked().unfreeze;
        let mut added = Vec::new();
        for (class, name, blob) in files {
            let Some(class_id) = self.class_named(&class) else {
                continue;
            };
            let id = self.next_id.get_value();
            self.next_id.set_value(id + 1);
            self.blobs.update_value(|b| {
                b.insert(id, blob.clone());
            });
            added.push((
                TrainPhoto {
                    id,
                    class_id,
                    name,
                    state: RwSignal::new(Prepared::Waiting),
                },
                blob,
            ));
        }
        self.photos
            .update(|l| l.extend(added.iter().map(|(p, _)| p.clone())));
        for (photo, blob) in added {
            self.save_photo(photo.id);
            self.send_embed(photo.id, blob, unfreeze);
        }
    }

    /// Routes the worker's training-related replies; `false` if `reply` is not one.
    pub fn on_reply(self, reply: &Reply) -> bool {
        match reply {
            Reply::Embedded { id, result } => {
                let Some(photo) = self
                    .photos
                    .with_untracked(|l| l.iter().find(|p| p.id == *id).cloned())
                else {
                    return true;
                };
                let unfreeze = self.settings.get_untracked().unfreeze;
                photo.state.set(match result {
                    Ok(embedding) => Prepared::Ready(Arc::new(StoredEmbedding {
                        embedding: embedding.clone(),
                        unfreeze: embedding.boundary.as_ref().and(unfreeze),
                    })),
                    Err(message) => Prepared::Failed(message.clone()),
                });
                if result.is_ok() {
                    self.save_photo(*id);
                }
            }
            Reply::Epoch(epoch) => self.epochs.update(|l| l.push(epoch.clone())),
            Reply::Trained(Ok(outcome)) => {
                let mut outcome = outcome.clone();
                let file = std::mem::take(&mut outcome.head_file);
                self.head_file.set_value(Some(file.clone()));
                self.with_link(|link| link.keep_head(file.clone()));
                self.head.set(Some(HeadInfo {
                    classes: outcome.classes.clone(),
                    unfrozen_blocks: self.settings.get_untracked().unfreeze.unwrap_or(0),
                }));
                let result = RunResult {
                    outcome,
                    photo_ids: self.running_ids.get_value(),
                };
                self.save_json("result", &result);
                self.result.set(Some(result));
                self.run.set(RunState::Done);
                self.save_meta(
                    "head",
                    Some(js_sys::Uint8Array::from(file.as_slice()).into()),
                );
                self.save_meta("training", None);
            }
            Reply::Trained(Err(message)) => {
                self.run.set(RunState::Failed(message.clone()));
                self.save_meta("training", None);
            }
            Reply::HeadReady(info) => {
                if let Some(file) = self.importing.get_value() {
                    self.importing.set_value(None);
                    self.head_file.set_value(Some(file.clone()));
                    self.with_link(|link| link.keep_head(file.clone()));
                    self.save_meta(
                        "head",
                        Some(js_sys::Uint8Array::from(file.as_slice()).into()),
                    );
                    self.message.set(Some(format!(
                        "Imported a head for {}.",
                        info.classes.join(", ")
                    )));
                }
                self.head.set(Some(info.clone()));
            }
            Reply::HeadRefused(message) => {
                self.importing.set_value(None);
                self.message.set(Some(message.clone()));
            }
            Reply::Crashed(_) if self.is_running() => {
                self.run.set(RunState::Failed(
                    "The model worker stopped during training and was restarted. Your classes \
                     and photos are kept; press Train to try again."
                        .into(),
                ));
                return false;
            }
            _ => return false,
        }
        true
    }

    fn is_running(self) -> bool {
        matches!(
            self.run.get_untracked(),
            RunState::Running | RunState::Cancelling
        )
    }

    /// Photos per class, in class order.
    pub fn counts(self) -> Vec<(TrainClass, usize, usize)> {
        let classes = self.classes.get();
        self.photos.with(|photos| {
            classes
                .into_iter()
                .map(|c| {
                    let mine = photos.iter().filter(|p| p.class_id == c.id);
                    let total = mine.clone().count();
                    let ready = mine
                        .filter(|p| p.state.with(|s| matches!(s, Prepared::Ready(_))))
                        .count();
                    (c, total, ready)
                })
                .collect()
        })
    }

    pub fn waiting(self) -> usize {
        self.photos.with(|l| {
            l.iter()
                .filter(|p| p.state.with(|s| *s == Prepared::Waiting))
                .count()
        })
    }

    pub fn train(self) {
        let settings = self.settings.get_untracked();
        let classes = self.classes.get_untracked();
        let mut set = TrainingSet {
            classes: classes.iter().map(|c| c.name.clone()).collect(),
            labels: Vec::new(),
            features: Vec::new(),
            boundary: settings.unfreeze.map(|_| Vec::new()),
            sha256: Vec::new(),
            settings: settings.clone(),
        };
        let mut ids = Vec::new();
        let mut stale = Vec::new();
        self.photos.with_untracked(|photos| {
            for p in photos {
                let Some(label) = classes.iter().position(|c| c.id == p.class_id) else {
                    continue;
                };
                let Prepared::Ready(e) = p.state.get_untracked() else {
                    continue;
                };
                if settings.unfreeze.is_some()
                    && (e.unfreeze != settings.unfreeze || e.embedding.boundary.is_none())
                {
                    stale.push(p.id);
                    continue;
                }
                set.labels.push(label);
                set.features.extend_from_slice(&e.embedding.features);
                if let (Some(all), Some(b)) = (&mut set.boundary, &e.embedding.boundary) {
                    all.extend_from_slice(b);
                }
                set.sha256.push(e.embedding.sha256.clone());
                ids.push(p.id);
            }
        });
        if !stale.is_empty() {
            // Fine-tuning needs each photo's activations below the unfrozen blocks.
            for id in &stale {
                if let Some(photo) = self
                    .photos
                    .with_untracked(|l| l.iter().find(|p| p.id == *id).cloned())
                {
                    photo.state.set(Prepared::Waiting);
                }
                if let Some(blob) = self.blobs.with_value(|b| b.get(id).cloned()) {
                    self.send_embed(*id, blob, settings.unfreeze);
                }
            }
            self.message.set(Some(format!(
                "Preparing {} photos for fine-tuning; press Train again when they are ready.",
                stale.len()
            )));
            return;
        }
        self.running_ids.set_value(ids);
        self.epochs.set(Vec::new());
        self.run.set(RunState::Running);
        self.save_meta("training", Some("running".into()));
        self.save_json("settings", &settings);
        self.with_link(|link| link.train(set));
    }

    pub fn cancel(self) {
        self.run.set(RunState::Cancelling);
        self.with_link(WorkerLink::cancel_training);
    }

    pub fn import_head(self, bytes: Vec<u8>) {
        self.importing.set_value(Some(bytes.clone()));
        self.with_link(|link| link.try_head(bytes));
    }

    pub fn head_file(self) -> Option<Vec<u8>> {
        self.head_file.get_value()
    }

    /// The embedding of a photo, if ready.
    fn embedding(self, id: u32) -> Option<(TrainPhoto, Arc<StoredEmbedding>)> {
        self.photos.with(|l| {
            l.iter()
                .find(|p| p.id == id)
                .and_then(|p| match p.state.get() {
                    Prepared::Ready(e) => Some((p.clone(), e)),
                    _ => None,
                })
        })
    }
}

/// `(class, file name, blob)` for every file of a folder picker: the class is the folder that
/// holds the file (`flower_photos/daisy/1.jpg` → `daisy`).
fn folder_files(files: &FileList) -> Vec<(String, String, Blob)> {
    (0..files.length())
        .filter_map(|i| files.get(i))
        .filter(|f| f.type_().starts_with("image/") || looks_like_photo(&f.name()))
        .filter_map(|file| {
            // Not in web-sys (a WebKit name every browser has).
            let path = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
                .ok()
                .and_then(|p| p.as_string())
                .unwrap_or_default();
            let parts: Vec<&str> = path.split('/').collect();
            let class = (parts.len() >= 2).then(|| parts[parts.len() - 2].to_string())?;
            Some((class, file.name(), file.unchecked_into()))
        })
        .collect()
}

/// Takes a drop on the training part: not for the page-wide handler, which classifies photos.
fn take_drop(ev: &leptos::ev::DragEvent) -> Vec<crate::folders::DropItem> {
    ev.prevent_default();
    ev.stop_propagation();
    if let Some(body) = document().body() {
        let _ = body.class_list().remove_1("dragging");
    }
    ev.data_transfer()
        .map(|data| crate::folders::entries(&data))
        .unwrap_or_default()
}

fn looks_like_photo(name: &str) -> bool {
    let lower = name.to_lowercase();
    [".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"]
        .iter()
        .any(|e| lower.ends_with(e))
}

fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// The whole "Train your own classes" section.
#[component]
pub fn TrainingPanel(training: Training) -> impl IntoView {
    let folder_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = folder_input.get() {
            // Not in Leptos's attribute list; lets the picker choose a folder.
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });
    let on_folder = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(files) = input.files() {
            let found = folder_files(&files);
            if found.is_empty() {
                training.message.set(Some(
                    "No photos found: choose a folder with one sub-folder of photos per class."
                        .into(),
                ));
            }
            training.add_photos(found);
        }
        input.set_value("");
    };
    let new_class = RwSignal::new(String::new());
    let add_class = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = new_class.get_untracked();
        if training.classes.with_untracked(Vec::len) >= MAX_CLASSES {
            training
                .message
                .set(Some(format!("At most {MAX_CLASSES} classes.")));
            return;
        }
        if training.class_named(&name).is_some() {
            new_class.set(String::new());
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        let entries = take_drop(&ev);
        run_local(async move {
            match crate::folders::files(entries).await {
                Ok(found) => {
                    let photos: Vec<(String, String, Blob)> = found
                        .into_iter()
                        .filter(|f| looks_like_photo(&f.name))
                        .filter_map(|f| Some((f.folder?, f.name, f.blob)))
                        .collect();
                    if photos.is_empty() {
                        training.message.set(Some(
                            "Drop a folder with one sub-folder of photos per class here, or drop \
                             photos on a class."
                                .into(),
                        ));
                    }
                    training.add_photos(photos);
                }
                Err(e) => training
                    .message
                    .set(Some(format!("The dropped folder could not be read: {e}"))),
            }
        });
    };
    view! {
        <section
            class="training"
            aria-labelledby="training-title"
            data-testid="training"
            on:drop=on_drop
            on:dragover=|ev| ev.prevent_default()
        >
            <div class="training-head">
                <h2 id="training-title">"Train your own classes"</h2>
                <p class="muted">
                    "Teach the model new classes from your photos: it learns a small new head on top of "
                    "MobileNetV2, here in the page. Add or drop a folder with one sub-folder per class "
                    "(the folder names become the class names), or add photos to each class."
                </p>
            </div>
            <Show when=move || training.message.get().is_some()>
                <p class="notice" role="status" data-testid="training-message">
                    <span>{move || training.message.get().unwrap_or_default()}</span>
                    <button class="close" aria-label="Dismiss" on:click=move |_| training.message.set(None)>"×"</button>
                </p>
            </Show>
            <div class="intake-actions">
                <label class="button primary">
                    "Add a folder of classes…"
                    <input
                        type="file"
                        multiple
                        class="visually-hidden"
                        data-testid="dataset-folder-input"
                        node_ref=folder_input
                        on:change=on_folder
                    />
                </label>
                <form class="add-class" on:submit=add_class>
                    <input
                        type="text"
                        placeholder="New class name"
                        aria-label="New class name"
                        prop:value=move || new_class.get()
                        on:input=move |ev| new_class.set(event_target_value(&ev))
                    />
                    <button type="submit">"Add class"</button>
                </form>
            </div>
            <ClassList training />
            <TrainControls training />
            <Curves training />
            <Results training />
        </section>
    }
}

#[component]
fn ClassList(training: Training) -> impl IntoView {
    view! {
        <ul class="classes" data-testid="classes">
            <For
                each=move || training.counts()
                key=|(c, total, ready)| (c.id, c.name.clone(), *total, *ready)
                children=move |(class, total, ready)| view! { <ClassRow training class total ready /> }
            />
        </ul>
    }
}

#[component]
fn ClassRow(training: Training, class: TrainClass, total: usize, ready: usize) -> impl IntoView {
    let id = class.id;
    let class_name = class.name.clone();
    let data_class = class.name.clone();
    let pick_name = class.name.clone();
    let on_pick = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(files) = input.files() {
            let files = crate::photos::named_files(&files, "photo")
                .into_iter()
                .map(|(name, blob)| (pick_name.clone(), name, blob))
                .collect();
            training.add_photos(files);
        }
        input.set_value("");
    };
    let drop_name = class.name.clone();
    let on_drop = move |ev: leptos::ev::DragEvent| {
        let entries = take_drop(&ev);
        let class = drop_name.clone();
        run_local(async move {
            match crate::folders::files(entries).await {
                Ok(found) => training.add_photos(
                    found
                        .into_iter()
                        .filter(|f| {
                            looks_like_photo(&f.name) || f.blob.type_().starts_with("image/")
                        })
                        .map(|f| (class.clone(), f.name, f.blob))
                        .collect(),
                ),
                Err(e) => training
                    .message
                    .set(Some(format!("The dropped files could not be read: {e}"))),
            }
        });
    };
    let thumbs = move || {
        training.photos.with(|l| {
            l.iter()
                .filter(|p| p.class_id == id)
                .rev()
                .take(8)
                .map(|p| (p.id, p.name.clone(), p.state))
                .collect::<Vec<_>>()
        })
    };
    let status = if total == 0 {
        "no photos yet".to_string()
    } else if ready < total {
        format!("{total} photos ({ready} prepared)")
    } else {
        format!("{total} photos")
    };
    view! {
        <li class="class-row" data-testid="class-row" data-class=data_class on:drop=on_drop on:dragover=|ev| ev.prevent_default()>
            <input
                class="class-name"
                type="text"
                aria-label="Class name"
                value=class_name
                on:change=move |ev| training.rename_class(id, event_target_value(&ev))
            />
            <span class="count" class:warn=total < 2 data-testid="class-count">{status}</span>
            <span class="thumbs">
                {move || {
                    thumbs()
                        .into_iter()
                        .map(|(photo_id, name, state)| {
                            view! { <TrainThumb training photo_id name state /> }
                        })
                        .collect_view()
                }}
            </span>
            <label class="button subtle">
                "Add photos…"
                <input type="file" accept="image/*" multiple class="visually-hidden" on:change=on_pick />
            </label>
            <button class="subtle" aria-label="Remove class" title="Remove this class and its photos" on:click=move |_| training.remove_class(id)>
                "Remove"
            </button>
        </li>
    }
}

#[component]
fn TrainThumb(
    training: Training,
    photo_id: u32,
    name: String,
    state: RwSignal<Prepared>,
) -> impl IntoView {
    let url = Memo::new(move |_| match state.get() {
        Prepared::Ready(e) => jpeg_url(&e.embedding.thumbnail_jpeg),
        _ => None,
    });
    on_cleanup(move || {
        if let Some(Some(url)) = url.try_get_untracked() {
            let _ = Url::revoke_object_url(&url);
        }
    });
    let title = name.clone();
    view! {
        <span class="train-thumb" title=title>
            {move || match (state.get(), url.get()) {
                (Prepared::Failed(message), _) => view! {
                    <span class="thumb-error" role="img" aria-label=format!("{name}: {message}") title=message.clone()>"!"</span>
                }.into_any(),
                (_, Some(url)) => view! { <img src=url alt="" /> }.into_any(),
                _ => view! { <span class="spinner" aria-hidden="true"></span> }.into_any(),
            }}
            <button class="remove" aria-label="Remove photo" on:click=move |_| training.remove_photo(photo_id)>"×"</button>
        </span>
    }
}

#[component]
fn TrainControls(training: Training) -> impl IntoView {
    let settings = training.settings;
    let running = move || matches!(training.run.get(), RunState::Running | RunState::Cancelling);
    let can_train =
        move || !running() && training.waiting() == 0 && !training.photos.with(Vec::is_empty);
    let number = move |ev: &leptos::ev::Event| event_target_value(ev).parse::<f64>().ok();
    let progress = move || {
        let epochs = training.epochs.get();
        let last = epochs.last().cloned();
        let total = last
            .as_ref()
            .map_or_else(|| total_epochs(&settings.get()), |e| e.total_epochs);
        let done = last.as_ref().map_or(0, |e| e.epoch);
        let eta = last
            .as_ref()
            .filter(|e| e.epoch > 0 && e.epoch < e.total_epochs)
            .map(|e| e.elapsed_ms / e.epoch as f64 * (e.total_epochs - e.epoch) as f64 / 1000.0);
        (done, total, eta)
    };
    view! {
        <div class="train-controls">
            <details class="recipe">
                <summary>"Recipe"</summary>
                <label>
                    "Epochs "
                    <input type="number" min="1" max="500" prop:value=move || settings.get().epochs
                        on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.epochs = (v as usize).max(1)) } />
                </label>
                <label>
                    "Learning rate "
                    <input type="number" min="0.00001" step="any" prop:value=move || settings.get().learning_rate
                        on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.learning_rate = v) } />
                </label>
                <label>
                    "Validation share "
                    <input type="number" min="0" max="0.9" step="0.05" prop:value=move || settings.get().val_fraction
                        on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.val_fraction = v) } />
                </label>
                <label>
                    <input type="checkbox" data-testid="finetune-switch" prop:checked=move || settings.get().unfreeze.is_some()
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            settings.update(|s| s.unfreeze = on.then_some(2));
                        } />
                    " Then fine-tune the top of the network"
                </label>
                <Show when=move || settings.get().unfreeze.is_some()>
                    <label>
                        "Blocks to unfreeze "
                        <input type="number" min="1" max="17" prop:value=move || settings.get().unfreeze.unwrap_or(2)
                            on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.unfreeze = Some((v as usize).clamp(1, 17))) } />
                    </label>
                    <label>
                        "Fine-tuning epochs "
                        <input type="number" min="1" max="100" prop:value=move || settings.get().finetune_epochs
                            on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.finetune_epochs = (v as usize).max(1)) } />
                    </label>
                </Show>
            </details>
            <div class="train-buttons">
                <button class="primary button" data-testid="train-button" disabled=move || !can_train() on:click=move |_| training.train()>
                    "Train"
                </button>
                <Show when=running>
                    <button data-testid="cancel-button" disabled=move || training.run.get() == RunState::Cancelling on:click=move |_| training.cancel()>
                        "Cancel"
                    </button>
                </Show>
                <span class="muted" data-testid="train-status" role="status" aria-live="polite">
                    {move || {
                        let waiting = training.waiting();
                        match training.run.get() {
                            RunState::Running | RunState::Cancelling => {
                                let (done, total, eta) = progress();
                                let eta = eta.map(|s| format!(" · about {s:.0} s left")).unwrap_or_default();
                                format!("Training: epoch {done} of {total}{eta}")
                            }
                            RunState::Failed(message) => message,
                            _ if waiting > 0 => format!("Preparing {waiting} photos…"),
                            _ => String::new(),
                        }
                    }}
                </span>
            </div>
            <Show when=running>
                <progress class="train-progress" max=move || progress().1 as f64 value=move || progress().0 as f64></progress>
            </Show>
        </div>
    }
}

fn total_epochs(s: &TrainSettings) -> usize {
    s.epochs + s.unfreeze.map_or(0, |_| s.finetune_epochs)
}

/// Loss and accuracy per epoch, train (solid) and validation (dashed).
#[component]
fn Curves(training: Training) -> impl IntoView {
    const W: f64 = 300.0;
    const H: f64 = 120.0;
    let line = |points: Vec<(usize, f64)>, total: usize, top: f64| -> String {
        points
            .iter()
            .map(|(epoch, v)| {
                let x = if total <= 1 {
                    W / 2.0
                } else {
                    (*epoch as f64 - 1.0) / (total as f64 - 1.0) * W
                };
                let y = H - (v / top).clamp(0.0, 1.0) * H;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let chart = move |title: &'static str, accuracy: bool| {
        let epochs = training.epochs.get();
        let total = epochs.last().map_or(1, |e| e.total_epochs);
        let train: Vec<(usize, f64)> = epochs
            .iter()
            .map(|e| {
                (
                    e.epoch,
                    if accuracy {
                        e.train_accuracy
                    } else {
                        e.train_loss
                    },
                )
            })
            .collect();
        let val: Vec<(usize, f64)> = epochs
            .iter()
            .filter_map(|e| {
                Some((
                    e.epoch,
                    if accuracy {
                        e.val_accuracy?
                    } else {
                        e.val_loss?
                    },
                ))
            })
            .collect();
        let top = if accuracy {
            1.0
        } else {
            train
                .iter()
                .chain(&val)
                .map(|(_, v)| *v)
                .fold(0.0f64, f64::max)
                .max(1e-6)
        };
        let last = |series: &[(usize, f64)]| {
            series.last().map_or("–".to_string(), |(_, v)| {
                if accuracy {
                    percent(*v)
                } else {
                    format!("{v:.3}")
                }
            })
        };
        view! {
            <figure class="curve">
                <figcaption>
                    {title}
                    <span class="muted">{format!(" · train {} · validation {}", last(&train), last(&val))}</span>
                </figcaption>
                <svg viewBox=format!("-4 -4 {} {}", W + 8.0, H + 8.0) role="img" aria-label=title>
                    <rect x="0" y="0" width=W height=H class="plot" />
                    <polyline class="train-line" points=line(train, total, top) />
                    <polyline class="val-line" points=line(val, total, top) />
                </svg>
            </figure>
        }
    };
    view! {
        <Show when=move || !training.epochs.with(Vec::is_empty)>
            <div class="curves" data-testid="curves">
                {move || chart("Loss", false)}
                {move || chart("Accuracy", true)}
            </div>
        </Show>
    }
}

/// Scores after training: accuracy, per class, the confusion matrix, what ImageNet alone says.
#[component]
fn Results(training: Training) -> impl IntoView {
    let import = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            run_local(async move {
                match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
                    Ok(buffer) => training.import_head(js_sys::Uint8Array::new(&buffer).to_vec()),
                    Err(e) => training.message.set(Some(format!(
                        "The file could not be read: {}",
                        crate::link::describe(&e)
                    ))),
                }
            });
        }
        input.set_value("");
    };
    let export = move |_| {
        let Some(file) = training.head_file() else {
            return;
        };
        download(&file, "afinar-head.safetensors");
    };
    view! {
        <div class="results">
            <Show when=move || training.result.with(Option::is_some)>
                {move || training.result.get().map(|r| view! { <Scores training result=r /> })}
            </Show>
            <p class="head-status" data-testid="head-status">
                {move || match training.head.get() {
                    Some(h) => format!("New photos are also classified into your classes: {}.", h.classes.join(", ")),
                    None => "No trained head yet: new photos get the ImageNet labels only.".to_string(),
                }}
            </p>
            <div class="intake-actions">
                <button data-testid="export-head" disabled=move || training.head.get().is_none() on:click=export>
                    "Export head (.safetensors)"
                </button>
                <label class="button subtle">
                    "Import a head…"
                    <input type="file" accept=".safetensors" class="visually-hidden" data-testid="import-head" on:change=import />
                </label>
            </div>
        </div>
    }
}

fn download(bytes: &[u8], name: &str) {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let Ok(blob) = Blob::new_with_u8_array_sequence(&parts) else {
        return;
    };
    let Ok(url) = Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Ok(a) = document().create_element("a") {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    // Revoked a little later: the download starts after this handler returns.
    let revoke = wasm_bindgen::closure::Closure::once_into_js(move || {
        let _ = Url::revoke_object_url(&url);
    });
    let _ = window()
        .set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 10_000);
}

#[component]
fn Scores(training: Training, result: RunResult) -> impl IntoView {
    let o = result.outcome.clone();
    let classes = o.classes.clone();
    let val_accuracy = o.val_accuracy;
    let frozen = o.frozen_val_accuracy;
    let per_class: Vec<(String, f64)> = classes.iter().cloned().zip(o.per_class.clone()).collect();
    let confusion = o.confusion.clone();
    let n = classes.len();
    let max_cell = confusion
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let cell = 28.0;
    let label_w = 90.0;
    let zero_shot: Vec<u32> = o
        .val_rows
        .iter()
        .filter_map(|&row| result.photo_ids.get(row).copied())
        .take(24)
        .collect();
    let label_of = {
        let classes = classes.clone();
        move |photo: &TrainPhoto| {
            training
                .classes
                .with(|l| {
                    l.iter()
                        .find(|c| c.id == photo.class_id)
                        .map(|c| c.name.clone())
                })
                .or_else(|| classes.first().cloned())
                .unwrap_or_default()
        }
    };
    view! {
        <div class="scores">
            <p class="training-done" data-testid="training-done">
                {format!(
                    "Trained on {} in {:.1} s ({} epochs).",
                    o.backend.name(),
                    o.train_ms / 1000.0,
                    o.epochs.len()
                )}
            </p>
            <p class="big">
                "Validation accuracy: "
                <strong data-testid="val-accuracy">{val_accuracy.map_or("– (no validation photos)".to_string(), percent)}</strong>
                {frozen.map(|f| format!(" (head alone: {})", percent(f)))}
            </p>
            <div class="score-grid">
                <table class="per-class">
                    <caption>"Per class"</caption>
                    <tbody>
                        {per_class
                            .into_iter()
                            .map(|(c, a)| view! {
                                <tr>
                                    <th scope="row">{c}</th>
                                    <td><span class="bar"><span style=format!("width: {:.1}%", a * 100.0)></span></span></td>
                                    <td>{percent(a)}</td>
                                </tr>
                            })
                            .collect_view()}
                    </tbody>
                </table>
                <figure class="confusion" data-testid="confusion">
                    <figcaption>"Confusion matrix (rows: true class, columns: predicted)"</figcaption>
                    <svg
                        viewBox=format!("0 0 {} {}", label_w + cell * n as f64 + 4.0, label_w + cell * n as f64 + 4.0)
                        role="img"
                        aria-label="Confusion matrix"
                    >
                        {classes
                            .iter()
                            .enumerate()
                            .map(|(i, c)| {
                                let y = label_w + cell * i as f64 + cell * 0.65;
                                let x = label_w + cell * i as f64 + cell * 0.5;
                                view! {
                                    <text x=label_w - 4.0 y=y text-anchor="end" class="axis">{c.clone()}</text>
                                    <text x=x y=label_w - 4.0 text-anchor="start" class="axis" transform=format!("rotate(-60 {x} {})", label_w - 4.0)>{c.clone()}</text>
                                }
                            })
                            .collect_view()}
                        {confusion
                            .iter()
                            .enumerate()
                            .flat_map(|(t, row)| row.iter().enumerate().map(move |(p, &count)| (t, p, count)))
                            .map(|(t, p, count)| {
                                let x = label_w + cell * p as f64;
                                let y = label_w + cell * t as f64;
                                let shade = count as f64 / max_cell as f64;
                                let class = if t == p { "cell diag" } else { "cell" };
                                view! {
                                    <rect x=x y=y width=cell - 1.0 height=cell - 1.0 class=class style=format!("fill-opacity: {:.2}", 0.08 + 0.92 * shade)>
                                        <title>{format!("{count}")}</title>
                                    </rect>
                                    <text x=x + cell / 2.0 y=y + cell * 0.65 text-anchor="middle" class="count">{count.to_string()}</text>
                                }
                            })
                            .collect_view()}
                    </svg>
                </figure>
            </div>
            <details class="zero-shot">
                <summary>"What the ImageNet model alone says about the validation photos"</summary>
                <ul class="zero-shot-list">
                    {zero_shot
                        .into_iter()
                        .filter_map(|id| training.embedding(id))
                        .map(|(photo, e)| {
                            let truth = label_of(&photo);
                            let top = e.embedding.imagenet.first().cloned();
                            let url = jpeg_url(&e.embedding.thumbnail_jpeg);
                            view! {
                                <li>
                                    {url.map(|u| view! { <img src=u alt="" /> })}
                                    <span><strong>{truth}</strong><br />
                                        <span class="muted">{top.map_or("–".into(), |p| format!("ImageNet: {} ({:.0} %)", p.label, p.prob * 100.0))}</span>
                                    </span>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </details>
        </div>
    }
}
