//! The inference worker's dispatcher. It answers the page's model, backend, classification,
//! training-photo and head requests itself, on the CPU kernels, and relays the rest (training,
//! exports, projects; photos too while WebGPU runs the model) to the training worker, which it starts on
//! the first such request with the model and head it holds. Requests are handled one at a time
//! in arrival order, relayed ones included, so the training worker sees them in that order.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use afinar_core::kernels::Arithmetic;
use afinar_protocol::{ModelSource, Reply, Request};
use afinar_vocabulary::{Backend, RowsNeeded};
use afinar_worker_scope::{global_scope, listen, mark, next_task, now_ms, post};
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::download;
use crate::message::variant;
use crate::model::{self, Loaded, UserHead};
use crate::pool::{Job, Pool};
use afinar_worker_scope::child::ChildLink;

mod backend;

/// The name the training worker is given for the model this worker loaded.
const MODEL_NAME: &str = "the app's model";
/// The loader script Trunk generates for the training worker (`data-loader-shim`), beside this
/// worker's own.
const TRAINING_WORKER_SCRIPT: &str = "./afinar-worker_loader.js";

/// Starts the worker: installs the message handler and tells the page it is listening.
pub fn start() {
    let scope = global_scope();
    let front = Rc::new_cyclic(|weak: &std::rc::Weak<Front>| Front {
        pool: Pool::new(scope.clone(), {
            let weak = weak.clone();
            move |jobs| {
                if let Some(front) = weak.upgrade() {
                    front.prepare_here(jobs);
                }
            }
        }),
        scope: scope.clone(),
        queue: RefCell::new(VecDeque::new()),
        busy: Cell::new(false),
        model: RefCell::new(None),
        default_from: RefCell::new(None),
        head: RefCell::new(None),
        backend_asked: Cell::new(0),
        webgpu_wanted: Cell::new(false),
        on_webgpu: Cell::new(false),
        handing_over: Cell::new(false),
        training: ChildLink::new(),
        workers: Cell::new(1),
    });
    let listener = front.clone();
    listen(&scope, move |event: MessageEvent| {
        let front = &listener;
        let data = event.data();
        match variant(&data).as_deref() {
            // Not queued: training is what the training worker is doing, and it checks this
            // between epochs.
            Some("CancelTraining") => front.training.send(&data),
            // Not queued either: the model the early worker is reading need not wait for it.
            Some("UseBestBackend") => front.use_best_backend(),
            Some(name) if answered_here(name) => {
                match serde_wasm_bindgen::from_value::<Request>(data.clone()) {
                    Ok(request) => Front::enqueue(front, Some(request), data),
                    // Answered, so that nobody waits for a reply that will never come.
                    Err(e) => post(&front.scope, &Reply::BadRequest(e.to_string())),
                }
            }
            // Relayed as they came: the training worker reads (and refuses) them.
            _ => Front::enqueue(front, None, data),
        }
    });
    mark(&scope, "afinar:started");
    if scope.name() == afinar_vocabulary::EARLY_WORKER_NAME {
        let request = Request::LoadDefaultModel {
            url: afinar_vocabulary::default_model_url(),
        };
        if let Ok(raw) = serde_wasm_bindgen::to_value(&request) {
            Front::enqueue(&front, Some(request), raw);
        }
    }
}

/// The requests this worker reads; the others go to the training worker as they are.
fn answered_here(variant: &str) -> bool {
    matches!(
        variant,
        "LoadDefaultModel"
            | "LoadModelFile"
            | "UseBackend"
            | "UseBestBackend"
            | "Classify"
            | "ClassifyFrame"
            | "Prepare"
            | "UseHead"
            | "ForgetHead"
            | "UseWorkers"
    )
}

struct Front {
    scope: DedicatedWorkerGlobalScope,
    /// Requests waiting their turn: read ones, and relayed ones as they came.
    queue: RefCell<VecDeque<(Option<Request>, JsValue)>>,
    busy: Cell<bool>,
    model: RefCell<Option<Loaded>>,
    /// The URL the model in `model` came from, where it is the default one.
    default_from: RefCell<Option<String>>,
    head: RefCell<Option<UserHead>>,
    /// Backend requests so far: an adapter probe answers only if none came after it.
    backend_asked: Cell<u32>,
    /// The page asked for WebGPU: the training worker's backend is the page's to hear of.
    webgpu_wanted: Cell<bool>,
    /// WebGPU runs the model: photos go to the training worker.
    on_webgpu: Cell<bool>,
    /// The training worker is reading the model handed to it: what it says of that is not news.
    handing_over: Cell<bool>,
    training: ChildLink,
    /// Helper workers that prepare training photos, where the page asked for more than one.
    pool: Pool,
    /// Workers the page allows ([`Request::UseWorkers`]).
    workers: Cell<u32>,
}

