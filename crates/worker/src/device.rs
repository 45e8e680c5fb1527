//! The model the worker runs and the device it runs on: the weights, the classifier built on
//! the chosen backend, WebGPU started once, and the move to the CPU when WebGPU fails. The page
//! hears of every change ([`Reply::BackendReady`], [`Reply::ModelReady`], statuses).

use std::cell::RefCell;
use std::rc::Rc;

use afinar::{Classifier, MobileNetV2Weights};
use afinar_protocol::{ModelInfo, ModelSource, Reply};
use afinar_vocabulary::Backend;
use burn::tensor::Device;
use web_sys::DedicatedWorkerGlobalScope;

use crate::backend::{self, CPU_ADAPTER};
use afinar_worker_scope::{now_ms, post};

/// The worker's model and device, changed only through its methods.
pub struct ModelHost {
    scope: DedicatedWorkerGlobalScope,
    state: RefCell<ModelState>,
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

impl ModelHost {
    pub fn new(scope: DedicatedWorkerGlobalScope) -> Self {
        Self {
            scope,
            state: RefCell::new(ModelState::default()),
        }
    }

    fn post(&self, reply: &Reply) {
        post(&self.scope, reply);
    }

    /// The model's weights and its file as read, when one is loaded.
    pub fn weights_and_file(&self) -> Option<(Rc<MobileNetV2Weights>, Rc<Vec<u8>>)> {
        let state = self.state.borrow();
        Some((state.weights.clone()?, state.file.clone()?))
    }

    pub fn current(&self) -> Option<(Rc<Classifier>, Backend)> {
        let model = self.state.borrow();
        let backend = model.device.as_ref().map_or(Backend::Cpu, |(b, _)| *b);
        model.classifier.clone().map(|c| (c, backend))
    }

    /// Reads and builds a model; on error nothing changes and the message says why.
    pub async fn install(
        &self,
        bytes: &[u8],
        source: ModelSource,
        start: f64,
    ) -> Result<(), String> {
        self.post(&Reply::Status("Reading the model…".into()));
        let weights = MobileNetV2Weights::from_tflite(bytes).map_err(|e| e.to_string())?;
        // A file without its own label list reuses the current one when the sizes agree.
        let current_labels = self.state.borrow().labels.join("\n");
        let fallback = (!current_labels.is_empty()).then_some(current_labels.as_str());
        let labels = weights.labels_or(fallback).map_err(|e| e.to_string())?;
        let weights = Rc::new(weights);
        if self.state.borrow().device.is_none() {
            // No backend chosen yet: the CPU always works; the page asks for WebGPU separately.
            self.state.borrow_mut().device = Some(backend::cpu());
        }
        let classifier = self.build_classifier(&weights, &labels).await?;
        let info = ModelInfo {
            source,
            num_classes: labels.len(),
            sha256: weights.sha256.clone(),
            size_bytes: bytes.len() as u64,
            load_ms: now_ms(&self.scope) - start,
            arithmetic: classifier.arithmetic().describe().into(),
        };
        {
            let mut model = self.state.borrow_mut();
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
            .state
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
    pub async fn rebuild_on_cpu(&self, reason: String) -> Result<(), String> {
        self.fall_back_to_cpu(reason);
        let (weights, labels) = {
            let model = self.state.borrow();
            (model.weights.clone(), model.labels.clone())
        };
        let weights = weights.ok_or("No model is loaded.")?;
        let classifier = self.build_classifier(&weights, &labels).await?;
        self.state.borrow_mut().classifier = Some(classifier);
        Ok(())
    }

    fn fall_back_to_cpu(&self, reason: String) {
        {
            let mut model = self.state.borrow_mut();
            model.device = Some(backend::cpu());
            model.webgpu_broken = Some(reason.clone());
        }
        self.post(&Reply::BackendReady {
            backend: Backend::Cpu,
            adapter: CPU_ADAPTER.into(),
            fallback: Some(reason),
        });
    }

    pub async fn use_backend(&self, wanted: Backend) {
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
        let unchanged = self.state.borrow().device.as_ref().map(|(b, _)| *b) == Some(backend);
        if !unchanged {
            self.state.borrow_mut().device = Some((backend, device));
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
            let model = self.state.borrow();
            model.weights.clone().map(|w| (w, model.labels.clone()))
        };
        if let Some((weights, labels)) = current {
            self.post(&Reply::Status(format!(
                "Preparing the model on {}…",
                backend.name()
            )));
            match self.build_classifier(&weights, &labels).await {
                Ok(classifier) => self.state.borrow_mut().classifier = Some(classifier),
                Err(e) => self.post(&Reply::Status(e)),
            }
            self.post(&Reply::Status(String::new()));
        }
    }

    /// WebGPU's device and adapter name, started on first use.
    async fn webgpu_device(&self) -> Result<(Device, String), String> {
        if let Some(reason) = self.state.borrow().webgpu_broken.clone() {
            return Err(reason);
        }
        if let Some(started) = self.state.borrow().webgpu.clone() {
            return Ok(started);
        }
        self.post(&Reply::Status("Starting WebGPU…".into()));
        match backend::start_webgpu(&self.scope).await {
            Ok(started) => {
                self.state.borrow_mut().webgpu = Some(started.clone());
                Ok(started)
            }
            Err(reason) => {
                self.state.borrow_mut().webgpu_broken = Some(reason.clone());
                Err(reason)
            }
        }
    }
}
