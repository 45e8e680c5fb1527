//! The worker's training requests: a run (its fine-tuning stage shared with helper workers on
//! the CPU, [`crate::team`]), and a helper's part of another worker's run.

use std::cell::RefCell;

use afinar::train::{Follower, Link, TrainError};
use afinar_protocol::{Reply, TrainingOutcome, TrainingRows};
use afinar_vocabulary::Backend;
use afinar_vocabulary::limits::{MAX_PHOTO_WORKERS, MIN_PHOTOS_TO_SHARE_TRAINING};
use afinar_worker_scope::{now_ms, post_floats, wasm_memory_bytes};

use super::{Failure, TrainedSet, Worker};
use crate::convert;
use crate::head::UserHead;
use crate::team::Team;

impl Worker {
    /// Trains on the current device; if WebGPU fails in the middle, once more on the CPU. On
    /// the CPU, the fine-tuning stage is shared with helper workers where the page allows more
    /// than one; if a helper stops, the run starts again without them.
    pub(super) async fn train(&self, mut set: TrainingRows) -> Result<TrainingOutcome, String> {
        self.cancel_training.set(false);
        if set.rows_ahead {
            let ahead = std::mem::take(&mut *self.rows_ahead.borrow_mut());
            ahead
                .fill(&mut set)
                .map_err(|e| format!("Training stopped: {e}. Press Train again."))?;
        }
        let recipe = afinar::Recipe::from_settings(&set.settings);
        let settings = set.settings.clone();
        let set = convert::training_set(set).map_err(|e| format!("Training stopped: {e}."))?;
        let total_epochs = recipe.total_epochs();
        let no_model = "No model is loaded yet; wait for it, then train.";
        let during = "during training; training again on the CPU";
        self.last_set.borrow_mut().take();
        // What the label check needs from the run: the photos it used, and the pooled
        // features it computed where the set had none.
        let used = RefCell::new(None);
        let outcome = self
            .retry_on_cpu(during, no_model, async |classifier, backend| {
                let device = classifier.device().clone();
                let start = now_ms(&self.scope);
                let epochs = RefCell::new(Vec::new());
                let mut on_epoch = |report: &afinar::train::EpochReport| {
                    let summary = convert::epoch(report, total_epochs, now_ms(&self.scope) - start);
                    self.post(&Reply::Epoch(summary.clone()));
                    epochs.borrow_mut().push(summary);
                    !self.cancel_training.get()
                };
                let base = classifier.base();
                let mut helper_memory = Vec::new();
                let mut result = Err(afinar::train::RunError::Train(TrainError::PeerLost));
                if let Some((team, leader)) = self.team(&set, &recipe, &settings, backend) {
                    result = afinar::train::run_with(
                        &set,
                        &recipe,
                        base,
                        &device,
                        &leader,
                        &mut on_epoch,
                    )
                    .await;
                    if result.is_ok() {
                        helper_memory = team.memory().await;
                    }
                    team.stop();
                }
                if result.as_ref().is_err_and(|e| e.is_peer_lost()) {
                    // The run starts over: its epochs are those of the run without helpers.
                    epochs.borrow_mut().clear();
                    result = afinar::train::run(&set, &recipe, base, &device, &mut on_epoch).await;
                }
                let mut run = result.map_err(|e| match e {
                    e if e.is_device_failure() => Failure::Device(e.to_string()),
                    e if e.is_cancelled() => {
                        Failure::Final(afinar_protocol::TRAINING_CANCELLED.into())
                    }
                    e => Failure::Final(format!("Training stopped: {e}.")),
                })?;
                let train_ms = now_ms(&self.scope) - start;
                *used.borrow_mut() = Some((run.used_samples.clone(), run.computed_pooled.take()));
                *self.head.borrow_mut() = Some(UserHead::new(
                    run.head_file.clone(),
                    run.metadata.classes.clone(),
                    run.parts.clone(),
                    device,
                ));
                Ok(convert::outcome(
                    run,
                    epochs.into_inner(),
                    backend,
                    train_ms,
                    wasm_memory_bytes(),
                    helper_memory,
                ))
            })
            .await?;
        if let Some((used, computed)) = used.into_inner()
            && let Some(pooled) = set.pooled.or(computed)
        {
            *self.last_set.borrow_mut() = Some(TrainedSet {
                pooled,
                labels: set.dataset.samples.iter().map(|s| s.class).collect(),
                num_classes: set.dataset.classes.len(),
                used,
                seed: recipe.seed,
            });
        }
        Ok(outcome)
    }

    /// Helpers to share the run's fine-tuning stage with, started, and this worker's end of
    /// their links: on the CPU, where the recipe fine-tunes enough photos and the page allows
    /// more than one worker. None where it does not, or where they could not start.
    fn team(
        &self,
        set: &afinar::train::TrainingSet,
        recipe: &afinar::Recipe,
        settings: &afinar_vocabulary::TrainSettings,
        backend: Backend,
    ) -> Option<(Team, afinar::train::Leader)> {
        let shares = self.workers.get().min(MAX_PHOTO_WORKERS) as usize;
        let worth_it = backend == Backend::Cpu
            && recipe.finetune.is_some()
            && set.boundary.is_some()
            && set.dataset.samples.len() >= MIN_PHOTOS_TO_SHARE_TRAINING
            && shares > 1;
        if !worth_it {
            return None;
        }
        let (_, file) = self.model.weights_and_file()?;
        Team::start(&self.scope, shares - 1, &file, settings)
            .inspect_err(|e| web_sys::console::warn_1(&e.into()))
            .ok()
    }

    /// Follows, as a helper, the fine-tuning stage of the training worker that started this
    /// one, with the training rows that came ahead of it; says why if it cannot.
    pub(super) async fn follow_stage(&self, share: afinar_protocol::StageShare) {
        let (sums, heard) = async_channel::unbounded();
        *self.stage_sums.borrow_mut() = Some(sums);
        let (mut share, recipe) = convert::followed_share(share);
        let ahead = std::mem::take(&mut *self.stage_rows.borrow_mut());
        match ahead.finish(share.labels.len()) {
            Ok(rows) => {
                share.boundary = rows.boundary.unwrap_or_default();
                share.augmented = rows.augmented_boundary;
            }
            Err(why) => return self.post(&Reply::StageFailed(why)),
        }
        let Some((classifier, _)) = self.model.current() else {
            return self.post(&Reply::StageFailed("it has no model".into()));
        };
        let unfreeze = recipe.finetune.as_ref().map_or(0, |stage| stage.unfreeze);
        let top = classifier.base().network.top(unfreeze);
        let scope = self.scope.clone();
        let peers = Follower {
            rank: share.share_rank,
            ranks: share.ranks,
            leader: Link {
                send: Box::new(move |values| post_floats(&scope, &values)),
                heard,
            },
        };
        let followed = afinar::train::finetune::follow_fine_tune(
            &recipe,
            top,
            &share,
            classifier.device(),
            &peers,
        )
        .await;
        self.stage_sums.borrow_mut().take();
        if let Err(e) = followed {
            self.post(&Reply::StageFailed(e.to_string()));
        }
    }
}
