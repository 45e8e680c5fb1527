//! *Publish*: the trained classifier as a web app of its own, in its two forms, each saved with
//! a word on what it is for.

use afinar_protocol::Publication;
use leptos::prelude::*;

use super::head::download;
use super::state::{Training, use_training};
use crate::preferences::use_preferences;

/// The names the two forms are saved under.
const ZIP_FILE: &str = "afinar-classifier.zip";
const SINGLE_FILE: &str = "afinar-classifier.html";

impl Training {
    fn publish(self, not_sure_below: f64) {
        self.publishing.set(true);
        self.publication.set(None);
        self.with_link(|link| link.publish(not_sure_below));
    }

    /// An app published before is no longer the classifier in use (another head, another
    /// threshold): it is not offered, nor is one still being written.
    pub(super) fn forget_publication(self) {
        self.publication.set(None);
        self.publishing.set(false);
    }

    /// The worker wrote the app: both forms are offered (unless it was forgotten meanwhile).
    pub fn published(self, result: &Result<Publication, String>) {
        if !self.publishing.get_untracked() {
            return;
        }
        self.publishing.set(false);
        match result {
            Ok(publication) => self.publication.set(Some(publication.clone())),
            Err(message) => self.say(message),
        }
    }
}

fn megabytes(bytes: &[u8]) -> String {
    format!("{:.1} MB", bytes.len() as f64 / 1e6)
}

/// The *Publish* button and, once published, the two forms to save.
#[component]
pub fn PublishControls() -> impl IntoView {
    let training = use_training();
    let not_sure_below = use_preferences().not_sure_below;
    let publication = training.publication;
    // An app published with another threshold says other things.
    Effect::watch(
        move || not_sure_below.get(),
        move |_, _, _| training.forget_publication(),
        false,
    );
    let save = move |zip: bool| {
        publication.with_untracked(|p| {
            if let Some(p) = p {
                match zip {
                    true => download(&p.zip, ZIP_FILE),
                    false => download(&p.single_file, SINGLE_FILE),
                }
            }
        })
    };
    view! {
        <div class="publish">
            <button
                data-testid="publish-app"
                title="Your classifier as a web page of its own, for anyone to use offline"
                disabled=move || training.head.with(Option::is_none) || training.publishing.get()
                on:click=move |_| training.publish(not_sure_below.get_untracked())
            >
                {move || if training.publishing.get() { "Publishing…" } else { "Publish as a web app" }}
            </button>
            {move || publication.with(|p| p.as_ref().map(|p| {
                let (zip, single) = (megabytes(&p.zip), megabytes(&p.single_file));
                view! {
                    <div class="published" data-testid="published">
                        <p>
                            "Your classifier as a page of its own: it sorts photos into your classes "
                            "on the device of whoever opens it, with nothing sent anywhere."
                        </p>
                        <ul>
                            <li>
                                <button data-testid="save-published-zip" on:click=move |_| save(true)>
                                    {format!("Folder (.zip, {zip})")}
                                </button>
                                " to put on any static host: a folder of a web server, a Pages site. "
                                "It works offline after the first visit."
                            </li>
                            <li>
                                <button data-testid="save-published-html" on:click=move |_| save(false)>
                                    {format!("Single file (.html, {single})")}
                                </button>
                                " to open straight from the disk or send to someone; no server at all."
                            </li>
                        </ul>
                    </div>
                }
            }))}
        </div>
    }
}
