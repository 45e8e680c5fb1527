//! A worker this one starts: the training worker (`crates/worker`, Burn) on first need, the
//! helpers that prepare photos (the inference worker's pool), and the helpers that train with
//! the training worker. What is sent to it is held back until its wasm is listening, and its
//! replies come back to the handler it was started with.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use afinar_protocol::{Reply, Request};
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, Worker, WorkerOptions};

/// A worker event handler (message or error).
type Handler = Closure<dyn Fn(JsValue)>;

/// A worker started from this one, once started.
pub struct ChildLink(Rc<State>);

struct State {
    worker: RefCell<Option<Worker>>,
    /// Its wasm is listening (it said [`Reply::Started`]).
    started: Cell<bool>,
    /// Messages posted before it was, and whether their large buffers are handed over.
    outbox: RefCell<Vec<(JsValue, bool)>>,
    /// Its event handlers, alive as long as it is.
    handlers: RefCell<Vec<Handler>>,
}

impl Default for ChildLink {
    fn default() -> Self {
        Self::new()
    }
}

impl ChildLink {
    pub fn new() -> Self {
        Self(Rc::new(State {
            worker: RefCell::new(None),
            started: Cell::new(false),
            outbox: RefCell::new(Vec::new()),
            handlers: RefCell::new(Vec::new()),
        }))
    }

    pub fn is_running(&self) -> bool {
        self.0.worker.borrow().is_some()
    }

    /// Starts the worker of `script` (a loader script beside this worker's own): `setup` is
    /// sent to it before anything else, and every reply but its [`Reply::Started`] goes to
    /// `on_reply` (a failure once it ran as [`Reply::Crashed`], named after `what`). If it never
    /// starts (its files could not be loaded: offline before they were ever kept, say), the
    /// messages held for it go to `on_unreachable` with why, and it can be started again.
    pub fn start(
        &self,
        scope: &DedicatedWorkerGlobalScope,
        script: &str,
        what: &'static str,
        setup: Vec<Request>,
        on_reply: impl Fn(JsValue) + Clone + 'static,
        on_unreachable: impl Fn(String, Vec<JsValue>) + 'static,
    ) -> Result<(), String> {
        let options = WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Classic);
        // This worker's build (the page's, after '#'): the loader checks that it is its own;
        // and what this worker's URL asks for (its query), for its helpers alike.
        let (search, hash) = (scope.location().search(), scope.location().hash());
        let worker = Worker::new_with_options(&format!("{script}{search}{hash}"), &options)
            .map_err(|e| format!("{what} could not start: {e:?}"))?;
        let on_message = {
            let on_reply = on_reply.clone();
            let state = self.0.clone();
            Closure::<dyn Fn(JsValue)>::new(move |event: JsValue| {
                let data = event.unchecked_into::<MessageEvent>().data();
                if data.as_string().as_deref() == Some("Started") {
                    state.flush();
                } else {
                    on_reply(data);
                }
            })
        };
        let state = self.0.clone();
        let on_error = Closure::<dyn Fn(JsValue)>::new(move |event: JsValue| {
            // An `ErrorEvent` for an error in its code, a plain `Event` when its script could
            // not be loaded: read the message without assuming which.
            let message = js_sys::Reflect::get(&event, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "its files could not be loaded".into());
            event.unchecked_ref::<web_sys::Event>().prevent_default();
            if state.started.get() {
                let crashed = Reply::Crashed(format!("{what} stopped: {message}"));
                if let Ok(value) = serde_wasm_bindgen::to_value(&crashed) {
                    on_reply(value);
                }
            } else {
                on_unreachable(message, state.forget());
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        self.0.handlers.borrow_mut().extend([on_message, on_error]);
        *self.0.worker.borrow_mut() = Some(worker);
        for request in setup {
            if let Ok(value) = serde_wasm_bindgen::to_value(&request) {
                self.0.send(&value, true);
            }
        }
        Ok(())
    }

    /// Sends a message (a [`Request`] as a JS value), held back until the worker listens.
    pub fn send(&self, message: &JsValue) {
        self.0.send(message, false);
    }

    /// [`Self::send`], handing the message's large buffers over instead of copying them
    /// ([`afinar_protocol::js::transfer_list`]): for a message that nothing here reads again.
    pub fn hand_over(&self, message: &JsValue) {
        self.0.send(message, true);
    }

    /// Stops the worker; nothing it would still have said arrives.
    pub fn stop(&self) {
        if let Some(worker) = self.0.worker.borrow_mut().take() {
            worker.set_onmessage(None);
            worker.set_onerror(None);
            worker.terminate();
        }
        self.0.started.set(false);
        self.0.outbox.borrow_mut().clear();
        // Dropped after this task: `stop` may be called from one of these handlers.
        let handlers = std::mem::take(&mut *self.0.handlers.borrow_mut());
        wasm_bindgen_futures::spawn_local(async move { drop(handlers) });
    }
}

impl State {
    /// Drops a worker that never started; returns the messages held for it.
    fn forget(&self) -> Vec<JsValue> {
        if let Some(worker) = self.worker.borrow_mut().take() {
            worker.terminate();
        }
        let held = std::mem::take(&mut *self.outbox.borrow_mut());
        held.into_iter().map(|(message, _)| message).collect()
    }

    fn send(&self, message: &JsValue, hand_over: bool) {
        let worker = self.worker.borrow();
        match worker.as_ref() {
            Some(worker) if self.started.get() => {
                let transfer = if hand_over {
                    afinar_protocol::js::transfer_list(message)
                } else {
                    js_sys::Array::new()
                };
                if let Err(e) = worker.post_message_with_transfer(message, &transfer) {
                    web_sys::console::error_1(&e);
                }
            }
            Some(_) => self.outbox.borrow_mut().push((message.clone(), hand_over)),
            None => {}
        }
    }

    fn flush(&self) {
        self.started.set(true);
        let pending = std::mem::take(&mut *self.outbox.borrow_mut());
        for (message, hand_over) in pending {
            self.send(&message, hand_over);
        }
    }
}
