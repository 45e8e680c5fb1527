//! The page's side of the worker boundary: spawns the model worker, sends it [`Request`]s and
//! hands its [`Reply`]s to the UI.
//!
//! Photos are kept as `Blob`s (cheap handles) and only a few are read into memory and sent at a
//! time, so hundreds of queued photos cost no memory. If the worker stops (a bug, a lost GPU
//! that panicked), a new one is started on the CPU with the same model, and every photo that was
//! not answered is sent again, except the one it stopped on, which gets an error.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::{Blob, ErrorEvent, MessageEvent, Worker};

use afinar_protocol::{Reply, Request, TrainingRows};
use afinar_vocabulary::{Backend, RowsNeeded};

mod js;
mod restart;
mod start;

pub use js::{describe, read_blob};

/// Photos sent to the worker and not yet answered, at most (more while several workers prepare
/// photos: [`WorkerLink::use_workers`]).
const IN_FLIGHT: usize = 3;
/// After this many stops in one session, give up instead of restarting again.
const MAX_RESTARTS: u32 = 3;

/// A worker event handler (message or error).
type Handler = Closure<dyn Fn(JsValue)>;

/// Work on one photo: classify it, or prepare it for training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    Classify,
    /// A frame of the camera's live preview.
    Frame,
    /// With the rows a recipe needs.
    Prepare(RowsNeeded),
}

#[derive(Clone)]
struct Job {
    kind: JobKind,
    id: u32,
    photo: Blob,
}

impl Job {
    fn same(&self, kind: JobKind, id: u32) -> bool {
        std::mem::discriminant(&self.kind) == std::mem::discriminant(&kind) && self.id == id
    }

    /// The reply that tells the page this job failed.
    fn failure(&self, message: String) -> Reply {
        match self.kind {
            JobKind::Classify => Reply::Classified {
                id: self.id,
                result: Err(message),
            },
            JobKind::Frame => Reply::FrameClassified {
                id: self.id,
                result: Err(message),
            },
            JobKind::Prepare(rows) => Reply::Prepared {
                id: self.id,
                rows,
                result: Err(message),
            },
        }
    }
}

#[derive(Clone)]
enum ModelRequest {
    Default(String),
    File(String, Blob),
}

struct Inner {
    worker: RefCell<Option<Worker>>,
    /// The worker's wasm is listening (it said [`Reply::Started`]).
    started: Cell<bool>,
    /// Messages posted before it was.
    outbox: RefCell<Vec<JsValue>>,
    on_reply: Box<dyn Fn(Reply)>,
    model: RefCell<Option<ModelRequest>>,
    /// While a user's model file is being tried: the model to go back to if it is refused.
    previous_model: RefCell<Option<Option<ModelRequest>>>,
    waiting: RefCell<VecDeque<Job>>,
    in_flight: RefCell<VecDeque<Job>>,
    /// A restarted worker's model file is being read: what is posted meanwhile waits in `held`.
    model_reading: Cell<bool>,
    held: RefCell<Vec<JsValue>>,
    /// The user's trained head file, sent again to a restarted worker.
    head: RefCell<Option<Vec<u8>>>,
    /// A head was sent to the worker and it has not said yet whether it took it up: `true` for
    /// a file being tried, `false` for the kept head.
    head_unanswered: Cell<Option<bool>>,
    /// The worker running now has loaded its model: a stop before that is not a head's doing.
    model_ready: Cell<bool>,
    restarts: Cell<u32>,
    /// Workers that prepare photos, as last asked for (sent again to a restarted worker).
    workers: Cell<u32>,
    /// The worker's event handlers; dropped with the worker.
    handlers: RefCell<Vec<Handler>>,
}

/// A running model worker.
#[derive(Clone)]
pub struct WorkerLink {
    inner: Rc<Inner>,
}

impl WorkerLink {
    /// Starts the worker on the user's `backend`, or on the faster one here when the user has
    /// not chosen; `on_reply` receives everything it says, in order.
    pub fn spawn(backend: Option<Backend>, on_reply: impl Fn(Reply) + 'static) -> Self {
        let link = Self {
            inner: Rc::new(Inner {
                worker: RefCell::new(None),
                started: Cell::new(false),
                outbox: RefCell::new(Vec::new()),
                on_reply: Box::new(on_reply),
                model: RefCell::new(None),
                previous_model: RefCell::new(None),
                waiting: RefCell::new(VecDeque::new()),
                in_flight: RefCell::new(VecDeque::new()),
                model_reading: Cell::new(false),
                held: RefCell::new(Vec::new()),
                head: RefCell::new(None),
                head_unanswered: Cell::new(None),
                model_ready: Cell::new(false),
                restarts: Cell::new(0),
                workers: Cell::new(1),
                handlers: RefCell::new(Vec::new()),
            }),
        };
        link.start_worker();
        link.post(&backend.map_or(Request::UseBestBackend, Request::UseBackend));
        link
    }

    pub fn load_default_model(&self, url: &str) {
        *self.inner.model.borrow_mut() = Some(ModelRequest::Default(url.to_string()));
        self.post(&Request::LoadDefaultModel {
            url: url.to_string(),
        });
    }

