//! What survives a reload: everything the training part reads from or writes to IndexedDB
//! ([`crate::store`]).
//!
//! - On start, what the last visit kept is read back ([`Training::restore`]): the class list,
//!   the recipe, the photos (with their features when computed), the last run's scores, the
//!   head, and whether a run was under way.
//! - From then on, an effect per kept value writes it each time it changes ([`Training::keep`]):
//!   the class list (`classes`), the recipe as it is edited (`settings`), the last run's scores
//!   (`result`), and whether a run is under way (`training`: a reload in the middle of one is
//!   then explained).
//! - Photos, too big to write again on every change, are written when added and again once
//!   their features are computed, and deleted with their class or by themselves, a batch at a
//!   time ([`super::saving`]); the head file when a run ends or an imported head is accepted.
//! - When the browser's storage for the page is full, what it kept stays; the page says which
//!   photos will not be there after a reload and how to keep them (a project file).
//! - A project being opened is written whole, in one transaction, once all of it has arrived
//!   ([`Training::keep_opened_project`]): a reload before leaves the project there was.
//! - Only one tab keeps the store at a time ([`crate::tabs`]): the newest; the one before
//!   finishes its work, lets go ([`Training::let_go`]) and shows where the photos went.

use std::rc::Rc;
use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use super::state::{
    Hold, LabelCheck, Prepared, RunResult, RunState, TrainPhoto, Training, WriteTurn, run_local,
};
use crate::link::WorkerLink;
use crate::store::{Store, StoredPhoto, WriteError};
use crate::tabs;
use afinar_vocabulary::TrainSettings;
use afinar_web::roster::TrainClass;

/// How often a tab asked for the store looks whether it is done with it.
const LET_GO_POLL_MS: u32 = 100;

pub(super) fn json(value: &impl serde::Serialize) -> Option<String> {
    serde_json::to_string(value).ok()
}

impl Training {
    /// Connects to the worker and, once this tab keeps the store ([`crate::tabs`]), restores
    /// what the last visit kept and keeps it from then on.
    pub fn start(self, link: WorkerLink) {
        self.link.set_value(Some(link));
        self.ask_before_leaving_unsaved();
        tabs::claim(
            move || self.open_store(),
            Box::new(move || Box::pin(self.let_go())),
            move |turn| self.turn.set(turn),
        );
    }

