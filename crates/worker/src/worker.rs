//! The model worker's dispatcher: runs in a dedicated Web Worker so the page never waits on
//! the model.
//!
//! It receives [`Request`]s, handles them one at a time in arrival order, and answers with
//! [`Reply`]s. It owns the weights and the [`Classifier`]; the device choice lives in
//! [`crate::backend`], the download in [`crate::download`], the page's types in
//! [`crate::convert`]. When WebGPU fails, [`Worker::retry_on_cpu`] moves to the CPU and runs the
//! request again there.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use afinar::augment::AugmentConfig;
use afinar::{Classifier, MobileNetV2Weights, ModelInput};
use afinar_protocol::{
    Backend, Classification, DisputedLabel, Embedding, ExportedModel, HeadInfo, ModelInfo,
    ModelSource, Reply, Request, RowsNeeded, TrainingOutcome, TrainingSet,
};
use burn::tensor::Device;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::backend::{self, CPU_ADAPTER};
use crate::convert;
use crate::download;
use crate::head::UserHead;
use crate::project::ProjectFile;

/// Predictions reported per photo.
const TOP_K: usize = 5;
/// ImageNet predictions kept with a training photo, for comparison.
const EMBED_TOP_K: usize = 3;

/// Starts the worker: installs the message handler and tells the page it is listening.
pub fn start() {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    {
        // A panic leaves the wasm instance unusable: tell the page first, so it can start a
        // fresh worker and resend what was pending.
        let scope = scope.clone();
        std::panic::set_hook(Box::new(move |info| {
            console_error_panic_hook::hook(info);
            post(&scope, &Reply::Crashed(info.to_string()));
        }));
    }
    let state = Rc::new(Worker {
        scope: scope.clone(),
        queue: RefCell::new(VecDeque::new()),
        busy: Cell::new(false),
        model: RefCell::new(ModelState::default()),
        cancel_training: Cell::new(false),
        head: RefCell::new(None),
        project: RefCell::new(ProjectFile::None),
        last_set: RefCell::new(None),
    });
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
        match serde_wasm_bindgen::from_value::<Request>(event.data()) {
            // Not queued: training is the request under way, and it checks this between epochs.
            Ok(Request::CancelTraining) => state.cancel_training.set(true),
            Ok(request) => Worker::enqueue(&state, request),
            // Answered, so that nobody waits for a reply that will never come.
            Err(e) => post(&state.scope, &Reply::BadRequest(e.to_string())),
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    post(&scope, &Reply::Started);
}

fn post(scope: &DedicatedWorkerGlobalScope, reply: &Reply) {
    match serde_wasm_bindgen::to_value(reply) {
        Ok(value) => {
            if let Err(e) = scope.post_message(&value) {
                web_sys::console::error_1(&e);
            }
        }
        Err(e) => web_sys::console::error_1(&format!("afinar worker: {e}").into()),
    }
}

/// Size of this worker's wasm memory: it never shrinks, so this is the peak so far.
fn wasm_memory_bytes() -> u64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| {
            m.buffer()
                .unchecked_into::<js_sys::ArrayBuffer>()
                .byte_length() as u64
        })
        .unwrap_or(0)
}

fn now_ms(scope: &DedicatedWorkerGlobalScope) -> f64 {
    scope.performance().map(|p| p.now()).unwrap_or(0.0)
}

struct Worker {
    scope: DedicatedWorkerGlobalScope,
    queue: RefCell<VecDeque<Request>>,
    busy: Cell<bool>,
    model: RefCell<ModelState>,
    /// Set by [`Request::CancelTraining`]; the training loop stops after its epoch.
    cancel_training: Cell<bool>,
    /// The user's trained head, if any.
    head: RefCell<Option<UserHead>>,
    /// A project file being saved or opened.
    project: RefCell<ProjectFile>,
    /// The photos of the last training run, for [`Request::CheckLabels`].
    last_set: RefCell<Option<TrainedSet>>,
}

/// What the label check needs of a training run.
struct TrainedSet {
    /// Pooled features of every photo of the set, `FEATURE_DIM` per photo.
    pooled: Vec<f32>,
    labels: Vec<usize>,
    num_classes: usize,
    /// The photos the run used.
    used: Vec<usize>,
    seed: u64,
}

