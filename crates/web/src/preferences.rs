//! The user's choices that are preferences rather than data: the *not sure* threshold, the
//! results' view and how many workers prepare photos. Kept in this browser's `localStorage` (read before the page is drawn,
//! written by one effect), so losing them costs nothing; the backend choice is kept the same
//! way, by the app, because the worker needs it before it starts.

use afinar_vocabulary::NOT_SURE_BELOW;
use afinar_vocabulary::limits::{MAX_PHOTO_WORKERS, automatic_photo_workers};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

const KEY: &str = "afinar.preferences";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    not_sure_below: f64,
    gallery: bool,
    /// `None`: as many as [`automatic_workers`] says.
    workers: Option<u32>,
}

impl Default for Saved {
    fn default() -> Self {
        Self {
            not_sure_below: NOT_SURE_BELOW,
            gallery: false,
            workers: None,
        }
    }
}

/// The preferences, provided as a context ([`Preferences::provide`]).
#[derive(Clone, Copy)]
pub struct Preferences {
    /// A photo whose top class (of the user's) has a lower probability is shown as *not sure*.
    pub not_sure_below: RwSignal<f64>,
    /// Results as a gallery grid rather than cards.
    pub gallery: RwSignal<bool>,
    /// Workers that prepare training photos at once; `None` leaves it to [`automatic_workers`].
    pub workers: RwSignal<Option<u32>>,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

impl Preferences {
    /// Reads what this browser kept, provides it to the components below the caller and
    /// keeps it as it changes.
    pub fn provide() -> Self {
        let saved: Saved = storage()
            .and_then(|s| s.get_item(KEY).ok().flatten())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let prefs = Self {
            not_sure_below: RwSignal::new(saved.not_sure_below.clamp(0.0, 1.0)),
            gallery: RwSignal::new(saved.gallery),
            workers: RwSignal::new(saved.workers.map(|n| n.clamp(1, MAX_PHOTO_WORKERS))),
        };
        Effect::new(move |_| {
            let now = Saved {
                not_sure_below: prefs.not_sure_below.get(),
                gallery: prefs.gallery.get(),
                workers: prefs.workers.get(),
            };
            // A storage that refuses (full, private mode) leaves the choice to this visit.
            if let (Some(storage), Ok(text)) = (storage(), serde_json::to_string(&now)) {
                let _ = storage.set_item(KEY, &text);
            }
        });
        provide_context(prefs);
        prefs
    }
}

/// The [`Preferences`] provided by the app.
pub fn use_preferences() -> Preferences {
    expect_context::<Preferences>()
}

/// The workers that prepare photos for the person's choice (`None`: automatic).
pub fn photo_workers(chosen: Option<u32>) -> u32 {
    chosen.unwrap_or_else(automatic_workers)
}

/// Workers for preparing photos on this device: one per core, within its memory.
pub fn automatic_workers() -> u32 {
    let navigator = web_sys::window().map(|w| w.navigator());
    let cores = navigator.as_ref().map(|n| n.hardware_concurrency());
    // Not in every browser (nor in web-sys): read as a plain property.
    let memory = navigator
        .and_then(|n| js_sys::Reflect::get(&n, &"deviceMemory".into()).ok())
        .and_then(|m| m.as_f64());
    automatic_photo_workers(cores, memory)
}
