//! The user's choices that are preferences rather than data: the *not sure* threshold and the
//! results' view. Kept in this browser's `localStorage` (read before the page is drawn,
//! written by one effect), so losing them costs nothing; the backend choice is kept the same
//! way, by the app, because the worker needs it before it starts.

use afinar_vocabulary::NOT_SURE_BELOW;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

const KEY: &str = "afinar.preferences";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    not_sure_below: f64,
    gallery: bool,
}

impl Default for Saved {
    fn default() -> Self {
        Self {
            not_sure_below: NOT_SURE_BELOW,
            gallery: false,
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
        };
        Effect::new(move |_| {
            let now = Saved {
                not_sure_below: prefs.not_sure_below.get(),
                gallery: prefs.gallery.get(),
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
