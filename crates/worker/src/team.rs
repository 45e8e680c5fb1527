//! The helper training workers that a run's fine-tuning stage is shared with (see
//! `afinar::train::peers`): each is this same worker, started from this one with the model's
//! file, handed its share of the photos, and linked to this one by messages. They live for one
//! run: [`Team::stop`] ends them.
//!
//! A helper that stops (out of memory, say) closes its link; the run then fails with
//! `TrainError::PeerLost`, and the caller trains again without helpers.

use std::rc::Rc;

use afinar::train::{Leader, Link};
use afinar_protocol::{Reply, Request};
use afinar_vocabulary::TrainSettings;
use afinar_worker_scope::child::ChildLink;
use afinar_worker_scope::floats;
use wasm_bindgen::JsValue;
use web_sys::DedicatedWorkerGlobalScope;

use crate::convert;

/// This worker's own loader script, which the helpers run too.
const HELPER_SCRIPT: &str = "./afinar-worker_loader.js";

/// The helpers of one run.
pub struct Team {
    helpers: Vec<Rc<ChildLink>>,
    /// Where each helper's memory reports arrive ([`Team::memory`]); closed when it stops.
    memory: Vec<async_channel::Receiver<u64>>,
}

impl Team {
    /// Starts `helpers` training workers with the model `file`; returns them and this worker's
    /// end of their links. `settings` go with each share, for the helper's recipe.
    pub fn start(
        scope: &DedicatedWorkerGlobalScope,
        helpers: usize,
        file: &[u8],
        settings: &TrainSettings,
    ) -> Result<(Team, Leader), String> {
        let mut team = Team {
            helpers: Vec::new(),
            memory: Vec::new(),
        };
        let mut links = Vec::new();
        for _ in 0..helpers {
            let helper = Rc::new(ChildLink::new());
            let (heard, hearing) = async_channel::unbounded();
            let (memory, memory_heard) = async_channel::unbounded();
            let on_reply = {
                let (heard, memory) = (heard.clone(), memory.clone());
                move |raw: JsValue| {
                    if let Some(gradients) = floats(&raw) {
                        let _ = heard.try_send(gradients);
                        return;
                    }
                    // What it says of its model and backend is not news here.
                    match serde_wasm_bindgen::from_value::<Reply>(raw) {
                        Ok(Reply::HelperMemory(bytes)) => {
                            let _ = memory.try_send(bytes);
                        }
                        Ok(Reply::StageFailed(why) | Reply::Crashed(why)) => {
                            let why = format!("A training helper stopped: {why}");
                            web_sys::console::warn_1(&why.into());
                            heard.close();
                            memory.close();
                        }
                        _ => {}
                    }
                }
            };
            let started = helper.start(
                scope,
                HELPER_SCRIPT,
                "a training helper",
                vec![Request::LoadModelFile {
                    name: "model.tflite".into(),
                    bytes: file.to_vec(),
                }],
                on_reply,
                move |_, _| {
                    heard.close();
                    memory.close();
                },
            );
            if let Err(why) = started {
                team.stop();
                return Err(why);
            }
            let to = helper.clone();
            links.push(Link {
                send: Box::new(move |sum: Vec<f32>| {
                    to.hand_over(&js_sys::Float32Array::from(&sum[..]))
                }),
                heard: hearing,
            });
            team.helpers.push(helper);
            team.memory.push(memory_heard);
        }
        let shares_to = team.helpers.clone();
        let settings = settings.clone();
        let leader = Leader::new(links, move |share, pieces| {
            let to = share
                .share_rank
                .checked_sub(1)
                .and_then(|i| shares_to.get(i));
            if let Some(helper) = to {
                let photos = share.labels.len();
                for piece in pieces {
                    let part = convert::share_rows(piece, photos);
                    send(helper, &Request::StageRows(Box::new(part)));
                }
                let share = convert::stage_share(share, &settings);
                send(helper, &Request::FollowStage(Box::new(share)));
            }
        });
        Ok((team, leader))
    }

    /// Each helper's wasm memory now (the peak so far), in order; 0 for one that stopped.
    pub async fn memory(&self) -> Vec<u64> {
        for helper in &self.helpers {
            send(helper, &Request::ReportMemory);
        }
        let mut memory = Vec::with_capacity(self.memory.len());
        for heard in &self.memory {
            memory.push(heard.recv().await.unwrap_or(0));
        }
        memory
    }

    /// Ends every helper.
    pub fn stop(&self) {
        for helper in &self.helpers {
            helper.stop();
        }
    }
}

/// Sends a request made for the purpose, its rows handed over.
fn send(helper: &ChildLink, request: &Request) {
    if let Ok(value) = serde_wasm_bindgen::to_value(request) {
        helper.hand_over(&value);
    }
}
