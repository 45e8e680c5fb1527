//! Helper workers that prepare training photos, so that preparing uses every core the page
//! allows: each helper is this same worker, started from this one with the model's file, and
//! gets at most [`PER_HELPER`] photos at a time (one working, one waiting, so it never idles
//! while its last answer is on its way); the others wait here for the first helper free.
//! Answers go to the page as they come, each with its photo's id.
//!
//! A helper that stops (out of memory, say) is not replaced: the photo it was preparing gets
//! an error, the others it held go to the helpers left, and the page is told the pool shrank.
//! With no helper left, photos go back to this worker ([`Pool::new`]'s `fallback`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use afinar_protocol::{Reply, Request};
use afinar_vocabulary::RowsNeeded;
use afinar_vocabulary::limits::MAX_PHOTO_WORKERS;
use afinar_worker_scope::post;
use wasm_bindgen::prelude::*;
use web_sys::DedicatedWorkerGlobalScope;

use crate::child::ChildLink;
use crate::message::variant;

/// Photos sent to one helper and not yet answered, at most.
const PER_HELPER: usize = 2;
/// This worker's own loader script, which the helpers run too.
const HELPER_SCRIPT: &str = "./afinar-inference-worker_loader.js";

/// A training photo to prepare: its request as the page sent it.
#[derive(Clone)]
pub struct Job {
    pub id: u32,
    pub rows: RowsNeeded,
    pub raw: JsValue,
}

struct Helper {
    key: u32,
    link: ChildLink,
    /// Oldest first: a helper answers in the order it was sent.
    in_flight: VecDeque<Job>,
}

/// The helpers, and the photos waiting for one.
#[derive(Clone)]
pub struct Pool(Rc<State>);

struct State {
    scope: DedicatedWorkerGlobalScope,
    /// Helpers to run: 0 prepares here, in this worker.
    wanted: Cell<usize>,
    helpers: RefCell<Vec<Helper>>,
    waiting: RefCell<VecDeque<Job>>,
    /// The model's file the helpers load, once this worker has one.
    model: RefCell<Option<Rc<Vec<u8>>>>,
    next_key: Cell<u32>,
    /// Photos handed back to this worker, when no helper is left to prepare them.
    fallback: Box<dyn Fn(Vec<Job>)>,
}

impl Pool {
    pub fn new(scope: DedicatedWorkerGlobalScope, fallback: impl Fn(Vec<Job>) + 'static) -> Self {
        Self(Rc::new(State {
            scope,
            wanted: Cell::new(0),
            helpers: RefCell::new(Vec::new()),
            waiting: RefCell::new(VecDeque::new()),
            model: RefCell::new(None),
            next_key: Cell::new(0),
            fallback: Box::new(fallback),
        }))
    }

    /// Prepares photos on `workers` helpers from now on (at most [`MAX_PHOTO_WORKERS`]); one
    /// or none prepares them in this worker, as before any was asked for.
    pub fn use_workers(&self, workers: u32) {
        let workers = (workers as usize).min(MAX_PHOTO_WORKERS as usize);
        let wanted = if workers <= 1 { 0 } else { workers };
        self.0.wanted.set(wanted);
        let extra: Vec<Helper> = {
            let mut helpers = self.0.helpers.borrow_mut();
            let keep = helpers.len().min(wanted);
            helpers.drain(keep..).collect()
        };
        for helper in extra {
            helper.link.stop();
            self.requeue(helper.in_flight);
        }
        self.dispatch();
    }

    /// Whether photos are prepared by helpers (else in this worker).
    pub fn is_active(&self) -> bool {
        self.0.wanted.get() > 0 && self.0.model.borrow().is_some()
    }

    /// The model's file, after this worker loaded it: helpers running with another stop, and
    /// the photos they held go to helpers with this one.
    pub fn use_model(&self, file: Rc<Vec<u8>>) {
        *self.0.model.borrow_mut() = Some(file);
        let old: Vec<Helper> = self.0.helpers.borrow_mut().drain(..).collect();
        for helper in old {
            helper.link.stop();
            self.requeue(helper.in_flight);
        }
        self.dispatch();
    }

    /// Queues a photo for the first helper free.
    pub fn prepare(&self, job: Job) {
        self.0.waiting.borrow_mut().push_back(job);
        self.dispatch();
    }

    /// Puts photos back at the head of the queue, oldest first.
    fn requeue(&self, jobs: VecDeque<Job>) {
        let mut waiting = self.0.waiting.borrow_mut();
        for job in jobs.into_iter().rev() {
            waiting.push_front(job);
        }
    }

