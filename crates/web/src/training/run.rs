//! A training run: starting and cancelling it, the worker's replies about training, and the
//! controls (the recipe, Train, Cancel, the progress).

use std::collections::HashMap;
use std::sync::Arc;

use leptos::prelude::*;

use super::recipe::Recipe;
use super::state::{
    LabelCheck, Prepared, RunResult, RunState, RunUnderWay, Training, run_local, use_training,
};
use crate::link::WorkerLink;
use afinar_protocol::{
    DisputedLabel, HeadInfo, ModelInfo, PreparedPhoto, TRAINING_CANCELLED, TrainingOutcome,
    TrainingRows,
};
use afinar_vocabulary::{EpochSummary, RowsNeeded, TrainSettings};
use afinar_web::roster::{self, RosterPhoto, StoredPrepared, TrainingPlan};

/// Longest a prepared photo's state waits to be set with others ([`Training::prepared`]).
const SETTLE_MS: u32 = 250;
/// Photos whose rows go to the worker in one message: each part is built and posted in a
/// short task of its own, so that the page answers while a large run's rows go.
const PHOTOS_PER_PART: usize = 128;

impl Training {
    /// The worker stopped (it is being restarted): what was under way here is lost with it.
    pub fn worker_crashed(self) {
        // An export under way is lost with the worker; the button comes back.
        self.exporting.set(false);
        self.publishing.set(false);
        if self.checking_labels() {
            self.labels_checked(LabelCheck::Failed(
                "The model worker stopped while checking the labels; train again to check them."
                    .into(),
            ));
        }
        if self.project_busy() {
            self.project_failed(
                "The model worker stopped while saving or opening the project; it was \
                 restarted. Try again."
                    .into(),
            );
        }
        if self.is_running() {
            self.run.set(RunState::Failed(
                "The model worker stopped during training and was restarted. Your classes and \
                 photos are kept; press Train to try again."
                    .into(),
            ));
        }
    }

    /// A model is ready: photos another model prepared are prepared again with it.
    pub fn model_ready(self, info: &ModelInfo) {
        self.model.set_value(Some(info.sha256.clone()));
        self.model_loading.set_value(false);
        self.prepare_for_model();
    }

    /// A model failed to load or was refused: the model there was stays (or there is none,
    /// which Train says).
    pub fn model_not_loaded(self) {
        self.model_loading.set_value(false);
        // A worker that gave up answers no export or publication under way.
        self.exporting.set(false);
        self.publishing.set(false);
    }

    /// A training photo prepared for `rows` (or why it could not be). Its state is set with
    /// the others that come within [`SETTLE_MS`]: replies come by the hundred a second with
    /// several workers, and every count of prepared photos goes over all of them (one by one,
    /// adding photos by the thousand took time in the square of their number).
    pub fn prepared(self, id: u32, rows: RowsNeeded, result: Result<PreparedPhoto, String>) {
        let state = match result {
            Ok(embedding) => Prepared::Ready(Arc::new(StoredPrepared {
                // What it holds of what was asked for.
                rows: RowsNeeded {
                    unfreeze: embedding.boundary.as_ref().and(rows.unfreeze),
                    views: embedding.views(),
                    seed: rows.seed,
                },
                embedding,
                // Answers come in order: this one is from the model last ready.
                model: self.model.get_value().unwrap_or_default(),
            })),
            Err(message) => Prepared::Failed(message),
        };
        let first = self
            .settling
            .try_update_value(|settling| {
                settling.push((id, state));
                settling.len() == 1
            })
            .unwrap_or(false);
        if first {
            gloo_timers::callback::Timeout::new(SETTLE_MS, move || self.settle_prepared()).forget();
        }
    }

