//! The class list: the classes, their photos (thumbnails) and how photos come in: a folder of
//! class folders (picked or dropped), or photos picked for or dropped on one class.

use std::collections::HashMap;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, FileList};

use super::state::{Prepared, TrainPhoto, Training, run_local, use_training};
use crate::folders::DroppedFile;
use crate::photos::{jpeg_url, revoke_later};
use crate::tabs::Turn;
use afinar_vocabulary::MANY_CLASSES;
use afinar_vocabulary::limits::{MIN_PHOTOS_PER_CLASS, is_photo_name};
use afinar_web::roster::{self, ClassTally, TrainClass};

impl Training {
    /// The class called `name` (any case), created if there is none; else why not, said.
    fn class_named(self, name: &str) -> Option<u32> {
        self.find_or_add_class(name)
            .map_err(|message| self.say(message))
            .ok()
    }

    /// The class called `name` (any case), created if there is none; else why not.
    fn find_or_add_class(self, name: &str) -> Result<u32, String> {
        let mut found = Err(String::new());
        // Notified only when a class was added: this runs for every photo added.
        self.classes.maybe_update(|list| {
            let before = list.len();
            found = roster::class_named(list, name);
            list.len() != before
        });
        found
    }

    fn rename_class(self, id: u32, name: String) {
        let mut renamed = Ok(());
        self.classes.maybe_update(|list| {
            renamed = roster::rename_class(list, id, &name);
            renamed.is_ok()
        });
        if let Err(message) = renamed {
            self.say(message);
        }
    }

    fn remove_class(self, id: u32) {
        let gone: Vec<u32> = self.photos.with_untracked(|l| {
            l.iter()
                .filter(|p| p.class_id == id)
                .map(|p| p.id)
                .collect()
        });
        self.photos.update(|l| l.retain(|p| p.class_id != id));
        self.classes.update(|l| l.retain(|c| c.id != id));
        self.forget_photos(gone);
    }

    pub(super) fn remove_photo(self, id: u32) {
        self.photos.update(|l| l.retain(|p| p.id != id));
        self.forget_photos(vec![id]);
    }

    /// Adds photos `(class, file name, file)`, each to the class of that name (created when
    /// new), and has the worker prepare them. They are taken in name order (class, then file),
    /// as `afinar train` reads a folder: new classes appear sorted, and a photo that is in two
    /// classes is kept in the same one as the CLI keeps it.
    fn add_photos(self, mut files: Vec<(String, String, Blob)>) {
        files.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut refused: Vec<String> = Vec::new();
        let photos = files
            .into_iter()
            .filter_map(|(class, name, blob)| match self.find_or_add_class(&class) {
                Ok(id) => Some((id, name, blob)),
                Err(_) => {
                    if refused.last() != Some(&class) {
                        refused.push(class);
                    }
                    None
                }
            })
            .collect();
        // Said once for all: one message per refused class would leave only the last.
        if !refused.is_empty() {
            let names: Vec<&str> = refused.iter().map(String::as_str).collect();
            self.say(roster::classes_not_added(&names));
        }
        self.add_to_classes(photos);
    }