    /// Sends waiting photos to the helpers with room, starting helpers up to the number wanted.
    fn dispatch(&self) {
        if self.0.wanted.get() == 0 {
            let back: Vec<Job> = self.0.waiting.borrow_mut().drain(..).collect();
            if !back.is_empty() {
                (self.0.fallback)(back);
            }
            return;
        }
        loop {
            if self.0.waiting.borrow().is_empty() {
                return;
            }
            let free = {
                let helpers = self.0.helpers.borrow();
                helpers
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| h.in_flight.len() < PER_HELPER)
                    .min_by_key(|(_, h)| h.in_flight.len())
                    .map(|(i, _)| i)
            };
            let index = match free {
                Some(index) => index,
                None if self.0.helpers.borrow().len() < self.0.wanted.get() => {
                    match self.start_helper() {
                        Some(index) => index,
                        None => return,
                    }
                }
                None => return,
            };
            let Some(job) = self.0.waiting.borrow_mut().pop_front() else {
                return;
            };
            let mut helpers = self.0.helpers.borrow_mut();
            let helper = &mut helpers[index];
            helper.link.send(&job.raw);
            helper.in_flight.push_back(job);
        }
    }

    /// Starts one more helper with the model; its index, or `None` (with the pool shrunk to
    /// the helpers it has) where it cannot start.
    fn start_helper(&self) -> Option<usize> {
        let file = self.0.model.borrow().clone()?;
        let key = self.0.next_key.get();
        self.0.next_key.set(key.wrapping_add(1));
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
        if let Err(why) = started {
            self.shrink(&why);
            return None;
        }
        let mut helpers = self.0.helpers.borrow_mut();
        helpers.push(Helper {
            key,
            link,
            in_flight: VecDeque::new(),
        });
        Some(helpers.len() - 1)
    }

    /// A helper's message: an answer goes to the page; a stop takes the helper out.
    fn replied(&self, key: u32, reply: JsValue) {
        match variant(&reply).as_deref() {
            Some("Prepared") => {
                let id = js_sys::Reflect::get(&reply, &"Prepared".into())
                    .and_then(|p| js_sys::Reflect::get(&p, &"id".into()))
                    .ok()
                    .and_then(|id| id.as_f64());
                if let Some(helper) = self
                    .0
                    .helpers
                    .borrow_mut()
                    .iter_mut()
                    .find(|h| h.key == key)
                    && let Some(at) = helper
                        .in_flight
                        .iter()
                        .position(|job| Some(f64::from(job.id)) == id)
                {
                    helper.in_flight.remove(at);
                }
                if let Err(e) = self.0.scope.post_message(&reply) {
                    web_sys::console::error_1(&e);
                }
                self.dispatch();
            }
            Some("Crashed") => {
                let why = serde_wasm_bindgen::from_value::<Reply>(reply)
                    .ok()
                    .and_then(|r| match r {
                        Reply::Crashed(why) => Some(why),
                        _ => None,
                    })
                    .unwrap_or_else(|| "it stopped".into());
                self.stopped(key, &why, true);
            }
            Some("ModelRefused" | "ModelFailed") => {
                self.stopped(key, "it could not read the model", false)
            }
            // Its status lines and model details are this worker's to tell.
            _ => {}
        }
    }

    /// A helper stopped (`ran`: while preparing, so the photo it had first is the one it
    /// stopped on) or never started: it is taken out, and its photos go to the others.
    fn stopped(&self, key: u32, why: &str, ran: bool) {
        let helper = {
            let mut helpers = self.0.helpers.borrow_mut();
            let Some(at) = helpers.iter().position(|h| h.key == key) else {
                return;
            };
            helpers.remove(at)
        };
        helper.link.stop();
        let mut in_flight = helper.in_flight;
        if ran && let Some(job) = in_flight.pop_front() {
            let failure = Reply::Prepared {
                id: job.id,
                rows: job.rows,
                result: Err(format!(
                    "The worker preparing this photo stopped ({why}); try adding it again."
                )),
            };
            post(&self.0.scope, &failure);
        }
        self.requeue(in_flight);
        self.shrink(why);
        self.dispatch();
    }

    /// Runs with the helpers it has from now on, and says so.
    fn shrink(&self, why: &str) {
        let left = self.0.helpers.borrow().len();
        self.0.wanted.set(left);
        let workers = left.max(1);
        post(
            &self.0.scope,
            &Reply::Status(format!(
                "A worker preparing photos stopped ({why}); preparing goes on with {workers} \
                 worker{}.",
                if workers == 1 { "" } else { "s" }
            )),
        );
    }
}
