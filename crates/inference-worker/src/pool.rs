//! Helper workers that prepare training photos, so that preparing uses every core the page
//! allows: each helper is this same worker, started from this one with the model's file, and
//! photos go to the first one with room ([`crate::assign`] decides; this carries it out).
//! Answers go to the page as they come, each with its photo's id.
//!
//! A helper that stops (out of memory, say) is not replaced: the photo it was preparing gets
//! an error, the others it held go to the helpers left, and the page is told the pool shrank.
//! With no helper left, photos go back to this worker ([`Pool::new`]'s `fallback`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use afinar_protocol::{Reply, Request};
use afinar_vocabulary::RowsNeeded;
use afinar_vocabulary::limits::MAX_PHOTO_WORKERS;
use afinar_worker_scope::post;
use wasm_bindgen::prelude::*;
use web_sys::DedicatedWorkerGlobalScope;

use crate::assign::{Assignments, Step};
use crate::message::variant;
use afinar_worker_scope::child::ChildLink;

/// This worker's own loader script, which the helpers run too.
const HELPER_SCRIPT: &str = "./afinar-inference-worker_loader.js";

/// A training photo to prepare: its request as the page sent it.
#[derive(Clone)]
pub struct Job {
    pub id: u32,
    pub rows: RowsNeeded,
    pub raw: JsValue,
}

/// The helpers, and the photos waiting for one.
#[derive(Clone)]
pub struct Pool(Rc<State>);

struct State {
    scope: DedicatedWorkerGlobalScope,
    assignments: RefCell<Assignments<Job>>,
    /// The running helpers, by key.
    helpers: RefCell<HashMap<u32, ChildLink>>,
    /// The model's file the helpers load, once this worker has one.
    model: RefCell<Option<Rc<Vec<u8>>>>,
    /// Photos handed back to this worker, when no helper is left to prepare them.
    fallback: Box<dyn Fn(Vec<Job>)>,
}

impl Pool {
    pub fn new(scope: DedicatedWorkerGlobalScope, fallback: impl Fn(Vec<Job>) + 'static) -> Self {
        Self(Rc::new(State {
            scope,
            assignments: RefCell::new(Assignments::default()),
            helpers: RefCell::new(HashMap::new()),
            model: RefCell::new(None),
            fallback: Box::new(fallback),
        }))
    }

    /// Prepares photos on `workers` helpers from now on (at most [`MAX_PHOTO_WORKERS`]); one
    /// or none prepares them in this worker, as before any was asked for.
    pub fn use_workers(&self, workers: u32) {
        let workers = workers.min(MAX_PHOTO_WORKERS) as usize;
        let wanted = if workers <= 1 { 0 } else { workers };
        let stop = self.0.assignments.borrow_mut().set_wanted(wanted);
        self.stop(stop);
        self.dispatch();
    }

    /// Whether photos are prepared by helpers (else in this worker).
    pub fn is_active(&self) -> bool {
        self.0.assignments.borrow().wanted() > 0 && self.0.model.borrow().is_some()
    }

    /// The model's file, after this worker loaded it: helpers running with another stop, and
    /// the photos they held go to helpers with this one.
    pub fn use_model(&self, file: Rc<Vec<u8>>) {
        *self.0.model.borrow_mut() = Some(file);
        let stop = self.0.assignments.borrow_mut().replace_all();
        self.stop(stop);
        self.dispatch();
    }

    /// Lets the helpers with nothing to do go (their memory with them), as while a head
    /// trains; photos that come later start them again.
    pub fn rest(&self) {
        let idle = self.0.assignments.borrow_mut().idle();
        self.stop(idle);
    }

    /// Queues a photo for the first helper with room.
    pub fn prepare(&self, job: Job) {
        self.0.assignments.borrow_mut().queue(job);
        self.dispatch();
    }

    fn stop(&self, keys: Vec<u32>) {
        for key in keys {
            if let Some(link) = self.0.helpers.borrow_mut().remove(&key) {
                link.stop();
            }
        }
    }

