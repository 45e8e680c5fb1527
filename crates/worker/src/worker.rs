//! The training worker's dispatcher: runs in a Web Worker that the inference worker starts when
//! the user trains, or when WebGPU runs the model.
//!
//! It receives [`Request`]s, handles them one at a time in arrival order, and answers with
//! [`Reply`]s. The model and its device are [`crate::device`]'s, starting WebGPU
//! [`crate::backend`]'s, the page's types in [`crate::convert`]. When WebGPU fails, [`Worker::retry_on_cpu`] moves to the CPU and runs the
//! request again there.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use afinar::augment::TrainingPhoto;
use afinar::classify::{CpuClassifier, PackedHead};
use afinar::{Classifier, ModelInput};
use afinar_protocol::{
    Classification, DisputedLabel, ExportedModel, HeadInfo, ModelSource, PreparedPhoto,
    Publication, Reply, Request,
};
use afinar_vocabulary::{Backend, RowsNeeded};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

mod training;

use crate::convert;
use crate::device::ModelHost;
use crate::head::UserHead;
use crate::project::ProjectFile;
use crate::publish;
use afinar_worker_scope::{
    PREPARED_TOP_K, floats, global_scope, listen, now_ms, post, prepared_photo, wasm_memory_bytes,
};

/// Predictions reported per photo.
const TOP_K: usize = 5;

/// Starts the worker: installs the message handler and tells the page it is listening.
pub fn start() {
    let scope = global_scope();
    let state = Rc::new(Worker {
        scope: scope.clone(),
        queue: RefCell::new(VecDeque::new()),
        busy: Cell::new(false),
        model: ModelHost::new(scope.clone()),
        cancel_training: Cell::new(false),
        head: RefCell::new(None),
        project: RefCell::new(ProjectFile::None),
        last_set: RefCell::new(None),
        workers: Cell::new(1),
        stage_sums: RefCell::new(None),
        rows_ahead: RefCell::new(Default::default()),
        stage_rows: RefCell::new(Default::default()),
    });
    listen(&scope, move |event: MessageEvent| {
        // Not queued: the stage this helper follows waits for it.
        if let Some(sum) = floats(&event.data()) {
            if let Some(sums) = state.stage_sums.borrow().as_ref() {
                let _ = sums.try_send(sum);
            }
            return;
        }
        match serde_wasm_bindgen::from_value::<Request>(event.data()) {
            // Not queued: training is the request under way, and it checks this between epochs.
            Ok(Request::CancelTraining) => state.cancel_training.set(true),
            // Not queued: asked while this helper follows a stage.
            Ok(Request::ReportMemory) => {
                post(&state.scope, &Reply::HelperMemory(wasm_memory_bytes()));
            }
            // Not queued: put with the others as they come, so that parts waiting behind a
            // request under way (the model loading) are not held twice.
            Ok(Request::TrainRows(part)) => keep_rows(&state.rows_ahead, *part),
            Ok(Request::StageRows(part)) => keep_rows(&state.stage_rows, *part),
            Ok(request) => Worker::enqueue(&state, request),
            // Answered, so that nobody waits for a reply that will never come.
            Err(e) => post(&state.scope, &Reply::BadRequest(e.to_string())),
        }
    });
}

/// Adds a part to the rows sent ahead of a run or a stage; one that does not fit is logged here,
/// and the run or stage it was for says so when it starts.
fn keep_rows(ahead: &RefCell<afinar_protocol::RowsAhead>, part: afinar_protocol::RowsPart) {
    if let Err(e) = ahead.borrow_mut().add(part) {
        web_sys::console::warn_1(&format!("afinar: {e}").into());
    }
}

