//! The state all parts of the training UI share: one [`Training`], provided as a Leptos
//! context ([`Training::provide`]) and read by each component with [`use_training`], the types
//! it holds, and small helpers. It uses none of its sibling modules.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use leptos::prelude::*;
use web_sys::Blob;

use crate::link::WorkerLink;
use crate::preferences::{photo_workers, use_preferences};
use crate::store::Store;
use crate::tabs::Turn;
use afinar_protocol::{DisputedLabel, HeadInfo, Publication};
use afinar_vocabulary::{EpochSummary, RowsNeeded, RunScores, TrainSettings};
use afinar_web::photo_writes::PhotoWrites;
use afinar_web::roster::{StoredPrepared, TrainClass};

const DEFAULT_CLASSES: [&str; 5] = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];

#[derive(Clone, Debug, PartialEq)]
pub enum Prepared {
    Waiting,
    Ready(Arc<StoredPrepared>),
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
    pub outcome: RunScores,
    /// Photo id of each training-set row.
    pub photo_ids: Vec<u32>,
    /// The check of its labels, which the worker runs after the training.
    #[serde(default)]
    pub labels: LabelCheck,
}

/// Where the check of a run's labels is.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum LabelCheck {
    #[default]
    Checking,
    /// The photos whose label is disputed, the most confident first.
    Done(Vec<DisputedLabel>),
    /// Why the labels were not checked (a message for people).
    Failed(String),
}

/// A project file on its way to or from the worker.
#[derive(Default)]
pub(super) enum ProjectJob {
    #[default]
    Idle,
    /// The file's name, its photos, and the parts of the file received so far.
    Saving { photos: usize, parts: js_sys::Array },
    /// The file's name; once the worker checked it, its photos are asked for in batches.
    Opening {
        name: String,
        opened: Option<Box<afinar_protocol::project::OpenedProject>>,
        /// The page's id of each project photo received so far.
        ids: Vec<u32>,
    },
}

/// What the page remembers of the run under way.
#[derive(Clone, Debug, Default)]
pub(super) struct RunUnderWay {
    /// Photo id of each training-set row.
    pub(super) photo_ids: Vec<u32>,
}

/// Everything the training part of the page owns, shared by its components as a context.
#[derive(Clone, Copy)]
pub struct Training {
    pub(super) classes: RwSignal<Vec<TrainClass>>,
    pub(super) photos: RwSignal<Vec<TrainPhoto>>,
    /// The recipe, saved as it is edited.
    pub(super) settings: RwSignal<TrainSettings>,
    /// The workers that prepare photos, as the person chose (`None`: automatic).
    pub(super) workers: RwSignal<Option<u32>>,
    pub(super) run: RwSignal<RunState>,
    pub(super) epochs: RwSignal<Vec<EpochSummary>>,
    pub(super) result: RwSignal<Option<RunResult>>,
    /// The head the worker uses for new photos.
    pub(super) head: RwSignal<Option<HeadInfo>>,
    /// The training part's notice.
    pub(super) message: RwSignal<Option<String>>,
    /// Whether what the last visit kept is back; nothing is saved before.
    pub(super) restored: RwSignal<bool>,
    pub(super) blobs: StoredValue<HashMap<u32, Blob>, LocalStorage>,
    pub(super) link: StoredValue<Option<WorkerLink>, LocalStorage>,
    pub(super) store: StoredValue<Option<Rc<Store>>, LocalStorage>,
    pub(super) head_file: StoredValue<Option<Vec<u8>>>,
    /// A head file being imported (from a file or with a project), until the worker accepts
    /// it; and whether to say so then (a project says it when it is opened).
    pub(super) importing: StoredValue<Option<(Vec<u8>, bool)>>,
    /// The worker is writing the classifier as a `.tflite`.
    pub(super) exporting: RwSignal<bool>,
    /// The worker is writing the classifier as a web app.
    pub(super) publishing: RwSignal<bool>,
    /// The last app published with the head in use, both forms.
    pub(super) publication: RwSignal<Option<Publication>>,
    /// A project file being saved or opened, and where it is (shown while it is under way).
    pub(super) project: RwSignal<Option<String>>,
    pub(super) project_job: StoredValue<ProjectJob, LocalStorage>,
    pub(super) under_way: StoredValue<RunUnderWay>,
    pub(super) next_id: StoredValue<u32>,
    /// Photo writes waiting for the store, and the photos it does not keep.
    pub(super) photo_writes: StoredValue<PhotoWrites>,
    /// Whether this tab keeps the store ([`crate::tabs`]).
    pub(super) turn: RwSignal<Turn>,
    /// Work that writes to the store, under way: writes, photos added but not yet written,
    /// the store being opened and read back. A tab lets go of the store once it is done.
    pub(super) writes: StoredValue<usize>,
    /// A newer tab asked for the store: no new work starts here.
    pub(super) leaving: StoredValue<bool>,
    /// Writes held while a project is being opened.
    pub(super) hold: StoredValue<Hold, LocalStorage>,
    /// The owner of what lives as long as the training part: each photo's state is created
    /// under it, not under the component whose event added the photo (which a re-render
    /// disposes while the worker still answers for the photo).
    pub(super) owner: StoredValue<Owner>,
    /// The sha256 of the model the worker answers with now (`None` until it is ready): what
    /// photos are prepared by.
    pub(super) model: StoredValue<Option<String>>,
    /// Another model file was picked and the worker has not answered yet: training waits, or
    /// it would train the new model's head on the old one's features.
    pub(super) model_loading: StoredValue<bool>,
    /// Photos the worker prepared whose new state is not set yet ([`Training::prepared`]).
    pub(super) settling: StoredValue<Vec<(u32, Prepared)>>,
}