    /// Asks the worker to load a model file; it answers `ModelReady` or `ModelRefused`.
    pub fn load_model_file(&self, name: String, file: Blob) {
        let link = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match read_blob(&file).await {
                Ok(bytes) => {
                    let previous = link
                        .inner
                        .model
                        .replace(Some(ModelRequest::File(name.clone(), file.clone())));
                    link.post(&Request::LoadModelFile {
                        name: name.clone(),
                        bytes,
                    });
                    // If refused, a restart must reload the model that stayed.
                    link.inner.pending_model_fallback(previous);
                }
                Err(message) => (link.inner.on_reply)(Reply::ModelRefused { name, message }),
            }
        });
    }

    pub fn use_backend(&self, backend: Backend) {
        self.post(&Request::UseBackend(backend));
    }

    /// Prepares training photos on `workers` workers at once from now on.
    pub fn use_workers(&self, workers: u32) {
        self.inner.workers.set(workers.max(1));
        self.post(&Request::UseWorkers(workers));
        self.pump();
    }

    /// Queues a photo; the answer comes as [`Reply::Classified`] with this `id`.
    pub fn classify(&self, id: u32, photo: Blob) {
        self.queue(JobKind::Classify, id, photo);
    }

    /// Queues a camera frame; the answer comes as [`Reply::FrameClassified`] with this `id`.
    pub fn classify_frame(&self, id: u32, frame: Blob) {
        self.queue(JobKind::Frame, id, frame);
    }

    /// Queues a training photo; the answer comes as [`Reply::Prepared`] with this `id`.
    pub fn embed(&self, id: u32, photo: Blob, rows: RowsNeeded) {
        self.queue(JobKind::Prepare(rows), id, photo);
    }

    fn queue(&self, kind: JobKind, id: u32, photo: Blob) {
        self.inner
            .waiting
            .borrow_mut()
            .push_back(Job { kind, id, photo });
        self.pump();
    }

    /// Sends rows of the next run ahead of it ([`Request::TrainRows`]).
    pub fn send_rows(&self, part: afinar_protocol::RowsPart) {
        self.post(&Request::TrainRows(Box::new(part)));
    }

    /// Starts training; progress comes as [`Reply::Epoch`], the end as [`Reply::Trained`].
    pub fn train(&self, set: TrainingRows) {
        self.post(&Request::Train(Box::new(set)));
    }

    pub fn cancel_training(&self) {
        self.post(&Request::CancelTraining);
    }

    /// Asks for the last run's labels to be checked; the answer is [`Reply::LabelsChecked`].
    pub fn check_labels(&self) {
        self.post(&Request::CheckLabels);
    }

    /// Uses a trained head from now on (also after a worker restart); `None` forgets it.
    pub fn use_head(&self, file: Option<Vec<u8>>) {
        match &file {
            Some(bytes) => self.send_head(bytes.clone(), false),
            None => self.post(&Request::ForgetHead),
        }
        *self.inner.head.borrow_mut() = file;
    }

    /// Asks the worker to check and use a head file; it answers `HeadReady` or `HeadRefused`
    /// (then call [`Self::keep_head`]).
    pub fn try_head(&self, bytes: Vec<u8>) {
        self.send_head(bytes, true);
    }

    fn send_head(&self, bytes: Vec<u8>, trial: bool) {
        self.inner.head_unanswered.set(Some(trial));
        self.post(&Request::UseHead { bytes });
    }

    /// Asks for the classifier in use as a `.tflite`; it comes as [`Reply::ModelExported`].
    pub fn export_model(&self) {
        self.post(&Request::ExportModel);
    }

    /// Asks for the classifier in use as a web app; it comes as [`Reply::Published`].
    pub fn publish(&self, not_sure_below: f64) {
        self.post(&Request::Publish { not_sure_below });
    }

    /// A request about a project file (`afinar_protocol::project`): its replies are routed
    /// like the others.
    pub fn project(&self, request: Request) {
        self.post(&request);
    }

    /// Remembers the head the worker uses, for restarts.
    pub fn keep_head(&self, file: Vec<u8>) {
        *self.inner.head.borrow_mut() = Some(file);
    }

    /// Sends waiting photos while fewer than [`IN_FLIGHT`] are with the worker, or enough to
    /// keep every worker that prepares photos busy (two each, and one being read).
    fn pump(&self) {
        let limit = IN_FLIGHT.max(2 * self.inner.workers.get() as usize + 1);
        loop {
            if self.inner.in_flight.borrow().len() >= limit {
                return;
            }
            let Some(job) = self.inner.waiting.borrow_mut().pop_front() else {
                return;
            };
            self.inner.in_flight.borrow_mut().push_back(job.clone());
            let link = self.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match read_blob(&job.photo).await {
                    Ok(bytes) => link.post(&match job.kind {
                        JobKind::Classify => Request::Classify { id: job.id, bytes },
                        JobKind::Frame => Request::ClassifyFrame { id: job.id, bytes },
                        JobKind::Prepare(rows) => Request::Prepare {
                            id: job.id,
                            bytes,
                            rows,
                        },
                    }),
                    Err(message) => link
                        .answered(job.failure(format!("The file could not be read: {message}."))),
                }
            });
        }
    }

    fn post(&self, request: &Request) {
        let value = match serde_wasm_bindgen::to_value(request) {
            Ok(value) => value,
            Err(e) => {
                web_sys::console::error_1(&format!("afinar: {e}").into());
                return;
            }
        };
        self.post_value(value);
    }

    fn post_value(&self, value: JsValue) {
        if self.inner.model_reading.get() {
            self.inner.held.borrow_mut().push(value);
            return;
        }
        if !self.inner.started.get() {
            self.inner.outbox.borrow_mut().push(value);
            return;
        }
        if let Some(worker) = self.inner.worker.borrow().as_ref() {
            hand_over(worker, &value);
        }
    }

    fn start_worker(&self) {
        self.inner.started.set(false);
        // A stop before this worker's model is ready is not its head's doing.
        self.inner.model_ready.set(false);
        let (worker, early_events) = match start::take_early_worker() {
            Some((worker, events)) => (worker, Some(events)),
            None => match start::new_worker() {
                Ok(worker) => (worker, None),
                Err(e) => {
                    (self.inner.on_reply)(Reply::ModelFailed(format!(
                        "This browser could not start the model worker: {}",
                        describe(&e)
                    )));
                    return;
                }
            },
        };
        let weak = Rc::downgrade(&self.inner);
        let on_message = Handler::new(move |event: JsValue| {
            let Some(inner) = weak.upgrade() else { return };
            let link = WorkerLink { inner };
            let data = event.unchecked_into::<MessageEvent>().data();
            match serde_wasm_bindgen::from_value::<Reply>(data) {
                Ok(reply) => link.received(reply),
                Err(e) => web_sys::console::error_1(&format!("afinar: bad reply: {e}").into()),
            }
        });
        let weak = Rc::downgrade(&self.inner);
        let on_error = Handler::new(move |event: JsValue| {
            let Some(inner) = weak.upgrade() else { return };
            let message = event
                .dyn_ref::<ErrorEvent>()
                .map(|e| e.message())
                .unwrap_or_else(|| "the worker could not run".into());
            WorkerLink { inner }.restart(message);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        if let Some(events) = early_events {
            // Not past a restart that one of them caused.
            let (weak, adopted) = (Rc::downgrade(&self.inner), worker.clone());
            start::replay(events, &on_message, &on_error, move || {
                weak.upgrade()
                    .is_some_and(|inner| inner.worker.borrow().as_ref() == Some(&adopted))
            });
        }
        *self.inner.handlers.borrow_mut() = vec![on_message, on_error];
        *self.inner.worker.borrow_mut() = Some(worker);
    }

    fn received(&self, reply: Reply) {
        match reply {
            Reply::Started => {
                self.inner.started.set(true);
                let outbox = std::mem::take(&mut *self.inner.outbox.borrow_mut());
                if let Some(worker) = self.inner.worker.borrow().as_ref() {
                    for value in outbox {
                        hand_over(worker, &value);
                    }
                }
            }
            Reply::Crashed(message) => self.restart(message),
            Reply::Classified { .. } | Reply::FrameClassified { .. } | Reply::Prepared { .. } => {
                self.answered(reply)
            }
            Reply::ModelRefused { .. } => {
                // The worker kept its model: remember that one for restarts.
                if let Some(previous) = self.inner.previous_model.take() {
                    *self.inner.model.borrow_mut() = previous;
                }
                (self.inner.on_reply)(reply);
            }
            Reply::ModelReady(_) => {
                self.inner.previous_model.take();
                self.inner.model_ready.set(true);
                (self.inner.on_reply)(reply);
            }
            Reply::HeadReady(_) | Reply::HeadRefused(_) => {
                self.inner.head_unanswered.set(None);
                (self.inner.on_reply)(reply);
            }
            other => (self.inner.on_reply)(other),
        }
    }

    fn answered(&self, reply: Reply) {
        let done = match &reply {
            Reply::Classified { id, .. } => Some((JobKind::Classify, *id)),
            Reply::FrameClassified { id, .. } => Some((JobKind::Frame, *id)),
            Reply::Prepared { id, .. } => Some((JobKind::Prepare(RowsNeeded::default()), *id)),
            _ => None,
        };
        if let Some((kind, id)) = done {
            self.inner
                .in_flight
                .borrow_mut()
                .retain(|job| !job.same(kind, id));
        }
        (self.inner.on_reply)(reply);
        self.pump();
    }
}

impl Inner {
    fn pending_model_fallback(&self, previous: Option<ModelRequest>) {
        *self.previous_model.borrow_mut() = Some(previous);
    }
}

/// Posts a request made for sending, handing its large byte arrays (photos, a run's rows) over
/// instead of copying them: nothing here reads a request once it is posted.
fn hand_over(worker: &Worker, value: &JsValue) {
    let transfer = afinar_protocol::js::transfer_list(value);
    if let Err(e) = worker.post_message_with_transfer(value, &transfer) {
        web_sys::console::error_1(&e);
    }
}