    /// Adds photos `(class id, file name, file)` in this order, keeps them and has the worker
    /// prepare them; returns their ids.
    pub(super) fn add_to_classes(self, photos: Vec<(u32, String, Blob)>) -> Vec<u32> {
        if self.kept_elsewhere() {
            return Vec::new();
        }
        let mut added = Vec::new();
        for (class_id, name, blob) in photos {
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
                    state: self.photo_state(Prepared::Waiting),
                },
                blob,
            ));
        }
        self.photos
            .update(|l| l.extend(added.iter().map(|(p, _)| p.clone())));
        let ids = added.iter().map(|(p, _)| p.id).collect();
        // Storing and sending thousands of files at once would hold the page for seconds: a
        // slice at a time, letting the page run in between.
        let writing = self.writing();
        run_local(async move {
            let _writing = writing;
            let needed = self.effective_settings_untracked().rows_needed();
            for slice in added.chunks(ADDED_PER_SLICE) {
                // The writes start in the tasks this one spawns, right after it: the slice is
                // what one turn of the event loop pays for.
                gloo_timers::future::TimeoutFuture::new(0).await;
                for (photo, blob) in slice {
                    // Removed meanwhile: nothing to store or prepare.
                    if self.blob(photo.id).is_some() {
                        self.save_new_photo(photo.id);
                        self.send_embed(photo.id, blob.clone(), needed);
                    }
                }
            }
        });
        ids
    }

    /// The classes as `(id, name)`, in order (tracked): for choosers outside this part. None
    /// while another tab keeps them.
    pub fn class_options(self) -> Vec<(u32, String)> {
        if self.turn.get() != Turn::Mine {
            return Vec::new();
        }
        self.classes
            .with(|l| l.iter().map(|c| (c.id, c.name.clone())).collect())
    }

    /// Adds one photo (a camera frame) to the class with this id and has it prepared.
    pub fn add_photo_to_class(self, class_id: u32, name: String, blob: Blob) {
        if self
            .classes
            .with_untracked(|l| l.iter().any(|c| c.id == class_id))
        {
            self.add_to_classes(vec![(class_id, name, blob)]);
        }
    }

    /// Photos per class, in class order.
    fn tally(self) -> Vec<ClassTally> {
        let classes = self.classes.get();
        self.photos.with(|photos| {
            let photos = photos.iter().map(|p| {
                let ready = p.state.with(|s| matches!(s, Prepared::Ready(_)));
                (p.class_id, ready)
            });
            roster::tally(classes, photos)
        })
    }
}

/// Whether a picked or dropped file is one to train on.
fn is_photo(name: &str, blob: &Blob) -> bool {
    is_photo_name(name) || blob.type_().starts_with("image/")
}

/// `(class, file name, blob)` for every photo of a folder picker: the class is the folder that
/// holds the file (`flower_photos/daisy/1.jpg` → `daisy`).
fn folder_files(files: &FileList) -> Vec<(String, String, Blob)> {
    (0..files.length())
        .filter_map(|i| files.get(i))
        .filter(|f| is_photo(&f.name(), f))
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

/// Takes a drop on the training part (not for the page-wide handler, which classifies photos)
/// and hands its photos to `then`; `what` names what was dropped, for the message when it
/// cannot be read.
fn read_drop(
    training: Training,
    ev: &leptos::ev::DragEvent,
    what: &'static str,
    then: impl FnOnce(Vec<DroppedFile>) + 'static,
) {
    ev.prevent_default();
    ev.stop_propagation();
    if let Some(body) = document().body() {
        let _ = body.class_list().remove_1("dragging");
    }
    let entries = ev
        .data_transfer()
        .map(|data| crate::folders::entries(&data))
        .unwrap_or_default();
    run_local(async move {
        match crate::folders::files(entries).await {
            Ok(found) => then(
                found
                    .into_iter()
                    .filter(|f| is_photo(&f.name, &f.blob))
                    .collect(),
            ),
            Err(e) => training.say(format!("The dropped {what} could not be read: {e}")),
        }
    });
}

/// A folder of class folders dropped on the training part: each photo joins the class named
/// after its folder.
pub(super) fn add_dropped_folder(training: Training, ev: &leptos::ev::DragEvent) {
    read_drop(training, ev, "folder", move |found| {
        let photos: Vec<(String, String, Blob)> = found
            .into_iter()
            .filter_map(|f| Some((f.folder?, f.name, f.blob)))
            .collect();
        if photos.is_empty() {
            training.say(
                "Drop a folder with one sub-folder of photos per class here, or drop photos on a \
                 class.",
            );
        }
        training.add_photos(photos);
    });
}

/// "Add a folder of classes…" and the form that adds a class.
#[component]
pub fn Intake() -> impl IntoView {
    let training = use_training();
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
                training.say(
                    "No photos found: choose a folder with one sub-folder of photos per class.",
                );
            }
            training.add_photos(found);
        }
        input.set_value("");
    };
    let new_class = RwSignal::new(String::new());
    let add_class = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if training.class_named(&new_class.get_untracked()).is_some() {
            new_class.set(String::new());
        }
    };
    view! {
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
    }
}