/// Work under way that will write to the store ([`Training::writing`]).
pub(super) struct Writing(Training);

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.writes.update_value(|n| *n = n.saturating_sub(1));
    }
}

/// Writes held back while a project is being opened, so that the store keeps the project
/// there was until the new one is written whole, in one transaction.
#[derive(Default)]
pub(super) enum Hold {
    /// Writes go to the store as they come.
    #[default]
    No,
    /// The project's photos are arriving: writes are left out, since the project is written
    /// whole when it has arrived.
    Arriving,
    /// The project is being written: writes wait, in order, and follow once it is kept (they
    /// are dropped with the store if it is not).
    Writing(Vec<Box<dyn FnOnce()>>),
}

/// What becomes of a write asked for while a project may be being opened ([`Hold`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteTurn {
    /// It goes to the store now.
    Now,
    /// It is left out: the project arriving is written whole.
    LeftOut,
    /// It waits until the project being written is kept ([`Training::write_later`]).
    Later,
}

pub(super) fn run_local(future: impl std::future::Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(future);
}

/// The [`Training`] provided by [`Training::provide`].
pub(super) fn use_training() -> Training {
    expect_context::<Training>()
}

pub(super) fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// "1 photo", "2 photos".
pub(super) fn photos(n: usize) -> String {
    match n {
        1 => "1 photo".to_string(),
        n => format!("{n} photos"),
    }
}

impl Training {
    /// The training state, provided as a context to the components created below the caller.
    pub fn provide() -> Self {
        let training = Self {
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
            settings: RwSignal::new(TrainSettings {
                auto: true,
                ..TrainSettings::default()
            }),
            workers: use_preferences().workers,
            run: RwSignal::new(RunState::Idle),
            epochs: RwSignal::new(Vec::new()),
            result: RwSignal::new(None),
            head: RwSignal::new(None),
            message: RwSignal::new(None),
            restored: RwSignal::new(false),
            blobs: StoredValue::new_local(HashMap::new()),
            link: StoredValue::new_local(None),
            store: StoredValue::new_local(None),
            head_file: StoredValue::new(None),
            importing: StoredValue::new(None),
            exporting: RwSignal::new(false),
            publishing: RwSignal::new(false),
            publication: RwSignal::new(None),
            project: RwSignal::new(None),
            project_job: StoredValue::new_local(ProjectJob::Idle),
            under_way: StoredValue::new(RunUnderWay::default()),
            next_id: StoredValue::new(0),
            photo_writes: StoredValue::new(PhotoWrites::default()),
            turn: RwSignal::new(Turn::Claiming),
            writes: StoredValue::new(0),
            leaving: StoredValue::new(false),
            hold: StoredValue::new_local(Hold::No),
            owner: StoredValue::new(Owner::current().unwrap_or_default()),
            model: StoredValue::new(None),
            model_loading: StoredValue::new(false),
            settling: StoredValue::new(Vec::new()),
        };
        provide_context(training);
        training
    }

