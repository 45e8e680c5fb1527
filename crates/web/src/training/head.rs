//! The trained head: the one the worker uses for new photos, its export and its import, and
//! the whole classifier's export as a `.tflite`.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, Url};

use super::state::{Training, run_local, use_training};
use crate::link::WorkerLink;
use crate::preferences::use_preferences;
use afinar_protocol::{ExportedModel, HeadInfo};

impl Training {
    /// Keeps `file` as the head in use: for the export, for the worker after a restart, and in
    /// the store for the next visit.
    pub(super) fn adopt_head(self, file: Vec<u8>) {
        self.forget_publication();
        self.save_head(&file);
        self.with_link(|link| link.keep_head(file.clone()));
        self.head_file.set_value(Some(file));
    }

    /// Forgets the head in use, here, in the worker and in the store.
    pub(super) fn forget_head(self) {
        self.head.set(None);
        self.forget_publication();
        self.head_file.set_value(None);
        self.with_link(|link| link.use_head(None));
        self.save_meta("head", None);
    }

    /// Asks the worker to check `bytes` as a head; it is kept (here, in the worker after a
    /// restart, in the store) only once the worker accepted it, so a crafted file is never
    /// replayed on the next visit. `announce`: say so when it is in use.
    pub(super) fn import_head(self, bytes: Vec<u8>, announce: bool) {
        self.importing.set_value(Some((bytes.clone(), announce)));
        self.with_link(|link| link.try_head(bytes));
    }

    /// The worker uses a head: one just imported, or the kept one after a reload or restart.
    pub fn head_ready(self, info: &HeadInfo) {
        if let Some((file, announce)) = self.importing.get_value() {
            self.importing.set_value(None);
            self.adopt_head(file);
            if announce {
                self.say(format!("Imported a head for {}.", info.classes.join(", ")));
            }
        }
        self.head.set(Some(info.clone()));
    }

    /// The model worker stopped while taking up a head (the link no longer gives it to the
    /// next one): a file being imported is not used; the head in use is no longer kept, so it
    /// cannot stop the next visit too. The classes and photos stay.
    pub fn head_set_aside(self, reason: &str) {
        if self.importing.with_value(Option::is_some) {
            self.importing.set_value(None);
            self.say(format!(
                "The model worker stopped while reading that head file ({reason}); it was not \
                 used."
            ));
            return;
        }
        // Kept apart in the store, never given to a worker again: not lost if it was not the
        // cause.
        if let Some(file) = self
            .head_file
            .with_value(|f| f.as_deref().map(js_sys::Uint8Array::from))
        {
            self.save_meta("head-set-aside", Some(file.into()));
        }
        self.forget_head();
        self.say(format!(
            "Your trained head was set aside: the model worker stopped while taking it up \
             ({reason}). Your classes and photos are kept; train again for a new head."
        ));
    }

    pub fn head_refused(self, message: &str) {
        self.importing.set_value(None);
        self.say(message);
    }

    fn export_model(self) {
        self.exporting.set(true);
        self.with_link(WorkerLink::export_model);
    }

    /// The worker wrote the classifier as a `.tflite`: the browser saves it.
    pub fn model_exported(self, result: &Result<ExportedModel, String>) {
        self.exporting.set(false);
        match result {
            Ok(model) => {
                download(&model.bytes, EXPORTED_MODEL_FILE);
                self.say(format!(
                    "Saved {EXPORTED_MODEL_FILE} ({:.1} MB): a TFLite model of your classifier, \
                     with your class names, for LiteRT and MediaPipe.",
                    model.bytes.len() as f64 / 1e6
                ));
            }
            Err(message) => self.say(message),
        }
    }
}

/// Name the exported classifier is saved under.
const EXPORTED_MODEL_FILE: &str = "afinar-classifier.tflite";

/// Which head new photos get, and its export and import.
#[component]
pub fn HeadControls() -> impl IntoView {
    let training = use_training();
    let import = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            run_local(async move {
                match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
                    Ok(buffer) => {
                        training.import_head(js_sys::Uint8Array::new(&buffer).to_vec(), true)
                    }
                    Err(e) => training.say(format!(
                        "The file could not be read: {}",
                        crate::link::describe(&e)
                    )),
                }
            });
        }
        input.set_value("");
    };
    let export = move |_| {
        training.head_file.with_value(|file| {
            if let Some(file) = file {
                download(file, "afinar-head.safetensors");
            }
        });
    };
    view! {
        <p class="head-status" data-testid="head-status">
            {move || match training.head.get() {
                Some(h) => format!("New photos are also classified into your classes: {}.", h.classes.join(", ")),
                None => "No trained head yet: new photos get the ImageNet labels only.".to_string(),
            }}
        </p>
        <NotSureSetting />
        <div class="intake-actions">
            <button data-testid="export-head" disabled=move || training.head.with(Option::is_none) on:click=export>
                "Export head (.safetensors)"
            </button>
            <button
                data-testid="export-model"
                title="The whole classifier as one file for LiteRT and MediaPipe"
                disabled=move || training.head.with(Option::is_none) || training.exporting.get()
                on:click=move |_| training.export_model()
            >
                {move || if training.exporting.get() { "Exporting…" } else { "Export model (.tflite)" }}
            </button>
            <label class="button subtle">
                "Import a head…"
                <input type="file" accept=".safetensors" class="visually-hidden" data-testid="import-head" on:change=import />
            </label>
        </div>
    }
}

/// The probability under which a new photo is shown as *not sure* instead of in a class.
#[component]
fn NotSureSetting() -> impl IntoView {
    let not_sure_below = use_preferences().not_sure_below;
    let on_change = move |ev: leptos::ev::Event| {
        if let Ok(percent) = event_target_value(&ev).trim().parse::<f64>()
            && percent.is_finite()
        {
            not_sure_below.set((percent / 100.0).clamp(0.0, 1.0));
        }
    };
    view! {
        <label class="not-sure-setting">
            "Show a new photo as “not sure” when your top class is under "
            <input
                type="number"
                min="0"
                max="100"
                step="5"
                data-testid="not-sure-input"
                prop:value=move || format!("{:.0}", not_sure_below.get() * 100.0)
                on:change=on_change
            />
            " %"
        </label>
    }
}

/// Has the browser save `bytes` as a file called `name`.
pub(super) fn download(bytes: &[u8], name: &str) {
    download_parts(&js_sys::Array::of1(&js_sys::Uint8Array::from(bytes)), name);
}

/// Has the browser save the concatenation of `parts` (`Uint8Array`s, `Blob`s) as a file called
/// `name`.
pub(super) fn download_parts(parts: &js_sys::Array, name: &str) {
    let Ok(blob) = Blob::new_with_u8_array_sequence(parts) else {
        return;
    };
    let Ok(url) = Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Ok(a) = document().create_element("a") {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    // The download starts after this handler returns.
    crate::photos::revoke_later(url);
}