    /// Sets the states of the photos prepared since the last time, and keeps their rows. Called
    /// before any other reply of the worker is handled too, so that those see every answer that
    /// came before them.
    pub fn settle_prepared(self) {
        let mut settled: HashMap<u32, Prepared> = self
            .settling
            .try_update_value(std::mem::take)
            .unwrap_or_default()
            .into_iter()
            .collect();
        // One pass over the list, not one search per photo; a photo removed meanwhile has
        // nothing to set.
        let found: Vec<(u32, RwSignal<Prepared>, Prepared)> = self.photos.with_untracked(|list| {
            list.iter()
                .filter_map(|p| settled.remove(&p.id).map(|state| (p.id, p.state, state)))
                .collect()
        });
        for (id, signal, state) in found {
            let saved = matches!(state, Prepared::Ready(_));
            signal.set(state);
            if saved {
                self.save_photo(id);
            }
        }
    }

    pub fn epoch_done(self, epoch: EpochSummary) {
        self.epochs.update(|l| l.push(epoch));
    }

    /// A run finished, was cancelled or failed.
    pub fn run_ended(self, result: Result<TrainingOutcome, String>) {
        match result {
            Ok(outcome) => self.trained(outcome),
            Err(message) => self.run.set(RunState::Failed(message)),
        }
    }

    /// The check of the last run's labels came back.
    pub fn labels_answered(self, result: Result<Vec<DisputedLabel>, String>) {
        self.labels_checked(match result {
            Ok(disputed) => LabelCheck::Done(disputed),
            Err(message) => LabelCheck::Failed(message),
        });
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

    /// The prepared photos as a run ([`roster::training_plan`]), with the prepared rows of
    /// each of its photos, in order; `Err` with the photos that must be prepared again first.
    fn training_plan(
        self,
        settings: &TrainSettings,
    ) -> Result<(TrainingPlan, Vec<Arc<StoredPrepared>>), Vec<u32>> {
        let classes = self.classes.get_untracked();
        let model = self.model.get_value();
        self.photos.with_untracked(|photos| {
            // Each photo's prepared rows, held here while the rows are assembled from them.
            let prepared: Vec<Option<Arc<StoredPrepared>>> = photos
                .iter()
                .map(|p| match p.state.get_untracked() {
                    Prepared::Ready(e) => Some(e),
                    _ => None,
                })
                .collect();
            // In the order they were added: a photo in two classes is kept in the first.
            let photos = photos.iter().zip(&prepared).map(|(p, e)| RosterPhoto {
                id: p.id,
                class_id: p.class_id,
                name: &p.name,
                prepared: e.as_deref(),
            });
            let plan = roster::training_plan(&classes, photos, settings, model.as_deref())?;
            let rows = plan
                .picked
                .iter()
                .filter_map(|&at| prepared.get(at).cloned().flatten())
                .collect();
            Ok((plan, rows))
        })
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
        let (plan, rows) = match self.training_plan(&settings) {
            Ok(plan) => plan,
            Err(stale) => {
                self.prepare_again(&stale, needed);
                self.say(format!(
                    "Preparing {} photos for this recipe; press Train again when they are ready.",
                    stale.len()
                ));
                return;
            }
        };
        self.under_way.set_value(RunUnderWay {
            photo_ids: plan.ids,
        });
        self.epochs.set(Vec::new());
        self.run.set(RunState::Running);
        run_local(self.send_run(plan.set, rows, needed));
    }

    /// Sends a run's rows in parts, a task each, then the run. A run cancelled before it went
    /// ends here; one that ended otherwise meanwhile (its worker stopped) is not sent.
    async fn send_run(self, set: TrainingRows, rows: Vec<Arc<StoredPrepared>>, needed: RowsNeeded) {
        let still_on = move || match self.run.get_untracked() {
            RunState::Running => true,
            RunState::Cancelling => {
                self.run_ended(Err(TRAINING_CANCELLED.into()));
                false
            }
            _ => false,
        };
        for (k, part) in rows.chunks(PHOTOS_PER_PART).enumerate() {
            if !still_on() {
                return;
            }
            let photos: Vec<&PreparedPhoto> = part.iter().map(|e| &e.embedding).collect();
            let part = roster::rows_part(&photos, k * PHOTOS_PER_PART, rows.len(), &needed);
            self.with_link(|link| link.send_rows(part));
            gloo_timers::future::TimeoutFuture::new(0).await;
        }
        if still_on() {
            self.with_link(|link| link.train(set));
        }
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