struct Worker {
    scope: DedicatedWorkerGlobalScope,
    queue: RefCell<VecDeque<Request>>,
    busy: Cell<bool>,
    model: ModelHost,
    /// Set by [`Request::CancelTraining`]; the training loop stops after its epoch.
    cancel_training: Cell<bool>,
    /// The user's trained head, if any.
    head: RefCell<Option<UserHead>>,
    /// A project file being saved or opened.
    project: RefCell<ProjectFile>,
    /// The photos of the last training run, for [`Request::CheckLabels`].
    last_set: RefCell<Option<TrainedSet>>,
    /// Workers the page allows ([`Request::UseWorkers`]): a run's fine-tuning stage is shared
    /// with helpers up to that many in all.
    workers: Cell<u32>,
    /// Where the sums of the stage this worker follows as a helper arrive.
    stage_sums: RefCell<Option<async_channel::Sender<Vec<f32>>>>,
    /// The rows of the next run, sent ahead of it in parts.
    rows_ahead: RefCell<afinar_protocol::RowsAhead>,
    /// A helper's training rows of the stage it follows next, sent ahead of it in parts.
    stage_rows: RefCell<afinar_protocol::RowsAhead>,
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
            // The inference worker downloads the app's model and hands it over as a file.
            Request::LoadDefaultModel { .. } => self.post(&Reply::ModelFailed(
                "The training worker takes its model from the inference worker.".into(),
            )),
            Request::LoadModelFile { name, bytes } => {
                let start = now_ms(&self.scope);
                if let Err(message) = self
                    .model
                    .install(&bytes, ModelSource::File(name.clone()), start)
                    .await
                {
                    self.post(&Reply::ModelRefused { name, message });
                }
            }
            Request::UseBackend(backend) => self.model.use_backend(backend).await,
            // The inference worker starts this one for WebGPU once it has found a hardware
            // adapter: the best backend here is WebGPU.
            Request::UseBestBackend => self.model.use_backend(Backend::WebGpu).await,
            Request::Classify { id, bytes } => {
                let result = self.classify(&bytes).await;
                self.post(&Reply::Classified { id, result });
            }
            Request::ClassifyFrame { id, bytes } => {
                let result = self.classify(&bytes).await;
                self.post(&Reply::FrameClassified { id, result });
            }
            Request::Prepare { id, bytes, rows } => {
                let result = self.prepare(&bytes, rows).await;
                self.post(&Reply::Prepared { id, rows, result });
            }
            // Kept as they came (see `start`).
            Request::TrainRows(_) | Request::StageRows(_) => {}
            Request::Train(set) => {
                let result = self.train(*set).await;
                self.post(&Reply::Trained(result));
            }
            // Preparing on several workers is the inference worker's (this one prepares on
            // WebGPU, in batches); training shares its fine-tuning stage with up to that many.
            Request::UseWorkers(workers) => self.workers.set(workers),
            Request::FollowStage(share) => self.follow_stage(*share).await,
            Request::CancelTraining | Request::ReportMemory => {}
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
            Request::Publish { not_sure_below } => {
                let result = self.publish(not_sure_below).await;
                self.post(&Reply::Published(result));
            }
        }
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
            let (classifier, backend) = self.model.current().ok_or(no_model)?;
            match job(&classifier, backend).await {
                Ok(value) => return Ok(value),
                Err(Failure::Device(e)) if backend == Backend::WebGpu => {
                    self.model
                        .rebuild_on_cpu(format!("WebGPU failed {what} ({e})"))
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
        let thumbnail_jpeg = input.thumbnail_jpeg();
        let photo = std::slice::from_ref(&input);
        let no_model = "No model is loaded, so the photo can't be classified.";
        self.retry_on_cpu(
            "while classifying",
            no_model,
            async |classifier, backend| {
                let model_start = now_ms(&self.scope);
                let (top, custom) = match classifier.on_cpu_kernels() {
                    // One backbone pass answers for ImageNet and the user's classes.
                    Some(fast) => match self.packed_head(fast) {
                        Some(head) => {
                            let answers = fast.classify_with_head(&input, &head, TOP_K);
                            (answers.imagenet, Some(answers.head))
                        }
                        None => (fast.classify(photo, TOP_K).pop().unwrap_or_default(), None),
                    },
                    None => {
                        let top = classifier
                            .classify(photo, TOP_K)
                            .await
                            .map_err(|e| Failure::Device(e.to_string()))?
                            .pop()
                            .unwrap_or_default();
                        let custom = match self.head_for(classifier) {
                            Some((parts, classes)) => classifier
                                .classify_trained(photo, &parts, &classes, TOP_K.min(classes.len()))
                                .await
                                .ok()
                                .and_then(|mut rows| rows.pop()),
                            None => None,
                        };
                        (top, custom)
                    }
                };
                Ok(Classification {
                    top,
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

    async fn prepare(&self, bytes: &[u8], rows: RowsNeeded) -> Result<PreparedPhoto, String> {
        let photo = TrainingPhoto::read(bytes, rows)?;
        let no_model = "No model is loaded yet, so the photo can't be prepared.";
        self.retry_on_cpu(
            "while preparing a photo",
            no_model,
            async |classifier, _| {
                let embedding = classifier
                    .embed(&photo.input, &photo.views, rows.unfreeze, PREPARED_TOP_K)
                    .await
                    .map_err(|e| Failure::Device(e.to_string()))?;
                Ok(prepared_photo(embedding, &photo))
            },
        )
        .await
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
            .model
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
        let (Some((weights, file)), Some((classifier, _))) =
            (self.model.weights_and_file(), self.model.current())
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

    /// The model with the user's head as a web app of its own, in both forms.
    async fn publish(&self, not_sure_below: f64) -> Result<Publication, String> {
        let (_, model) = self
            .model
            .weights_and_file()
            .ok_or("No model is loaded yet, so there is nothing to publish.")?;
        let head = self
            .head
            .borrow()
            .as_ref()
            .map(|h| h.file().to_vec())
            .ok_or(
                "Train or import a head first: a published app sorts photos into your classes.",
            )?;
        publish::publish(&self.scope, &model, &head, not_sure_below).await
    }

    /// The user's head built for `classifier`'s device, with its classes.
    /// The user's head packed for the CPU kernels, if there is one.
    fn packed_head(&self, classifier: &CpuClassifier) -> Option<Rc<PackedHead>> {
        self.head.borrow_mut().as_mut()?.packed_for(classifier)
    }

    fn head_for(
        &self,
        classifier: &Classifier,
    ) -> Option<(Rc<afinar::head::TrainedParts>, Vec<String>)> {
        let mut slot = self.head.borrow_mut();
        let user = slot.as_mut()?;
        let parts = user.parts_on(classifier.device())?;
        Some((parts, user.classes().to_vec()))
    }
}