    /// The settings a run would use now: the user's, or the recipe the page picks for the
    /// number of photos (tracked).
    pub(super) fn effective_settings(self) -> TrainSettings {
        let photos = self.photos.with(Vec::len);
        let workers = photo_workers(self.workers.get()) as usize;
        self.settings.with(|s| s.effective(photos, workers))
    }

    /// [`Self::effective_settings`], untracked.
    pub(super) fn effective_settings_untracked(self) -> TrainSettings {
        let photos = self.photos.with_untracked(Vec::len);
        let workers = photo_workers(self.workers.get_untracked()) as usize;
        self.settings
            .with_untracked(|s| s.effective(photos, workers))
    }

    /// Changes the settings, starting from what a run would use now (an edit ends the page's
    /// own pick).
    pub(super) fn edit_settings(self, change: &dyn Fn(&mut TrainSettings)) {
        let mut s = self.effective_settings_untracked();
        s.auto = false;
        change(&mut s);
        self.settings.set(s);
    }

    /// Shows `text` in the training part's notice.
    pub(super) fn say(self, text: impl Into<String>) {
        self.message.set(Some(text.into()));
    }

    pub(super) fn with_link(self, f: impl FnOnce(&WorkerLink)) {
        self.link.with_value(|link| {
            if let Some(link) = link {
                f(link)
            }
        });
    }

    /// The user picked another model file: until the worker answers, nothing trains.
    pub fn model_requested(self) {
        self.model_loading.set_value(true);
    }

    /// Whether `prepared` came from the model in use (or none is ready yet, which will be
    /// checked again once it is: [`Self::prepare_for_model`]).
    pub(super) fn by_model_in_use(self, prepared: &StoredPrepared) -> bool {
        self.model.with_value(|m| prepared.by_model(m.as_deref()))
    }

    /// Whether a run needing `needed` can train on `prepared` with the model in use.
    pub(super) fn usable(self, prepared: &StoredPrepared, needed: &RowsNeeded) -> bool {
        self.model
            .with_value(|m| prepared.usable(needed, m.as_deref()))
    }

    pub(super) fn send_embed(self, id: u32, blob: Blob, rows: RowsNeeded) {
        self.with_link(|link| link.embed(id, blob, rows));
    }

    /// When a write asked for now may go to the store ([`Hold`]).
    pub(super) fn write_turn(self) -> WriteTurn {
        self.hold.with_value(|hold| match hold {
            Hold::No => WriteTurn::Now,
            Hold::Arriving => WriteTurn::LeftOut,
            Hold::Writing(_) => WriteTurn::Later,
        })
    }

    /// Runs `write` once the project being written is kept ([`WriteTurn::Later`]).
    pub(super) fn write_later(self, write: Box<dyn FnOnce()>) {
        self.hold.update_value(|hold| {
            if let Hold::Writing(waiting) = hold {
                waiting.push(write);
            }
        });
    }

    /// A project file is being saved or opened, or an opened one is still being written.
    pub(super) fn project_busy(self) -> bool {
        self.project.with_untracked(Option::is_some)
            || self.hold.with_value(|hold| !matches!(hold, Hold::No))
    }

    /// Whether another tab keeps the classes and photos, or is taking them over; says so.
    /// Nothing that writes to the store starts then.
    pub(super) fn kept_elsewhere(self) -> bool {
        let elsewhere = self.turn.get_untracked() != Turn::Mine || self.leaving.get_value();
        if elsewhere {
            self.say(
                "Afinar was opened in another tab, which keeps your classes and photos: work \
                 there, or use Afinar here.",
            );
        }
        elsewhere
    }

    /// Counts work that will write to the store until the returned guard is dropped.
    pub(super) fn writing(self) -> Writing {
        self.writes.update_value(|n| *n += 1);
        Writing(self)
    }

    /// A new photo's state, owned by the training part.
    pub(super) fn photo_state(self, state: Prepared) -> RwSignal<Prepared> {
        self.owner
            .with_value(|owner| owner.with(|| RwSignal::new(state)))
    }

    /// The photo with this id (untracked).
    pub(super) fn photo(self, id: u32) -> Option<TrainPhoto> {
        self.photos
            .with_untracked(|l| l.iter().find(|p| p.id == id).cloned())
    }

    /// The file of the photo with this id.
    pub(super) fn blob(self, id: u32) -> Option<Blob> {
        self.blobs.with_value(|b| b.get(&id).cloned())
    }

    pub(super) fn is_running(self) -> bool {
        matches!(
            self.run.get_untracked(),
            RunState::Running | RunState::Cancelling
        )
    }
}