/// What the worker holds between requests.
#[derive(Default)]
struct ModelState {
    weights: Option<Rc<MobileNetV2Weights>>,
    /// The model file as read: its layers below the freeze boundary go into an export as
    /// they are.
    file: Option<Rc<Vec<u8>>>,
    labels: Vec<String>,
    classifier: Option<Rc<Classifier>>,
    /// The backend in use and its device.
    device: Option<(Backend, Device)>,
    /// WebGPU's device once started; Burn's runtime is initialised once per worker.
    webgpu: Option<(Device, String)>,
    /// Set when WebGPU failed for good in this worker.
    webgpu_broken: Option<String>,
}

/// Why a request failed: the device (worth a retry on the CPU), or anything else (a message
/// for people, final).
enum Failure {
    Device(String),
    Final(String),
}

impl Worker {
    fn enqueue(this: &Rc<Self>, request: Request) {
        this.queue.borrow_mut().push_back(request);
        if this.busy.replace(true) {
            return;
        }
        let this = this.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                let next = this.queue.borrow_mut().pop_front();
                let Some(request) = next else { break };
                this.handle(request).await;
            }
            this.busy.set(false);
        });
    }

    fn post(&self, reply: &Reply) {
        post(&self.scope, reply);
    }

    async fn handle(&self, request: Request) {
        match request {
            Request::LoadDefaultModel { url } => self.load_default_model(&url).await,
            Request::LoadModelFile { name, bytes } => {
                let start = now_ms(&self.scope);
                if let Err(message) = self
                    .install_model(&bytes, ModelSource::File(name.clone()), start)
                    .await
                {
                    self.post(&Reply::ModelRefused { name, message });
                }
            }
            Request::UseBackend(backend) => self.use_backend(backend).await,
            Request::UseBestBackend => self.use_best_backend().await,
            Request::Classify { id, bytes } => {
                let result = self.classify(&bytes).await;
                self.post(&Reply::Classified { id, result });
            }
            Request::Embed { id, bytes, rows } => {
                let result = self.embed(&bytes, rows).await;
                self.post(&Reply::Embedded { id, result });
            }
            Request::Train(set) => {
                let result = self.train(*set).await;
                self.post(&Reply::Trained(result));
            }
            Request::CancelTraining => {}
            Request::UseHead { bytes } => match self.use_head(bytes) {
                Ok(info) => self.post(&Reply::HeadReady(info)),
                Err(message) => self.post(&Reply::HeadRefused(message)),
            },
            Request::ForgetHead => {
                self.head.borrow_mut().take();
            }
            Request::ExportModel => {
                let result = self.export_model().await;
                self.post(&Reply::ModelExported(result));
            }
            Request::SaveProject(_)
            | Request::AddProjectPhotos(_)
            | Request::FinishProject
            | Request::OpenProjectPart { .. }
            | Request::OpenProject
            | Request::ProjectPhotos { .. }
            | Request::CloseProject => self
                .project
                .borrow_mut()
                .handle(request, |reply| self.post(reply)),
            Request::CheckLabels => {
                let result = self.check_labels().await;
                self.post(&Reply::LabelsChecked(result));
            }
        }
    }

    fn current(&self) -> Option<(Rc<Classifier>, Backend)> {
        let model = self.model.borrow();
        let backend = model.device.as_ref().map_or(Backend::Cpu, |(b, _)| *b);
        model.classifier.clone().map(|c| (c, backend))
    }

    /// Runs `job` with the current classifier; when it fails on WebGPU's account, moves to the
    /// CPU (saying so, with `what` as the reason) and runs it again there.
    async fn retry_on_cpu<T>(
        &self,
        what: &str,
        no_model: &str,
        job: impl AsyncFn(&Classifier, Backend) -> Result<T, Failure>,
    ) -> Result<T, String> {
        loop {
            let (classifier, backend) = self.current().ok_or(no_model)?;
            match job(&classifier, backend).await {
                Ok(value) => return Ok(value),
                Err(Failure::Device(e)) if backend == Backend::WebGpu => {
                    self.rebuild_on_cpu(format!("WebGPU failed {what} ({e})"))
                        .await?;
                }
                Err(Failure::Device(e)) => return Err(format!("The model failed {what}: {e}.")),
                Err(Failure::Final(message)) => return Err(message),
            }
        }
    }

    async fn classify(&self, bytes: &[u8]) -> Result<Classification, String> {
        let start = now_ms(&self.scope);
        let input = ModelInput::from_image_bytes(bytes)
            .map_err(|e| format!("This photo can't be read: {e}."))?;
        let decode_ms = now_ms(&self.scope) - start;
        let thumbnail_jpeg = convert::thumbnail(&input);
        let photo = std::slice::from_ref(&input);
        let no_model = "No model is loaded, so the photo can't be classified.";
        self.retry_on_cpu(
            "while classifying",
            no_model,
            async |classifier, backend| {
                let model_start = now_ms(&self.scope);
                let mut rows = classifier
                    .classify(photo, TOP_K)
                    .await
                    .map_err(|e| Failure::Device(e.to_string()))?;
                let custom = match self.head_for(classifier) {
                    Some((parts, classes)) => classifier
                        .classify_trained(photo, &parts, &classes, TOP_K.min(classes.len()))
                        .await
                        .ok()
                        .and_then(|mut rows| rows.pop())
                        .map(convert::predictions),
                    None => None,
                };
                Ok(Classification {
                    top: convert::predictions(rows.pop().unwrap_or_default()),
                    model_ms: now_ms(&self.scope) - model_start,
                    decode_ms,
                    thumbnail_jpeg: thumbnail_jpeg.clone(),
                    backend,
                    custom,
                    wasm_memory_bytes: wasm_memory_bytes(),
                })
            },
        )
        .await
    }

    async fn embed(&self, bytes: &[u8], rows: RowsNeeded) -> Result<Embedding, String> {
        rows.check()
            .map_err(|e| format!("This photo can't be prepared: {e}."))?;
        let image = afinar::preprocess::decode(bytes)
            .map_err(|e| format!("This photo can't be read: {e}."))?
            .to_rgb8();
        let input = ModelInput::from_rgb_image(&image);
        let sha256 = afinar::preprocess::sha256_hex(bytes);
        let views = match rows.views {
            0 => Vec::new(),
            n => AugmentConfig::new()
                .with_views(n)
                .views_of(&image, &sha256, rows.seed),
        };
        let unfreeze = rows.unfreeze;
        drop(image);
        let no_model = "No model is loaded yet, so the photo can't be prepared.";
        self.retry_on_cpu(
            "while preparing a photo",
            no_model,
            async |classifier, _| {
                let embedding = classifier
                    .embed(&input, &views, unfreeze, EMBED_TOP_K)
                    .await
                    .map_err(|e| Failure::Device(e.to_string()))?;
                Ok(convert::embedding(embedding, sha256.clone(), &input))
            },
        )
        .await
    }

    /// Trains on the current device; if WebGPU fails in the middle, once more on the CPU.
    async fn train(&self, set: TrainingSet) -> Result<TrainingOutcome, String> {
        self.cancel_training.set(false);
        let recipe = afinar::Recipe::from_settings(&set.settings);
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
                let mut epochs = Vec::new();
                let mut run =
                    afinar::train::run(&set, &recipe, classifier.base(), &device, |report| {
                        let summary =
                            convert::epoch(report, total_epochs, now_ms(&self.scope) - start);
                        self.post(&Reply::Epoch(summary.clone()));
                        epochs.push(summary);
                        !self.cancel_training.get()
                    })
                    .await
                    .map_err(|e| match e {
                        e if e.is_device_failure() => Failure::Device(e.to_string()),
                        e if e.is_cancelled() => Failure::Final(
                            "Training was cancelled; your photos and classes are kept.".into(),
                        ),
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
                    epochs,
                    backend,
                    train_ms,
                    wasm_memory_bytes(),
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

    /// Every photo of the last run scored by heads trained without it; the ones put in
    /// another class than their label, the most confident first.
    async fn check_labels(&self) -> Result<Vec<DisputedLabel>, String> {
        let slot = self.last_set.borrow_mut().take();
        let set = slot.ok_or("Train first: the labels are checked after a run.")?;
        let config = afinar::train::AuditConfig::new().with_seed(set.seed);
        let no_model = "No model is loaded, so the labels can't be checked.";
        let result = self
            .retry_on_cpu("while checking labels", no_model, async |classifier, _| {
                afinar::train::disputed_labels(
                    &config,
                    &set.pooled,
                    &set.labels,
                    &set.used,
                    set.num_classes,
                    classifier.device(),
                )
                .await
                .map_err(|e| match e {
                    afinar::train::TrainError::Device(e) => Failure::Device(e.to_string()),
                    e => Failure::Final(format!("The labels could not be checked: {e}.")),
                })
            })
            .await;
        // Kept for another check (a retry after a worker hiccup, for one).
        *self.last_set.borrow_mut() = Some(set);
        result.map(convert::disputed)
    }

    fn use_head(&self, file: Vec<u8>) -> Result<HeadInfo, String> {
        let (classifier, _) = self
            .current()
            .ok_or("No model is loaded yet, so the head can't be checked.")?;
        let device = classifier.device().clone();
        let (parts, metadata) = afinar::head::load(&file, Some(classifier.model_sha256()), &device)
            .map_err(|e| format!("This head can't be used: {e}."))?;
        let info = HeadInfo {
            classes: metadata.classes.clone(),
            unfrozen_blocks: parts.unfrozen(),
        };
        *self.head.borrow_mut() = Some(UserHead::new(file, metadata.classes, parts, device));
        Ok(info)
    }

    /// The model with the user's head as a `.tflite`: the model file's own layers below the
    /// freeze boundary, the trained part in float32.
    async fn export_model(&self) -> Result<ExportedModel, String> {
        let (weights, file) = {
            let model = self.model.borrow();
            (model.weights.clone(), model.file.clone())
        };
        let (Some(weights), Some(file), Some((classifier, _))) = (weights, file, self.current())
        else {
            return Err("No model is loaded yet, so there is nothing to export.".into());
        };
        let (parts, classes) = self.head_for(&classifier).ok_or(
            "Train or import a head first: the exported model classifies into your classes.",
        )?;
        let form = afinar::head::export::ExportForm::KeepBase { file: &file };
        let bytes = afinar::head::export::tflite(&weights, &parts, &classes, form)
            .await
            .map_err(|e| format!("The model could not be exported: {e}."))?;
        Ok(ExportedModel { bytes })
    }

    /// The user's head built for `classifier`'s device, with its classes.
    fn head_for(
        &self,
        classifier: &Classifier,
    ) -> Option<(Rc<afinar::head::TrainedParts>, Vec<String>)> {
        let mut slot = self.head.borrow_mut();
        let user = slot.as_mut()?;
        let parts = user.parts_on(classifier.device())?;
        Some((parts, user.classes().to_vec()))
    }

    async fn load_default_model(&self, url: &str) {
        let start = now_ms(&self.scope);
        let fetched = download::fetch_model(&self.scope, url, |reply| self.post(&reply)).await;
        let download::Fetched {
            bytes,
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
        match self.install_model(&bytes, source.clone(), start).await {
            Ok(()) if keep => download::keep_model(&self.scope, url, bytes).await,
            Ok(()) => {}
            Err(message) => {
                // A kept copy that this build cannot read is dropped, so that the next visit
                // downloads the model instead of failing on it again.
                if source == ModelSource::Cache && MobileNetV2Weights::from_tflite(&bytes).is_err()
                {
                    download::forget_model(&self.scope, url).await;
                }
                self.post(&Reply::ModelFailed(message));
            }
        }
    }

    /// Reads and builds a model; on error nothing changes and the message says why.
    async fn install_model(
        &self,
        bytes: &[u8],
        source: ModelSource,
        start: f64,
    ) -> Result<(), String> {
        self.post(&Reply::Status("Reading the model…".into()));
        let weights = MobileNetV2Weights::from_tflite(bytes).map_err(|e| e.to_string())?;
        // A file without its own label list reuses the current one when the sizes agree.
        let current_labels = self.model.borrow().labels.join("\n");
        let fallback = (!current_labels.is_empty()).then_some(current_labels.as_str());
        let labels = weights.labels_or(fallback).map_err(|e| e.to_string())?;
        let weights = Rc::new(weights);
        if self.model.borrow().device.is_none() {
            // No backend chosen yet: the CPU always works; the page asks for WebGPU separately.
            self.model.borrow_mut().device = Some(backend::cpu());
        }
        let classifier = self.build_classifier(&weights, &labels).await?;
        let info = ModelInfo {
            source,
            num_classes: labels.len(),
            sha256: weights.sha256.clone(),
            size_bytes: bytes.len() as u64,
            load_ms: now_ms(&self.scope) - start,
        };
        {
            let mut model = self.model.borrow_mut();
            model.weights = Some(weights);
            model.file = Some(Rc::new(bytes.to_vec()));
            model.labels = labels;
            model.classifier = Some(classifier);
        }
        self.post(&Reply::ModelReady(info));
        Ok(())
    }

    /// Builds the classifier on the current device, warmed up. If WebGPU fails here, the CPU
    /// takes over.
    async fn build_classifier(
        &self,
        weights: &MobileNetV2Weights,
        labels: &[String],
    ) -> Result<Rc<Classifier>, String> {
        let (backend, device) = self
            .model
            .borrow()
            .device
            .clone()
            .unwrap_or_else(backend::cpu);
        match backend::warmed_up(weights, labels, &device).await {
            Ok(classifier) => Ok(classifier),
            Err(e) if backend == Backend::WebGpu => {
                self.fall_back_to_cpu(format!("WebGPU failed while preparing the model: {e}"));
                backend::warmed_up(weights, labels, &afinar::device::cpu())
                    .await
                    .map_err(|e| format!("the model could not run: {e}"))
            }
            Err(e) => Err(format!("the model could not run: {e}")),
        }
    }

    /// After WebGPU failed: the CPU from now on, with the classifier rebuilt there.
    async fn rebuild_on_cpu(&self, reason: String) -> Result<(), String> {
        self.fall_back_to_cpu(reason);
        let (weights, labels) = {
            let model = self.model.borrow();
            (model.weights.clone(), model.labels.clone())
        };
        let weights = weights.ok_or("No model is loaded.")?;
        let classifier = self.build_classifier(&weights, &labels).await?;
        self.model.borrow_mut().classifier = Some(classifier);
        Ok(())
    }

    fn fall_back_to_cpu(&self, reason: String) {
        {
            let mut model = self.model.borrow_mut();
            model.device = Some(backend::cpu());
            model.webgpu_broken = Some(reason.clone());
        }
        self.post(&Reply::BackendReady {
            backend: Backend::Cpu,
            adapter: CPU_ADAPTER.into(),
            fallback: Some(reason),
        });
    }

    /// WebGPU on a hardware adapter, the CPU otherwise (saying why where WebGPU exists).
    async fn use_best_backend(&self) {
        match backend::probe_adapter(&self.scope).await {
            backend::Adapter::Hardware => self.use_backend(Backend::WebGpu).await,
            backend::Adapter::Missing => self.use_backend(Backend::Cpu).await,
            backend::Adapter::Software(name) => {
                let why = format!(
                    "This browser's WebGPU runs on {name}, a software renderer slower than the \
                     CPU (choose WebGPU to use it anyway)"
                );
                self.switch_to(backend::cpu(), CPU_ADAPTER.into(), Some(why))
                    .await
            }
        }
    }

    async fn use_backend(&self, wanted: Backend) {
        let (device, adapter, fallback) = match wanted {
            Backend::Cpu => (backend::cpu(), CPU_ADAPTER.to_string(), None),
            Backend::WebGpu => match self.webgpu_device().await {
                Ok((device, adapter)) => ((Backend::WebGpu, device), adapter, None),
                Err(reason) => (backend::cpu(), CPU_ADAPTER.to_string(), Some(reason)),
            },
        };
        self.switch_to(device, adapter, fallback).await
    }

    /// Runs the model on `backend`'s `device` from now on (rebuilding the classifier when it
    /// changes) and tells the page, with `fallback` saying why it is not what was asked for.
    async fn switch_to(
        &self,
        (backend, device): (Backend, Device),
        adapter: String,
        fallback: Option<String>,
    ) {
        let unchanged = self.model.borrow().device.as_ref().map(|(b, _)| *b) == Some(backend);
        if !unchanged {
            self.model.borrow_mut().device = Some((backend, device));
        }
        self.post(&Reply::BackendReady {
            backend,
            adapter,
            fallback,
        });
        if unchanged {
            return;
        }
        let current = {
            let model = self.model.borrow();
            model.weights.clone().map(|w| (w, model.labels.clone()))
        };
        if let Some((weights, labels)) = current {
            self.post(&Reply::Status(format!(
                "Preparing the model on {}…",
                backend.name()
            )));
            match self.build_classifier(&weights, &labels).await {
                Ok(classifier) => self.model.borrow_mut().classifier = Some(classifier),
                Err(e) => self.post(&Reply::Status(e)),
            }
            self.post(&Reply::Status(String::new()));
        }
    }

    /// WebGPU's device and adapter name, started on first use.
    async fn webgpu_device(&self) -> Result<(Device, String), String> {
        if let Some(reason) = self.model.borrow().webgpu_broken.clone() {
            return Err(reason);
        }
        if let Some(started) = self.model.borrow().webgpu.clone() {
            return Ok(started);
        }
        self.post(&Reply::Status("Starting WebGPU…".into()));
        match backend::start_webgpu(&self.scope).await {
            Ok(started) => {
                self.model.borrow_mut().webgpu = Some(started.clone());
                Ok(started)
            }
            Err(reason) => {
                self.model.borrow_mut().webgpu_broken = Some(reason.clone());
                Err(reason)
            }
        }
    }
}
