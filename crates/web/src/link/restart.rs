//! A model worker that stopped, replaced: a new one on the CPU gets the model, then the head,
//! then what was not answered, in that order (each needs the one before it).

use wasm_bindgen::JsValue;

use afinar_protocol::{Reply, Request};
use afinar_vocabulary::Backend;

use super::{Job, JobKind, MAX_RESTARTS, ModelRequest, WorkerLink, read_blob};

impl WorkerLink {
    /// The worker stopped: start a new one on the CPU and resend what it had not answered.
    pub(super) fn restart(&self, reason: String) {
        if let Some(worker) = self.inner.worker.borrow_mut().take() {
            // Detach first: the old worker's last events must not reach dropped handlers.
            worker.set_onmessage(None);
            worker.set_onerror(None);
            worker.terminate();
        }
        self.inner.handlers.borrow_mut().clear();
        let restarts = self.inner.restarts.get() + 1;
        self.inner.restarts.set(restarts);
        // Requests are handled in order, so the oldest unanswered photo is the one it stopped
        // on; where helpers prepare photos (each stop of theirs is handled by the worker), the
        // oldest it was answering itself, if any.
        let culprit = {
            let mut in_flight = self.inner.in_flight.borrow_mut();
            let at = if self.inner.workers.get() > 1 {
                in_flight
                    .iter()
                    .position(|job| !matches!(job.kind, JobKind::Prepare(_)))
            } else {
                Some(0)
            };
            at.and_then(|at| in_flight.remove(at))
        };
        if let Some(job) = culprit {
            (self.inner.on_reply)(
                job.failure("The model stopped on this photo; it was restarted.".into()),
            );
        }
        // A head the worker stopped on (sent, unanswered, with the model it was sent after
        // already loaded) is not given to the next worker: replayed, it would stop that one
        // too, and every visit after.
        let unanswered = self.inner.head_unanswered.replace(None);
        if let Some(trial) = unanswered.filter(|_| self.inner.model_ready.get()) {
            if !trial {
                self.inner.head.borrow_mut().take();
            }
            (self.inner.on_reply)(Reply::HeadSetAside(reason.clone()));
        }
        if restarts > MAX_RESTARTS {
            (self.inner.on_reply)(Reply::ModelFailed(format!(
                "The model worker keeps stopping ({reason}). Reload the page to try again."
            )));
            let unanswered: Vec<Job> = self
                .inner
                .in_flight
                .borrow_mut()
                .drain(..)
                .chain(self.inner.waiting.borrow_mut().drain(..))
                .collect();
            for job in unanswered {
                (self.inner.on_reply)(job.failure("Not done: the model worker stopped.".into()));
            }
            return;
        }
        (self.inner.on_reply)(Reply::Crashed(reason));
        self.inner.outbox.borrow_mut().clear();
        // The CPU is the safe choice after a stop; the user can switch back.
        self.start_worker();
        self.post(&Request::UseBackend(Backend::Cpu));
        if self.inner.workers.get() > 1 {
            self.post(&Request::UseWorkers(self.inner.workers.get()));
        }
        // Resend, oldest first, ahead of the photos still waiting.
        let resend: Vec<_> = self.inner.in_flight.borrow_mut().drain(..).collect();
        for item in resend.into_iter().rev() {
            self.inner.waiting.borrow_mut().push_front(item);
        }
        let model = self.inner.model.borrow().clone();
        match model {
            Some(ModelRequest::Default(url)) => {
                self.post(&Request::LoadDefaultModel { url });
                self.resume();
            }
            Some(ModelRequest::File(name, file)) => {
                // The user's file is read again; whatever is posted meanwhile waits for it.
                self.inner.model_reading.set(true);
                let link = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let bytes = read_blob(&file).await;
                    if link.inner.restarts.get() != restarts {
                        return; // a later restart took over
                    }
                    link.inner.model_reading.set(false);
                    match bytes {
                        Ok(bytes) => link.post(&Request::LoadModelFile { name, bytes }),
                        Err(message) => (link.inner.on_reply)(Reply::ModelFailed(format!(
                            "Your model file could not be read again for the restarted model \
                             worker ({message}); pick it again."
                        ))),
                    }
                    link.resume();
                });
            }
            None => self.resume(),
        }
    }

    /// After the model: the head in use (unless one being tried was posted meanwhile and
    /// follows), what was posted while the model file was read, then the photos.
    fn resume(&self) {
        let head = self.inner.head.borrow().clone();
        if let Some(bytes) = head
            && self.inner.head_unanswered.get() != Some(true)
        {
            self.send_head(bytes, false);
        }
        let held: Vec<JsValue> = self.inner.held.borrow_mut().drain(..).collect();
        for value in held {
            self.post_value(value);
        }
        self.pump();
    }
}
