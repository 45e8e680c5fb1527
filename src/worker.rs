//! The model worker: runs in a dedicated Web Worker so the page never waits on the model.
//!
//! It receives [`Request`]s, handles them one at a time in arrival order, and answers with
//! [`Reply`]s. It owns the weights and the [`Classifier`], fetches the model (Cache Storage
//! first), picks the device (WebGPU, else the CPU) and falls back to the CPU when WebGPU fails.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use burn::tensor::Device;
use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Cache, DedicatedWorkerGlobalScope, MessageEvent, ReadableStreamDefaultReader,
    ReadableStreamReadResult, Response,
};

use crate::head::{self, TrainedParts};
use crate::protocol::{
    Backend, Classification, Embedding, HeadInfo, ModelInfo, ModelSource, Reply, Request,
    TrainingSet,
};
use crate::{Classifier, MobileNetV2Weights, ModelInput};

/// Cache Storage bucket that keeps the downloaded model between visits.
const MODEL_CACHE: &str = "afinar-models-v1";
/// Predictions reported per photo.
const TOP_K: usize = 5;

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
    });
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
        match serde_wasm_bindgen::from_value::<Request>(event.data()) {
            // Not queued: training is the request under way, and it checks this between epochs.
            Ok(Request::CancelTraining) => state.cancel_training.set(true),
            Ok(request) => Worker::enqueue(&state, request),
            Err(e) => web_sys::console::error_1(&format!("afinar worker: bad message: {e}").into()),
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

fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
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
}

/// A trained head: its file (kept to rebuild it on another device) and the parts built from it.
struct UserHead {
    file: Vec<u8>,
    classes: Vec<String>,
    /// Built for the device of the classifier in use; rebuilt when that changes.
    parts: Option<(Device, Rc<TrainedParts>)>,
}