/// Added photos stored and sent to the worker in one turn of the page's event loop (storing a
/// file in IndexedDB costs the browser a few milliseconds).
const ADDED_PER_SLICE: usize = 8;

/// Thumbnails shown per class: its newest photos.
const THUMBS_SHOWN: usize = 8;

/// A thumbnail in a class row: the photo's id, name and preparation.
type Thumb = (u32, String, RwSignal<Prepared>);

/// Each class's newest `per_class` photos, newest first, from one pass over `photos` (rows
/// that each scanned every photo would make adding photos to many classes quadratic).
fn newest_by_class(photos: &[TrainPhoto], per_class: usize) -> HashMap<u32, Vec<Thumb>> {
    let mut by_class: HashMap<u32, Vec<Thumb>> = HashMap::new();
    for p in photos.iter().rev() {
        let newest = by_class.entry(p.class_id).or_default();
        if newest.len() < per_class {
            newest.push((p.id, p.name.clone(), p.state));
        }
    }
    by_class
}

#[component]
pub fn ClassList() -> impl IntoView {
    let training = use_training();
    let thumbs = Memo::new(move |_| {
        training
            .photos
            .with(|photos| newest_by_class(photos, THUMBS_SHOWN))
    });
    let many = move || training.classes.with(Vec::len) > MANY_CLASSES;
    view! {
        <ul class="classes" class:many=many data-testid="classes">
            <For
                each=move || training.tally()
                key=|t| (t.class.id, t.class.name.clone(), t.photos, t.ready)
                children=move |t| view! { <ClassRow class=t.class total=t.photos ready=t.ready thumbs /> }
            />
        </ul>
        {move || roster::imbalance(&training.tally()).map(|text| view! {
            <p class="warning" role="note" data-testid="imbalance">{text}</p>
        })}
    }
}

#[component]
fn ClassRow(
    class: TrainClass,
    total: usize,
    ready: usize,
    thumbs: Memo<HashMap<u32, Vec<Thumb>>>,
) -> impl IntoView {
    let training = use_training();
    let id = class.id;
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
        let class = drop_name.clone();
        read_drop(training, &ev, "files", move |found| {
            training.add_photos(
                found
                    .into_iter()
                    .map(|f| (class.clone(), f.name, f.blob))
                    .collect(),
            );
        });
    };
    let thumbs = move || thumbs.with(|t| t.get(&id).cloned().unwrap_or_default());
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
                value=class.name
                on:change=move |ev| training.rename_class(id, event_target_value(&ev))
            />
            <span class="count" class:warn=total < MIN_PHOTOS_PER_CLASS data-testid="class-count">{status}</span>
            <span class="thumbs">
                // Keyed: a thumbnail stays while photos come and go around it, instead of being
                // rebuilt (its object URL revoked before the browser had loaded it) each time.
                <For
                    each=thumbs
                    key=|(photo_id, _, _)| *photo_id
                    children=|(photo_id, name, state)| view! { <TrainThumb photo_id name state /> }
                />
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
fn TrainThumb(photo_id: u32, name: String, state: RwSignal<Prepared>) -> impl IntoView {
    let training = use_training();
    // A new embedding (the photo prepared again) brings a new thumbnail: the old URL goes.
    let url = Memo::new(move |previous: Option<&Option<String>>| {
        if let Some(Some(old)) = previous {
            revoke_later(old.clone());
        }
        match state.get() {
            Prepared::Ready(e) => jpeg_url(&e.embedding.thumbnail_jpeg),
            _ => None,
        }
    });
    // Rows are drawn again as photos get prepared: the `<img>` may not have loaded yet.
    on_cleanup(move || {
        if let Some(Some(url)) = url.try_get_untracked() {
            revoke_later(url);
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