impl Front {
    fn enqueue(this: &Rc<Self>, request: Option<Request>, raw: JsValue) {
        this.queue.borrow_mut().push_back((request, raw));
        if this.busy.replace(true) {
            return;
        }
        let this = this.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                let next = this.queue.borrow_mut().pop_front();
                let Some((request, raw)) = next else { break };
                this.handle(request, raw).await;
            }
            this.busy.set(false);
        });
    }

    fn post(&self, reply: &Reply) {
        post(&self.scope, reply);
    }

    async fn handle(self: &Rc<Self>, request: Option<Request>, raw: JsValue) {
        let Some(request) = request else {
            return self.relay(&raw);
        };
        match request {
            // The early worker read it before the page asked.
            Request::LoadDefaultModel { url }
                if self.default_from.borrow().as_ref() == Some(&url) =>
            {
                mark(&self.scope, "afinar:model-already-read");
            }
            Request::LoadDefaultModel { url } => self.load_default_model(&url).await,
            Request::LoadModelFile { name, bytes } => {
                let start = now_ms(&self.scope);
                let sha256 = download::sha256_hex(&self.scope, &bytes).await;
                match self.install(bytes, sha256, ModelSource::File(name.clone()), start) {
                    Ok(()) => {
                        self.default_from.borrow_mut().take();
                        self.tell_training(&raw);
                    }
                    Err(message) => self.post(&Reply::ModelRefused { name, message }),
                }
            }
            Request::UseBackend(backend) => {
                self.backend_asked.set(self.backend_asked.get() + 1);
                match backend {
                    Backend::Cpu => self.use_cpu(None),
                    Backend::WebGpu => self.use_webgpu(&raw),
                }
            }
            Request::UseBestBackend => self.use_best_backend(),
            Request::Classify { id, bytes } if !self.on_webgpu.get() => {
                let result = self.classify(&bytes);
                self.post(&Reply::Classified { id, result });
            }
            Request::ClassifyFrame { id, bytes } if !self.on_webgpu.get() => {
                let result = self.classify(&bytes);
                self.post(&Reply::FrameClassified { id, result });
            }
            Request::Prepare { id, rows, .. } if !self.on_webgpu.get() && self.pool.is_active() => {
                self.pool.prepare(Job { id, rows, raw });
            }
            Request::Prepare { id, bytes, rows } if !self.on_webgpu.get() => {
                let result = self.prepare(&bytes, rows);
                self.post(&Reply::Prepared { id, rows, result });
            }
            Request::UseWorkers(workers) => {
                self.pool.use_workers(workers);
                self.workers.set(workers);
                // The training worker shares its fine-tuning with as many.
                self.tell_training(&raw);
            }
            Request::UseHead { bytes } => match self.use_head(bytes) {
                Ok(info) => {
                    self.post(&Reply::HeadReady(info));
                    self.tell_training(&raw);
                }
                Err(message) => self.post(&Reply::HeadRefused(message)),
            },
            Request::ForgetHead => {
                self.head.borrow_mut().take();
                self.tell_training(&raw);
            }
            _ => self.relay(&raw),
        }
    }

    fn classify(&self, bytes: &[u8]) -> Result<afinar_protocol::Classification, String> {
        let model = self.model.borrow();
        let loaded = model
            .as_ref()
            .ok_or("No model is loaded, so the photo can't be classified.")?;
        let head = self.head.borrow();
        let packed = head.as_ref().map(|h| h.packed.as_ref());
        model::classify(&loaded.classifier, packed, bytes, || now_ms(&self.scope))
    }

    fn prepare(
        &self,
        bytes: &[u8],
        rows: RowsNeeded,
    ) -> Result<afinar_protocol::PreparedPhoto, String> {
        let model = self.model.borrow();
        let loaded = model
            .as_ref()
            .ok_or("No model is loaded yet, so the photo can't be prepared.")?;
        model::prepare(&loaded.classifier, bytes, rows)
    }

    /// Photos the pool hands back (no helper is left): prepared here, in their turn.
    fn prepare_here(self: &Rc<Self>, jobs: Vec<Job>) {
        for job in jobs {
            match serde_wasm_bindgen::from_value::<Request>(job.raw.clone()) {
                Ok(request) => Front::enqueue(self, Some(request), job.raw),
                Err(e) => self.post(&Reply::Prepared {
                    id: job.id,
                    rows: job.rows,
                    result: Err(e.to_string()),
                }),
            }
        }
    }

    /// Reads and packs a model; on error nothing changes and the message says why.
    fn install(
        &self,
        bytes: Vec<u8>,
        sha256: String,
        source: ModelSource,
        start: f64,
    ) -> Result<(), String> {
        self.post(&Reply::Status("Reading the model…".into()));
        let current = self
            .model
            .borrow()
            .as_ref()
            .map(|m| m.classifier.labels().to_vec());
        let (loaded, info) = model::load(
            bytes,
            sha256,
            source,
            Arithmetic::from_query(&self.scope.location().search()),
            current.as_deref(),
            || now_ms(&self.scope) - start,
        )?;
        self.pool.use_model(loaded.file.clone());
        *self.model.borrow_mut() = Some(loaded);
        self.post(&Reply::ModelReady(info));
        mark(&self.scope, "afinar:model-ready");
        Ok(())
    }

    /// A photo is queued, to be classified or prepared.
    fn photo_waiting(&self) -> bool {
        self.queue.borrow().iter().any(|(request, _)| {
            matches!(
                request,
                Some(
                    Request::Classify { .. }
                        | Request::ClassifyFrame { .. }
                        | Request::Prepare { .. }
                )
            )
        })
    }

    fn use_head(&self, file: Vec<u8>) -> Result<afinar_protocol::HeadInfo, String> {
        let model = self.model.borrow();
        let loaded = model
            .as_ref()
            .ok_or("No model is loaded yet, so the head can't be checked.")?;
        let (head, info) = model::head(&loaded.classifier, file)?;
        *self.head.borrow_mut() = Some(head);
        Ok(info)
    }

    /// Sends a request to the training worker where it runs (it keeps the same model and head
    /// as this one); nothing where it does not.
    fn tell_training(&self, raw: &JsValue) {
        if self.training.is_running() {
            if variant(raw).as_deref() == Some("LoadModelFile") {
                self.handing_over.set(true);
            }
            self.training.send(raw);
        }
    }

    /// Sends a request to the training worker, starting it first (with this worker's model and
    /// head) where it does not run yet.
    fn relay(self: &Rc<Self>, raw: &JsValue) {
        if matches!(variant(raw).as_deref(), Some("Train" | "TrainRows")) {
            // Training needs the memory more than idle helpers do.
            self.pool.rest();
        }
        if !self.training.is_running() {
            let mut setup = Vec::new();
            if let Some(loaded) = self.model.borrow().as_ref() {
                setup.push(Request::LoadModelFile {
                    name: MODEL_NAME.into(),
                    bytes: loaded.file.as_ref().clone(),
                });
                self.handing_over.set(true);
            }
            if let Some(head) = self.head.borrow().as_ref() {
                setup.push(Request::UseHead {
                    bytes: head.file.clone(),
                });
            }
            setup.push(Request::UseWorkers(self.workers.get()));
            let this = self.clone();
            let that = self.clone();
            let started = self.training.start(
                &self.scope,
                TRAINING_WORKER_SCRIPT,
                "the training worker",
                setup,
                move |reply| this.training_replied(reply),
                move |why, unsent| that.training_unreachable(&why, unsent),
            );
            if let Err(why) = started {
                return self.training_unreachable(&why, vec![raw.clone()]);
            }
        }
        // Relayed requests are not read here again: their rows are handed over.
        self.training.hand_over(raw);
    }

    /// The training worker could not start: every request held for it that the page waits on
    /// is answered as failed, saying why (the model and head it was handed are this worker's
    /// to answer for, and were).
    fn training_unreachable(&self, why: &str, unsent: Vec<JsValue>) {
        self.handing_over.set(false);
        self.webgpu_wanted.set(false);
        let message = format!(
            "This needs the training part of Afinar, which could not be loaded ({why}). Check \
             the connection and try again; classifying photos still works."
        );
        for raw in unsent {
            if matches!(
                variant(&raw).as_deref(),
                Some("LoadDefaultModel" | "LoadModelFile" | "UseHead")
            ) {
                continue;
            }
            let failure = serde_wasm_bindgen::from_value::<Request>(raw)
                .ok()
                .and_then(|request| request.failure(&message));
            if let Some(reply) = failure {
                self.post(&reply);
            }
        }
    }

    /// A reply of the training worker: passed on to the page unless this worker has already
    /// said it (the model, the head) or it is about a backend the page did not ask it for.
    fn training_replied(&self, reply: JsValue) {
        match variant(&reply).as_deref() {
            Some("ModelReady" | "ModelRefused" | "ModelFailed") => {
                self.handing_over.set(false);
                return;
            }
            Some("HeadReady" | "HeadRefused") => return,
            Some("Status") if self.handing_over.get() => return,
            Some("BackendReady") => {
                if !self.webgpu_wanted.get() {
                    return;
                }
                if let Ok(Reply::BackendReady { backend, .. }) =
                    serde_wasm_bindgen::from_value(reply.clone())
                {
                    self.on_webgpu.set(backend == Backend::WebGpu);
                }
            }
            Some("Trained") => {
                // The new head classifies here too, from now on.
                if let Ok(Reply::Trained(Ok(outcome))) =
                    serde_wasm_bindgen::from_value(reply.clone())
                    && let Err(e) = self.use_head(outcome.head_file)
                {
                    web_sys::console::warn_1(&e.into());
                }
            }
            _ => {}
        }
        if let Err(e) = self.scope.post_message(&reply) {
            web_sys::console::error_1(&e);
        }
    }

    async fn load_default_model(&self, url: &str) {
        let start = now_ms(&self.scope);
        mark(&self.scope, "afinar:model-requested");
        let fetched = download::fetch_model(&self.scope, url, |reply| self.post(&reply)).await;
        mark(&self.scope, "afinar:model-fetched");
        let download::Fetched {
            bytes,
            sha256,
            source,
            keep,
        } = match fetched {
            Ok(found) => found,
            Err(e) => {
                self.post(&Reply::ModelFailed(format!(
                    "Could not download the model ({e}). Check the connection and reload the page."
                )));
                return;
            }
        };
        let kept = keep.then(|| (bytes.clone(), sha256.clone()));
        match self.install(bytes, sha256, source.clone(), start) {
            Ok(()) => {
                *self.default_from.borrow_mut() = Some(url.to_string());
                // A photo sent while the model was packed is the warm-up (let it in first);
                // so is WebGPU's first pass, in the training worker.
                next_task(&self.scope).await;
                if !self.photo_waiting()
                    && !self.webgpu_wanted.get()
                    && let Some(loaded) = self.model.borrow().as_ref()
                {
                    loaded.classifier.warm_up();
                    mark(&self.scope, "afinar:warmed-up");
                }
                if let Some((bytes, sha256)) = kept {
                    // Not awaited: a photo sent meanwhile need not wait for the disk.
                    let (scope, url) = (self.scope.clone(), url.to_string());
                    wasm_bindgen_futures::spawn_local(async move {
                        download::keep_model(&scope, &url, bytes, &sha256).await;
                    });
                }
                if self.training.is_running() {
                    let file = self.model.borrow().as_ref().map(|m| m.file.clone());
                    let hand_over = Request::LoadModelFile {
                        name: MODEL_NAME.into(),
                        bytes: file.map(|f| f.as_ref().clone()).unwrap_or_default(),
                    };
                    if let Ok(value) = serde_wasm_bindgen::to_value(&hand_over) {
                        self.tell_training(&value);
                    }
                }
            }
            Err(message) => {
                // A kept copy that this build cannot read is dropped, so that the next visit
                // downloads the model instead of failing on it again.
                if source == ModelSource::Cache {
                    download::forget_model(&self.scope, url).await;
                }
                self.post(&Reply::ModelFailed(message));
            }
        }
    }
}