    /// Carries out what the assignments say until nothing is left to do.
    fn dispatch(&self) {
        loop {
            // Not borrowed while a step runs: a helper that cannot start changes them.
            let step = self.0.assignments.borrow_mut().next();
            match step {
                None => return,
                Some(Step::Send { helper, job }) => {
                    if let Some(link) = self.0.helpers.borrow().get(&helper) {
                        link.send(&job.raw);
                    }
                }
                Some(Step::Start { helper }) => self.start(helper),
                Some(Step::Fallback(jobs)) => (self.0.fallback)(jobs),
            }
        }
    }

    /// Starts helper `key` with the model.
    fn start(&self, key: u32) {
        let Some(file) = self.0.model.borrow().clone() else {
            return self.stopped(key, "no model is loaded yet", false);
        };
        let link = ChildLink::new();
        let setup = vec![Request::LoadModelFile {
            name: "the app's model".into(),
            bytes: file.as_ref().clone(),
        }];
        let (on_reply, on_unreachable) = (self.clone(), self.clone());
        let started = link.start(
            &self.0.scope,
            HELPER_SCRIPT,
            "a helper worker",
            setup,
            move |reply| on_reply.replied(key, reply),
            move |why, _| on_unreachable.stopped(key, &why, false),
        );
        match started {
            Ok(()) => {
                self.0.helpers.borrow_mut().insert(key, link);
            }
            Err(why) => self.stopped(key, &why, false),
        }
    }

    /// A helper's message: an answer goes to the page; a stop takes the helper out.
    fn replied(&self, key: u32, reply: JsValue) {
        match variant(&reply).as_deref() {
            Some("Prepared") => {
                let id = js_sys::Reflect::get(&reply, &"Prepared".into())
                    .and_then(|p| js_sys::Reflect::get(&p, &"id".into()))
                    .ok()
                    .and_then(|id| id.as_f64());
                self.0
                    .assignments
                    .borrow_mut()
                    .answered(key, |job| Some(f64::from(job.id)) == id);
                if let Err(e) = self.0.scope.post_message(&reply) {
                    web_sys::console::error_1(&e);
                }
                self.dispatch();
            }
            Some("Crashed") => {
                let why = match serde_wasm_bindgen::from_value::<Reply>(reply) {
                    Ok(Reply::Crashed(why)) => why,
                    _ => "it stopped".into(),
                };
                self.stopped(key, &why, true);
            }
            Some("ModelReady") => self.0.assignments.borrow_mut().loaded(key),
            Some("ModelRefused" | "ModelFailed") => {
                self.stopped(key, "it could not read the model", false)
            }
            // An update of the app arrived since the page loaded: the helper's files are the
            // new version's, and it stopped without a word more.
            Some("WrongBuild") => self.stopped(
                key,
                "a newer version of Afinar arrived; reload the page to use it",
                false,
            ),
            // Its status lines and model details are this worker's to tell.
            _ => {}
        }
    }

    /// A helper stopped (`ran`: while it ran, as opposed to never starting): it is taken out,
    /// the photo it stopped on (if it had loaded the model) is answered as failed, the others
    /// go on, and the page is told. (A stop's error event may overtake a last answer it sent:
    /// that photo is then prepared again elsewhere, or blamed if it was its first.)
    fn stopped(&self, key: u32, why: &str, ran: bool) {
        let Some(stopped) = self.0.assignments.borrow_mut().stopped(key, ran) else {
            return;
        };
        self.stop(vec![key]);
        if let Some(job) = stopped.culprit {
            let failure = Reply::Prepared {
                id: job.id,
                rows: job.rows,
                result: Err(format!(
                    "The worker preparing this photo stopped ({why}); try adding it again."
                )),
            };
            post(&self.0.scope, &failure);
        }
        let workers = stopped.left.max(1);
        post(
            &self.0.scope,
            &Reply::Status(format!(
                "A worker preparing photos stopped ({why}); preparing goes on with {workers} \
                 worker{}.",
                if workers == 1 { "" } else { "s" }
            )),
        );
        self.dispatch();
    }
}
