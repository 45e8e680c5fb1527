//! The backend the inference worker's photos run on: the CPU here, or WebGPU in the training
//! worker, as the page chose or as the browser's adapter suggests.

use std::rc::Rc;

use afinar_protocol::{Reply, Request};
use afinar_vocabulary::{Backend, CPU_ADAPTER};
use wasm_bindgen::JsValue;

use super::Front;
use crate::adapter::{self, Adapter};

impl Front {
    /// Asks for the adapter, then uses the best backend for it. That can take a while: the
    /// model loads meanwhile, and the CPU answers until the adapter is known. A later choice
    /// wins over this one.
    pub(super) fn use_best_backend(self: &Rc<Self>) {
        let asked = self.backend_asked.get() + 1;
        self.backend_asked.set(asked);
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let adapter = adapter::probe_adapter(&this.scope).await;
            if this.backend_asked.get() == asked {
                this.use_adapter(adapter);
            }
        });
    }

    /// The best backend for `adapter`: WebGPU on a hardware one, the CPU otherwise (saying why
    /// where WebGPU exists).
    fn use_adapter(self: &Rc<Self>, adapter: Adapter) {
        match adapter {
            Adapter::Hardware => {
                let webgpu = Request::UseBackend(Backend::WebGpu);
                match serde_wasm_bindgen::to_value(&webgpu) {
                    Ok(value) => self.use_webgpu(&value),
                    Err(e) => self.use_cpu(Some(e.to_string())),
                }
            }
            Adapter::Missing => self.use_cpu(None),
            Adapter::Software(name) => {
                let why = format!(
                    "This browser's WebGPU runs on {name}, a software renderer slower than the \
                     CPU (choose WebGPU to use it anyway)"
                );
                self.use_cpu(Some(why));
            }
        }
    }

    /// The CPU from now on, here and in the training worker where it runs.
    pub(super) fn use_cpu(&self, fallback: Option<String>) {
        self.webgpu_wanted.set(false);
        self.on_webgpu.set(false);
        self.post(&Reply::BackendReady {
            backend: Backend::Cpu,
            adapter: CPU_ADAPTER.into(),
            fallback,
        });
        if let Ok(value) = serde_wasm_bindgen::to_value(&Request::UseBackend(Backend::Cpu)) {
            self.tell_training(&value);
        }
    }

    /// WebGPU runs in the training worker: it says which backend it got.
    pub(super) fn use_webgpu(self: &Rc<Self>, raw: &JsValue) {
        self.webgpu_wanted.set(true);
        self.relay(raw);
    }
}
