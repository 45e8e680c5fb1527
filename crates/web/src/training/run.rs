//! A training run: starting and cancelling it, the worker's replies about training, and the
//! controls (the recipe, Train, Cancel, the progress).

use std::sync::Arc;

use leptos::prelude::*;

use super::recipe::Recipe;
use super::state::{
    LabelCheck, Prepared, RunResult, RunState, RunUnderWay, Training, use_training,
};
use crate::link::WorkerLink;
use afinar_protocol::{HeadInfo, Reply, TrainingOutcome, TrainingRows};
use afinar_vocabulary::{RowsNeeded, TrainSettings};
use afinar_web::roster::{self, RosterPhoto, StoredPrepared};

impl Training {
    /// Routes the worker's training-related replies; `false` if `reply` is not one.
    pub fn on_reply(self, reply: &Reply) -> bool {
        if matches!(reply, Reply::Crashed(_)) {
            // An export under way is lost with the worker; the button comes back.
            self.exporting.set(false);
            if self.checking_labels() {
                self.labels_checked(LabelCheck::Failed(
                    "The model worker stopped while checking the labels; train again to check \
                     them."
                        .into(),
                ));
            }
        }
        if self.on_project_reply(reply) {
            return true;
        }
        match reply {
            Reply::ModelReady(info) => {
                self.model.set_value(Some(info.sha256.clone()));
                self.model_loading.set_value(false);
                self.prepare_for_model();
                // The app shows the model.
                return false;
            }
            Reply::ModelRefused { .. } | Reply::ModelFailed(_) => {
                // The model there was stays (or there is none, which Train says).
                self.model_loading.set_value(false);
                return false;
            }
            Reply::Prepared { id, result } => {
                let Some(photo) = self.photo(*id) else {
                    return true;
                };
                let needed = self.effective_settings_untracked().rows_needed();
                photo.state.set(match result {
                    Ok(embedding) => Prepared::Ready(Arc::new(StoredPrepared {
                        embedding: embedding.clone(),
                        // What it holds (the settings may have changed since it was asked for).
                        rows: RowsNeeded {
                            unfreeze: embedding.boundary.as_ref().and(needed.unfreeze),
                            views: embedding.views(),
                            seed: needed.seed,
                        },
                        // Answers come in order: this one is from the model last ready.
                        model: self.model.get_value().unwrap_or_default(),
                    })),
                    Err(message) => Prepared::Failed(message.clone()),
                });
                if result.is_ok() {
                    self.save_photo(*id);
                }
            }
            Reply::Epoch(epoch) => self.epochs.update(|l| l.push(epoch.clone())),
            Reply::Trained(Ok(outcome)) => self.trained(outcome.clone()),
            Reply::Trained(Err(message)) => self.run.set(RunState::Failed(message.clone())),
            Reply::HeadReady(info) => self.head_ready(info),
            Reply::HeadRefused(message) => self.head_refused(message),
            Reply::HeadSetAside(reason) => self.head_set_aside(reason),
            Reply::ModelExported(result) => self.model_exported(result),
            Reply::LabelsChecked(result) => self.labels_checked(match result {
                Ok(disputed) => LabelCheck::Done(disputed.clone()),
                Err(message) => LabelCheck::Failed(message.clone()),
            }),
            Reply::Crashed(_) if self.is_running() => {
                self.run.set(RunState::Failed(
                    "The model worker stopped during training and was restarted. Your classes \
                     and photos are kept; press Train to try again."
                        .into(),
                ));
                // The app says so too.
                return false;
            }
            _ => return false,
        }
        true
    }

    /// Prepares again, with the model now in use, the photos another model prepared (a model
    /// file the user picked, or the app's model after one).
    fn prepare_for_model(self) {
        let stale: Vec<u32> = self.photos.with_untracked(|photos| {
            photos
                .iter()
                .filter(|p| {
                    p.state.with_untracked(
                        |state| matches!(state, Prepared::Ready(e) if !self.by_model_in_use(e)),
                    )
                })
                .map(|p| p.id)
                .collect()
        });
        self.prepare_again(&stale, self.effective_settings_untracked().rows_needed());
    }

    /// Has the worker prepare these photos again, for `needed`.
    fn prepare_again(self, ids: &[u32], needed: RowsNeeded) {
        for &id in ids {
            if let Some(photo) = self.photo(id) {
                photo.state.set(Prepared::Waiting);
            }
            if let Some(blob) = self.blob(id) {
                self.send_embed(id, blob, needed);
            }
        }
    }