    /// While photos are still being written, leaving the page asks first: a write the browser
    /// has not committed is dropped with the page, and with it a photo (thousands added at once
    /// take a while to store).
    fn ask_before_leaving_unsaved(self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let ask = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
            if self.writes.try_get_value().unwrap_or(0) > 0 {
                event.prevent_default();
                // What older browsers look at instead.
                let _ = js_sys::Reflect::set(&event, &"returnValue".into(), &"".into());
            }
        });
        let _ =
            window.add_event_listener_with_callback("beforeunload", ask.as_ref().unchecked_ref());
        // Listens as long as the page lives.
        ask.forget();
    }

    /// A newer tab asks for the store: once the run, the project file and the writes under
    /// way are done, the store is closed and nothing more is written from this tab.
    async fn let_go(self) {
        self.leaving.set_value(true);
        let busy = move || self.is_running() || self.project_busy() || self.writes.get_value() > 0;
        if busy() {
            tabs::say_finishing();
            self.say(
                "Afinar was opened in another tab. This tab hands your classes and photos over \
                 to it as soon as it has finished what it is doing.",
            );
        }
        while busy() {
            gloo_timers::future::TimeoutFuture::new(LET_GO_POLL_MS).await;
        }
        if let Some(store) = self.store.get_value() {
            store.close();
        }
        self.store.set_value(None);
    }

    /// Opens the store and restores what it keeps; from then on, keeps it up to date.
    fn open_store(self) {
        self.keep("classes", move || self.classes.with(json));
        self.keep("settings", move || self.settings.with(json));
        self.keep("result", move || {
            self.result.with(|r| r.as_ref().and_then(json))
        });
        self.keep("training", move || {
            self.run
                .with(|run| matches!(run, RunState::Running | RunState::Cancelling))
                .then(|| "running".to_string())
        });
        let writing = self.writing();
        run_local(async move {
            let _writing = writing;
            let newer = move || {
                self.store.set_value(None);
                self.say(
                    "A newer version of Afinar was opened in another tab: reload this one to \
                     keep working with your photos. Nothing more is kept from this tab.",
                );
            };
            let store = match Store::open(newer).await {
                Ok(store) => Rc::new(store),
                Err(e) => {
                    self.say(format!(
                        "This browser won't keep training photos between visits ({e})."
                    ));
                    return;
                }
            };
            self.store.set_value(Some(store.clone()));
            match self.restore(&store).await {
                Ok(()) => self.restored.set(true),
                Err(unreadable) => {
                    // Nothing more is written: what could not be read stays as it is.
                    self.store.set_value(None);
                    self.say(format!(
                        "What this browser kept from your last visit could not be read in \
                         full ({unreadable}). It is left as it was: nothing will be written over \
                         it. The photos shown here can be kept in a file with Save project; \
                         what you add now is not kept after a reload."
                    ));
                }
            }
        });
    }

    /// Writes `value()` (text) under `key`, or deletes the key when it is `None`, each time it
    /// changes once [`Self::restore`] is done: before, it would overwrite what the last visit
    /// kept with the defaults.
    fn keep(self, key: &'static str, value: impl Fn() -> Option<String> + 'static) {
        // The effect's value: what was written last (`None` before the first write).
        Effect::new(move |written: Option<Option<Option<String>>>| {
            let now = value();
            if !self.restored.get() {
                return None;
            }
            if written.flatten().as_ref() != Some(&now) {
                self.save_meta(key, now.clone().map(JsValue::from));
            }
            Some(now)
        });
    }

    /// Reads back what the last visit kept. The class list and the photos are the user's
    /// work: when either cannot be read (a read error, a value that no longer parses), what
    /// could be read is shown and the error returned, so that nothing is written over the rest.
    /// The recipe and the last scores are not: one that no longer parses is reset, and said so.
    async fn restore(self, store: &Store) -> Result<(), String> {
        let mut unreadable = Vec::new();
        let classes = store.meta_json::<Vec<TrainClass>>("classes").await;
        match &classes {
            Ok(Some(classes)) => self.classes.set(classes.clone()),
            Ok(None) => {}
            Err(e) => unreadable.push(e.clone()),
        }
        match store.meta_json::<TrainSettings>("settings").await {
            Ok(Some(settings)) => self.settings.set(settings),
            Ok(None) => {}
            Err(e) => self.say(format!(
                "The recipe kept could not be read ({e}); it was reset."
            )),
        }
        let photos = match store.photos().await {
            Ok((photos, 0)) => photos,
            Ok((photos, skipped)) => {
                unreadable.push(format!("{skipped} of the stored photos"));
                photos
            }
            Err(e) => {
                unreadable.push(format!("the stored photos: {e}"));
                Vec::new()
            }
        };
        if classes.is_err() {
            // The starting classes' names would be a guess: only the photos' own classes show.
            self.classes.set(Vec::new());
        }
        // A photo whose class is not in the list (lost with an unreadable list, or never
        // written) keeps its class, under a made-up name.
        let mut missing: Vec<u32> = photos
            .iter()
            .map(|p| p.class_id)
            .filter(|id| {
                self.classes
                    .with_untracked(|l| l.iter().all(|c| c.id != *id))
            })
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let first = self.classes.with_untracked(Vec::len);
        self.classes.update(|list| {
            list.extend(missing.into_iter().enumerate().map(|(i, id)| TrainClass {
                id,
                name: format!("Class {}", first + i + 1),
            }))
        });
        let mut restored = Vec::with_capacity(photos.len());
        let workers = crate::preferences::photo_workers(self.workers.get_untracked()) as usize;
        let needed = self
            .settings
            .get_untracked()
            .effective(photos.len(), workers)
            .rows_needed();
        for p in photos {
            self.next_id
                .update_value(|n| *n = (*n).max(p.id.saturating_add(1)));
            let state = match p.embedding {
                Some(e) if self.usable(&e, &needed) => Prepared::Ready(Arc::new(e)),
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
                state: self.photo_state(state),
            });
            if waiting {
                self.send_embed(p.id, p.blob, needed);
            }
        }
        self.photos.update(|list| {
            let mut all: Vec<TrainPhoto> = restored;
            all.append(list);
            all.sort_by_key(|p| p.id);
            *list = all;
        });
        let result = store.meta_json::<RunResult>("result").await;
        if let Err(e) = &result {
            self.say(format!(
                "The last run's scores could not be read ({e}); train again to see them."
            ));
        }
        if let Ok(Some(mut result)) = result {
            if result.labels == LabelCheck::Checking {
                // The worker that was checking them is gone with the last visit.
                result.labels = LabelCheck::Failed(
                    "The labels of this run were not checked; train again to check them.".into(),
                );
            }
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
            // The flag itself goes with the first write of the run state.
            self.say(
                "The page was closed or reloaded during training. Your classes and photos are \
                 kept; press Train to train again.",
            );
        }
        match unreadable.is_empty() {
            true => Ok(()),
            false => Err(unreadable.join("; ")),
        }
    }

    /// Writes the project just opened over everything the store kept, in one transaction:
    /// until then ([`Hold::Arriving`]) the store kept the project there was, whole. Writes
    /// asked for meanwhile follow once it is kept; if it is not, nothing more is written from
    /// this visit, and a reload brings back the project there was.
    pub(super) fn keep_opened_project(self, name: String) {
        let photos: Vec<StoredPhoto> = self
            .photos
            .with_untracked(|l| l.iter().filter_map(|p| self.stored_photo(p)).collect());
        let text = |value: Option<String>| value.map(JsValue::from);
        let meta = [
            ("classes", text(self.classes.with_untracked(json))),
            ("settings", text(self.settings.with_untracked(json))),
            (
                "result",
                text(self.result.with_untracked(|r| r.as_ref().and_then(json))),
            ),
            ("head", None),
            ("training", None),
        ];
        let Some(store) = self.store.get_value() else {
            self.hold.set_value(Hold::No);
            return;
        };
        self.hold.set_value(Hold::Writing(Vec::new()));
        let writing = self.writing();
        run_local(async move {
            let result = store.replace_all(&photos, &meta).await;
            drop(writing);
            let waiting = match self.hold.try_update_value(std::mem::take) {
                Some(Hold::Writing(waiting)) => waiting,
                _ => Vec::new(),
            };
            match result {
                Ok(()) => waiting.into_iter().for_each(|write| write()),
                Err(e) => {
                    self.store.set_value(None);
                    self.say(format!(
                        "{name} is open here, but this browser could not keep it ({e}). What it \
                         kept before is left as it was and comes back on a reload; Save project \
                         keeps this one in a file."
                    ));
                }
            }
        });
    }

    /// A project stopped arriving part-way: the store, which still keeps the project there was,
    /// is left as it was. Returns what to tell the user.
    pub(super) fn drop_opened_project(self) -> &'static str {
        let arriving = self.hold.with_value(|hold| matches!(hold, Hold::Arriving));
        if !arriving {
            return "";
        }
        self.hold.set_value(Hold::No);
        if self.store.get_value().is_some() {
            self.store.set_value(None);
            " What this browser kept before is left as it was: reload the page to get it back."
        } else {
            ""
        }
    }

    /// Writes a small value under `key` (`None` deletes it); says so when it fails. While a
    /// project is being opened, the write is left out or waits ([`Hold`]).
    pub(super) fn save_meta(self, key: &'static str, value: Option<JsValue>) {
        match self.write_turn() {
            WriteTurn::Now => {}
            WriteTurn::LeftOut => return,
            WriteTurn::Later => {
                return self.write_later(Box::new(move || self.save_meta(key, value)));
            }
        }
        let Some(store) = self.store.get_value() else {
            return;
        };
        let writing = self.writing();
        run_local(async move {
            let result = store.put_meta(key, value).await;
            drop(writing);
            match result {
                Ok(()) => {}
                Err(WriteError::Full) => self.say_storage_full(),
                Err(e) => self.say(format!("Could not save in this browser: {e}")),
            }
        });
    }

    pub(super) fn save_head(self, file: &[u8]) {
        self.save_meta("head", Some(js_sys::Uint8Array::from(file).into()));
    }
}