/// What the worker holds between requests.
#[derive(Default)]
struct ModelState {
    weights: Option<Rc<MobileNetV2Weights>>,
    labels: Vec<String>,
    source: Option<ModelSource>,
    classifier: Option<Rc<Classifier>>,
    /// The backend in use and its device.
    device: Option<(Backend, Device)>,
    /// WebGPU's device once started; Burn's runtime is initialised once per worker.
    webgpu: Option<Device>,
    /// Set when WebGPU failed for good in this worker.
    webgpu_broken: Option<String>,
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
            Request::Classify { id, bytes } => {
                let result = self.classify(&bytes).await;
                self.post(&Reply::Classified { id, result });
            }
            Request::Embed {
                id,
                bytes,
                unfreeze,
            } => {
                let result = self.embed(&bytes, unfreeze).await;
                self.post(&Reply::Embedded { id, result });
            }
            Request::Train(set) => {
                let result = self.train(&set).await;
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
        }
    }

    fn current(&self) -> Option<(Rc<Classifier>, Backend)> {
        let model = self.model.borrow();
        let backend = model.device.as_ref().map_or(Backend::Cpu, |(b, _)| *b);
        model.classifier.clone().map(|c| (c, backend))
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

    async fn embed(&self, bytes: &[u8], unfreeze: Option<usize>) -> Result<Embedding, String> {
        let input = ModelInput::from_image_bytes(bytes)
            .map_err(|e| format!("This photo can't be read: {e}."))?;
        let sha256 = crate::tflite::sha256_hex(bytes);
        loop {
            let (classifier, backend) = self
                .current()
                .ok_or("No model is loaded yet, so the photo can't be prepared.")?;
            match classifier.embed_async(&input, unfreeze).await {
                Ok((features, boundary, probs)) => {
                    return Ok(Embedding {
                        features,
                        boundary,
                        imagenet: classifier.top_labels(&probs, 3),
                        sha256,
                        thumbnail_jpeg: thumbnail(&input),
                    });
                }
                Err(e) if backend == Backend::WebGpu => {
                    self.rebuild_on_cpu(format!("WebGPU failed while preparing a photo ({e})"))
                        .await?;
                }
                Err(e) => return Err(format!("The model failed on this photo: {e}.")),
            }
        }
    }

    /// Trains on the current device; if WebGPU fails in the middle, once more on the CPU.
    async fn train(&self, set: &TrainingSet) -> Result<crate::protocol::TrainingOutcome, String> {
        self.cancel_training.set(false);
        loop {
            let (classifier, backend) = self
                .current()
                .ok_or("No model is loaded yet; wait for it, then train.")?;
            let device = classifier.device().clone();
            let start = now_ms(&self.scope);
            let scope = self.scope.clone();
            let cancel = &self.cancel_training;
            let result = crate::training_run::run(
                set,
                classifier.model(),
                classifier.model_sha256(),
                backend,
                &device,
                |epoch| {
                    let mut epoch = epoch.clone();
                    epoch.elapsed_ms = now_ms(&scope) - start;
                    post(&scope, &Reply::Epoch(epoch));
                    !cancel.get()
                },
            )
            .await;
            match result {
                Ok((parts, mut outcome)) => {
                    outcome.train_ms = now_ms(&self.scope) - start;
                    outcome.wasm_memory_bytes = wasm_memory_bytes();
                    *self.head.borrow_mut() = Some(UserHead {
                        file: outcome.head_file.clone(),
                        classes: outcome.classes.clone(),
                        parts: Some((device, Rc::new(parts))),
                    });
                    return Ok(outcome);
                }
                Err(e) if e.is_device_failure() && backend == Backend::WebGpu => {
                    self.rebuild_on_cpu(format!(
                        "WebGPU failed during training ({e}); training again on the CPU"
                    ))
                    .await?;
                }
                Err(crate::training_run::RunError::Train(crate::train::TrainError::Cancelled)) => {
                    return Err("Training was cancelled; your photos and classes are kept.".into());
                }
                Err(e) => return Err(format!("Training stopped: {e}.")),
            }
        }
    }

    fn use_head(&self, file: Vec<u8>) -> Result<HeadInfo, String> {
        let (classifier, _) = self
            .current()
            .ok_or("No model is loaded yet, so the head can't be checked.")?;
        let device = classifier.device().clone();
        let (parts, metadata) = head::load(&file, Some(classifier.model_sha256()), &device)
            .map_err(|e| format!("This head can't be used: {e}."))?;
        let info = HeadInfo {
            classes: metadata.classes.clone(),
            unfrozen_blocks: parts.unfrozen(),
        };
        *self.head.borrow_mut() = Some(UserHead {
            file,
            classes: metadata.classes,
            parts: Some((device, Rc::new(parts))),
        });
        Ok(info)
    }

    /// The user's head built for `classifier`'s device (rebuilt from its file after a switch).
    fn head_for(&self, classifier: &Classifier) -> Option<(Rc<TrainedParts>, Vec<String>)> {
        let mut slot = self.head.borrow_mut();
        let user = slot.as_mut()?;
        let device = classifier.device();
        match &user.parts {
            Some((built_on, parts)) if built_on == device => {
                Some((parts.clone(), user.classes.clone()))
            }
            _ => {
                let (parts, _) = head::load(&user.file, None, device).ok()?;
                let parts = Rc::new(parts);
                user.parts = Some((device.clone(), parts.clone()));
                Some((parts, user.classes.clone()))
            }
        }
    }

    async fn load_default_model(&self, url: &str) {
        let start = now_ms(&self.scope);
        let (bytes, source) = match self.fetch_model(url).await {
            Ok(found) => found,
            Err(e) => {
                self.post(&Reply::ModelFailed(format!(
                    "Could not download the model ({e}). Check the connection and reload the page."
                )));
                return;
            }
        };
        match self.install_model(&bytes, source.clone(), start).await {
            Ok(()) if source == ModelSource::Network => self.store_in_cache(url, bytes).await,
            Ok(()) => {}
            Err(message) => self.post(&Reply::ModelFailed(message)),
        }
    }

    async fn open_cache(&self) -> Option<Cache> {
        let storage = self.scope.caches().ok()?;
        JsFuture::from(storage.open(MODEL_CACHE))
            .await
            .ok()
            .map(JsCast::unchecked_into)
    }

    /// The model's bytes: from Cache Storage when an earlier visit stored them, else downloaded
    /// with progress reports.
    async fn fetch_model(&self, url: &str) -> Result<(Vec<u8>, ModelSource), String> {
        if let Some(cache) = self.open_cache().await
            && let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await
            && let Ok(response) = hit.dyn_into::<Response>()
        {
            self.post(&Reply::Status(
                "Reading the model from this browser's cache…".into(),
            ));
            let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
                .await
                .map_err(js_error)?;
            let bytes = Uint8Array::new(&buffer).to_vec();
            let size = bytes.len() as u64;
            self.post(&Reply::Download {
                loaded: size,
                total: Some(size),
            });
            return Ok((bytes, ModelSource::Cache));
        }

        let response: Response = JsFuture::from(self.scope.fetch_with_str(url))
            .await
            .map_err(js_error)?
            .dyn_into()
            .map_err(js_error)?;
        if !response.ok() {
            return Err(format!("the server answered HTTP {}", response.status()));
        }
        let total = response
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|v| v.parse::<u64>().ok());
        let body = response.body().ok_or("the response has no body")?;
        let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(256 << 20) as usize);
        let mut reported = 0u64;
        self.post(&Reply::Download { loaded: 0, total });
        loop {
            let chunk: ReadableStreamReadResult = JsFuture::from(reader.read())
                .await
                .map_err(js_error)?
                .unchecked_into();
            if chunk.get_done().unwrap_or(true) {
                break;
            }
            let chunk: Uint8Array = chunk.get_value().unchecked_into();
            let start = bytes.len();
            bytes.resize(start + chunk.length() as usize, 0);
            chunk.copy_to(&mut bytes[start..]);
            // About a hundred progress messages for the whole file is plenty.
            let loaded = bytes.len() as u64;
            if loaded - reported >= total.unwrap_or(1 << 20) / 100 {
                reported = loaded;
                self.post(&Reply::Download { loaded, total });
            }
        }
        self.post(&Reply::Download {
            loaded: bytes.len() as u64,
            total,
        });
        Ok((bytes, ModelSource::Network))
    }

    async fn store_in_cache(&self, url: &str, mut bytes: Vec<u8>) {
        let Some(cache) = self.open_cache().await else {
            return;
        };
        // A full or unavailable cache only costs a download on the next visit.
        if let Ok(response) = Response::new_with_opt_u8_array(Some(&mut bytes))
            && let Err(e) = JsFuture::from(cache.put_with_str(url, &response)).await
        {
            web_sys::console::warn_1(&e);
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
            self.model.borrow_mut().device = Some((Backend::Cpu, crate::device::cpu()));
        }
        let classifier = self.build_classifier(&weights, &labels).await?;
        let info = ModelInfo {
            source: source.clone(),
            num_classes: labels.len(),
            sha256: weights.sha256.clone(),
            size_bytes: bytes.len() as u64,
            load_ms: now_ms(&self.scope) - start,
        };
        {
            let mut model = self.model.borrow_mut();
            model.weights = Some(weights);
            model.labels = labels;
            model.source = Some(source);
            model.classifier = Some(classifier);
        }
        self.post(&Reply::ModelReady(info));
        Ok(())
    }

    /// Builds the classifier on the current device and runs one warm-up pass (which compiles
    /// WebGPU's shaders). If WebGPU fails here, the CPU takes over.
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
            .unwrap_or((Backend::Cpu, crate::device::cpu()));
        let classifier = Classifier::new(weights, labels.to_vec(), &device);
        let warm_up = ModelInput::from_rgb(vec![128; crate::preprocess::INPUT_BYTES])
            .map_err(|e| e.to_string())?;
        match classifier.classify_async(&[warm_up], 1).await {
            Ok(_) => Ok(Rc::new(classifier)),
            Err(e) if backend == Backend::WebGpu => {
                self.fall_back_to_cpu(format!("WebGPU failed while preparing the model: {e}"));
                Ok(Rc::new(Classifier::new(
                    weights,
                    labels.to_vec(),
                    &crate::device::cpu(),
                )))
            }
            Err(e) => Err(format!("the model could not run: {e}")),
        }
    }

    fn fall_back_to_cpu(&self, reason: String) {
        {
            let mut model = self.model.borrow_mut();
            model.device = Some((Backend::Cpu, crate::device::cpu()));
            model.webgpu_broken = Some(reason.clone());
        }
        self.post(&Reply::BackendReady {
            backend: Backend::Cpu,
            adapter: "WebAssembly SIMD".into(),
            fallback: Some(reason),
        });
    }

    async fn use_backend(&self, wanted: Backend) {
        let (backend, device, adapter, fallback) = match wanted {
            Backend::Cpu => (
                Backend::Cpu,
                crate::device::cpu(),
                "WebAssembly SIMD".to_string(),
                None,
            ),
            Backend::WebGpu => match self.webgpu_device().await {
                Ok((device, adapter)) => (Backend::WebGpu, device, adapter, None),
                Err(reason) => (
                    Backend::Cpu,
                    crate::device::cpu(),
                    "WebAssembly SIMD".to_string(),
                    Some(reason),
                ),
            },
        };
        if self.model.borrow().device.as_ref().map(|(b, _)| *b) == Some(backend) {
            self.post(&Reply::BackendReady {
                backend,
                adapter,
                fallback,
            });
            return;
        }
        self.model.borrow_mut().device = Some((backend, device));
        self.post(&Reply::BackendReady {
            backend,
            adapter,
            fallback,
        });
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

    /// Starts WebGPU once per worker; later calls reuse the device.
    async fn webgpu_device(&self) -> Result<(Device, String), String> {
        if let Some(reason) = self.model.borrow().webgpu_broken.clone() {
            return Err(reason);
        }
        if let Some(device) = self.model.borrow().webgpu.clone() {
            return Ok((device, String::new()));
        }
        let has_gpu = js_sys::Reflect::get(&self.scope.navigator(), &"gpu".into())
            .map(|gpu| !gpu.is_undefined())
            .unwrap_or(false);
        if !has_gpu {
            return Err("This browser does not offer WebGPU".into());
        }
        self.post(&Reply::Status("Starting WebGPU…".into()));
        match Device::wgpu_options().init_with_setup_async().await {
            Ok((device, setup)) => {
                // Browsers may hide the adapter's name; then there is nothing more to show.
                let adapter = setup.adapter.get_info().name;
                self.model.borrow_mut().webgpu = Some(device.clone());
                Ok((device, adapter))
            }
            Err(e) => {
                let detail = e.to_string();
                let reason = if detail.contains("No adapter") || detail.contains("no adapters") {
                    "This browser offers WebGPU but no adapter (graphics device) for it".to_string()
                } else {
                    format!("WebGPU could not start ({detail})")
                };
                self.model.borrow_mut().webgpu_broken = Some(reason.clone());
                Err(reason)
            }
        }
    }

    async fn classify(&self, bytes: &[u8]) -> Result<Classification, String> {
        let start = now_ms(&self.scope);
        let input = ModelInput::from_image_bytes(bytes)
            .map_err(|e| format!("This photo can't be read: {e}."))?;
        let decoded = now_ms(&self.scope);
        let thumbnail_jpeg = thumbnail(&input);
        loop {
            let Some(classifier) = self.model.borrow().classifier.clone() else {
                return Err("No model is loaded, so the photo can't be classified.".into());
            };
            let backend = self
                .model
                .borrow()
                .device
                .as_ref()
                .map_or(Backend::Cpu, |(b, _)| *b);
            let model_start = now_ms(&self.scope);
            match classifier
                .classify_async(std::slice::from_ref(&input), TOP_K)
                .await
            {
                Ok(mut rows) => {
                    let custom = match self.head_for(&classifier) {
                        Some((parts, classes)) => classifier
                            .classify_trained_async(
                                std::slice::from_ref(&input),
                                &parts,
                                &classes,
                                TOP_K.min(classes.len()),
                            )
                            .await
                            .ok()
                            .and_then(|mut rows| rows.pop()),
                        None => None,
                    };
                    return Ok(Classification {
                        top: rows.pop().unwrap_or_default(),
                        model_ms: now_ms(&self.scope) - model_start,
                        decode_ms: decoded - start,
                        thumbnail_jpeg,
                        backend,
                        custom,
                        wasm_memory_bytes: wasm_memory_bytes(),
                    });
                }
                Err(e) if backend == Backend::WebGpu => {
                    // Lost device, out of memory…: rebuild on the CPU and retry this photo.
                    self.rebuild_on_cpu(format!("WebGPU failed while classifying ({e})"))
                        .await?;
                }
                Err(e) => return Err(format!("The model failed on this photo: {e}.")),
            }
        }
    }
}

/// The 224×224 crop the model saw, as a small JPEG (empty if encoding fails).
fn thumbnail(input: &ModelInput) -> Vec<u8> {
    let mut jpeg = Vec::new();
    let size = crate::architecture::INPUT_SIZE as u32;
    let encoded = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 82).encode(
        input.rgb(),
        size,
        size,
        image::ExtendedColorType::Rgb8,
    );
    if encoded.is_err() {
        jpeg.clear();
    }
    jpeg
}