    fn trained(self, outcome: TrainingOutcome) {
        let TrainingOutcome {
            scores: outcome,
            head_file,
        } = outcome;
        let run = self.under_way.get_value();
        self.adopt_head(head_file);
        self.head.set(Some(HeadInfo {
            classes: outcome.classes.clone(),
            unfrozen_blocks: outcome.unfrozen_blocks,
        }));
        self.result.set(Some(RunResult {
            outcome,
            photo_ids: run.photo_ids,
            labels: LabelCheck::Checking,
        }));
        self.run.set(RunState::Done);
        self.with_link(WorkerLink::check_labels);
    }

    fn labels_checked(self, check: LabelCheck) {
        self.result.update(|r| {
            if let Some(r) = r {
                r.labels = check;
            }
        });
    }

    fn checking_labels(self) -> bool {
        self.result
            .with_untracked(|r| r.as_ref().is_some_and(|r| r.labels == LabelCheck::Checking))
    }

    /// The prepared photos as a run's rows, with the photo id of each row; `Err` with the
    /// photos that must be prepared again first ([`roster::training_rows`]).
    fn training_set(self, settings: &TrainSettings) -> Result<(TrainingRows, Vec<u32>), Vec<u32>> {
        let classes = self.classes.get_untracked();
        // In the order they were added: a photo in two classes is kept in the first.
        let photos: Vec<_> = self.photos.with_untracked(|photos| {
            photos
                .iter()
                .map(|p| {
                    let prepared = match p.state.get_untracked() {
                        Prepared::Ready(e) => Some(e),
                        _ => None,
                    };
                    (p.id, p.class_id, p.name.clone(), prepared)
                })
                .collect()
        });
        let photos = photos
            .iter()
            .map(|(id, class_id, name, prepared)| RosterPhoto {
                id: *id,
                class_id: *class_id,
                name,
                prepared: prepared.as_deref(),
            });
        let model = self.model.get_value();
        roster::training_rows(&classes, photos, settings, model.as_deref())
    }

    fn train(self) {
        if self.kept_elsewhere() {
            return;
        }
        if self.model_loading.get_value() || self.model.with_value(Option::is_none) {
            // Photos restored before the model is ready, or prepared by the model being
            // replaced, may be another network's features.
            self.say("The model is still loading: press Train once it is ready.");
            return;
        }
        let settings = self.effective_settings_untracked();
        let needed = settings.rows_needed();
        let (set, photo_ids) = match self.training_set(&settings) {
            Ok(set) => set,
            Err(stale) => {
                self.prepare_again(&stale, needed);
                self.say(format!(
                    "Preparing {} photos for this recipe; press Train again when they are ready.",
                    stale.len()
                ));
                return;
            }
        };
        self.under_way.set_value(RunUnderWay { photo_ids });
        self.epochs.set(Vec::new());
        self.run.set(RunState::Running);
        self.with_link(|link| link.train(set));
    }

    fn cancel(self) {
        self.run.set(RunState::Cancelling);
        self.with_link(WorkerLink::cancel_training);
    }

    /// Photos the worker is still preparing.
    fn waiting(self) -> usize {
        self.photos.with(|l| {
            l.iter()
                .filter(|p| p.state.with(|s| *s == Prepared::Waiting))
                .count()
        })
    }
}

/// The recipe, Train and Cancel, and how the run is going.
#[component]
pub fn TrainControls() -> impl IntoView {
    let training = use_training();
    let running = move || matches!(training.run.get(), RunState::Running | RunState::Cancelling);
    let can_train =
        move || !running() && training.waiting() == 0 && !training.photos.with(Vec::is_empty);
    let progress = move || {
        let epochs = training.epochs.get();
        let last = epochs.last();
        let total = last.map_or_else(
            || training.effective_settings().total_epochs(),
            |e| e.total_epochs,
        );
        let done = last.map_or(0, |e| e.epoch);
        let eta = last
            .filter(|e| e.epoch > 0 && e.epoch < e.total_epochs)
            .map(|e| e.elapsed_ms / e.epoch as f64 * (e.total_epochs - e.epoch) as f64 / 1000.0);
        (done, total, eta)
    };
    let status = move || {
        let waiting = training.waiting();
        match training.run.get() {
            RunState::Running | RunState::Cancelling => {
                let (done, total, eta) = progress();
                let eta = eta
                    .map(|s| format!(" · about {s:.0} s left"))
                    .unwrap_or_default();
                format!("Training: epoch {done} of {total}{eta}")
            }
            RunState::Failed(message) => message,
            _ if waiting > 0 => format!("Preparing {waiting} photos…"),
            _ => String::new(),
        }
    };
    view! {
        <div class="train-controls">
            <Recipe />
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
                    {status}
                </span>
            </div>
            <Show when=running>
                <progress class="train-progress" max=move || progress().1 as f64 value=move || progress().0 as f64></progress>
            </Show>
        </div>
    }
}
