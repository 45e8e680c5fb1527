//! Photos and their results: the cards view (top-5 with bars) and the gallery grid (top-1).

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, FileList, Url};

use crate::preferences::use_preferences;
use afinar_protocol::Classification;
use afinar_vocabulary::{Backend, Prediction};

/// One photo the user added.
#[derive(Clone, Debug, PartialEq)]
pub struct Photo {
    pub id: u32,
    pub name: String,
    pub state: RwSignal<PhotoState>,
}

impl Photo {
    pub fn new(id: u32, name: String) -> Self {
        Self {
            id,
            name,
            state: RwSignal::new(PhotoState::Waiting),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum PhotoState {
    Waiting,
    Done {
        top: Vec<Prediction>,
        model_ms: f64,
        decode_ms: f64,
        backend: Backend,
        /// Object URL of the 224×224 crop the model saw.
        thumbnail: Option<String>,
        /// The user's trained head's top classes, when there is one.
        custom: Option<Vec<Prediction>>,
    },
    Failed(String),
}

/// The files of a picker, drop or paste, with a name for each (pasted images have none).
pub fn named_files(files: &FileList, fallback: &str) -> Vec<(String, Blob)> {
    (0..files.length())
        .filter_map(|i| files.get(i))
        .map(|file| {
            let name = file.name();
            let name = if name.is_empty() {
                fallback.to_string()
            } else {
                name
            };
            (name, file.unchecked_into())
        })
        .collect()
}

/// Records the worker's answer for photo `id`.
pub fn settle(photos: RwSignal<Vec<Photo>>, id: u32, result: Result<Classification, String>) {
    // Ids grow with each photo added, so the list is sorted by id.
    let state = photos.with_untracked(|list| {
        list.binary_search_by_key(&id, |p| p.id)
            .ok()
            .map(|i| list[i].state)
    });
    let Some(state) = state else { return };
    state.set(match result {
        Ok(c) => PhotoState::Done {
            thumbnail: jpeg_url(&c.thumbnail_jpeg),
            top: c.top,
            model_ms: c.model_ms,
            decode_ms: c.decode_ms,
            backend: c.backend,
            custom: c.custom,
        },
        Err(message) => PhotoState::Failed(message),
    });
}

/// An object URL for JPEG bytes (`None` when there are none).
pub fn jpeg_url(jpeg: &[u8]) -> Option<String> {
    if jpeg.is_empty() {
        return None;
    }
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(jpeg));
    let options = BlobPropertyBag::new();
    options.set_type("image/jpeg");
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()?;
    Url::create_object_url_with_blob(&blob).ok()
}

/// Revokes an object URL a little later: an `<img>` or a download that was just given it may
/// not have loaded it yet (revoked at once, the browser reports a failed load).
pub fn revoke_later(url: String) {
    let revoke = wasm_bindgen::closure::Closure::once_into_js(move || {
        let _ = Url::revoke_object_url(&url);
    });
    if let Some(window) = web_sys::window() {
        let _ = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 10_000);
    }
}

fn forget_thumbnails(list: &[Photo]) {
    for photo in list {
        if let PhotoState::Done {
            thumbnail: Some(url),
            ..
        } = photo.state.get_untracked()
        {
            let _ = Url::revoke_object_url(&url);
        }
    }
}

fn percent(prob: f32) -> String {
    format!("{:.1} %", prob * 100.0)
}

/// Progress line, view switch, and the photos in the chosen view.
#[component]
pub fn PhotoViews(photos: RwSignal<Vec<Photo>>) -> impl IntoView {
    let gallery = use_preferences().gallery;
    let counts = move || {
        photos.with(|list| {
            let waiting = list
                .iter()
                .filter(|p| p.state.with(|s| matches!(s, PhotoState::Waiting)))
                .count();
            (list.len(), waiting)
        })
    };
    let clear = move |_| {
        photos.update(|list| {
            forget_thumbnails(list);
            list.clear();
        });
    };
    view! {
        <Show when=move || { counts().0 > 0 }>
            <div class="toolbar">
                <p class="progress-line" role="status" aria-live="polite" data-testid="progress">
                    {move || {
                        let (total, waiting) = counts();
                        if waiting > 0 {
                            view! {
                                <span class="spinner" aria-hidden="true"></span>
                                <span>{format!("Classifying: {} of {total} done", total - waiting)}</span>
                                <progress max=total as f64 value=(total - waiting) as f64></progress>
                            }
                                .into_any()
                        } else {
                            view! { <span>{format!("{total} photos classified")}</span> }.into_any()
                        }
                    }}
                </p>
                <div class="view-switch" role="group" aria-label="View">
                    <button
                        aria-pressed=move || (!gallery.get()).to_string()
                        on:click=move |_| gallery.set(false)
                    >
                        "Details"
                    </button>
                    <button
                        data-testid="gallery-button"
                        aria-pressed=move || gallery.get().to_string()
                        on:click=move |_| gallery.set(true)
                    >
                        "Gallery"
                    </button>
                </div>
                <button class="subtle" on:click=clear>"Clear"</button>
            </div>
        </Show>
        <section
            class="photos"
            class:gallery=move || gallery.get()
            aria-label="Results"
        >
            // Newest first: the photo just added is the one the user looks for.
            <For
                each=move || photos.get().into_iter().rev()
                key=|photo| photo.id
                children=move |photo| {
                    view! { <PhotoCard photo gallery /> }
                }
            />
        </section>
    }
}

/// One photo: a card with the top-5 (details view) or a tile with the top-1 (gallery).
#[component]
fn PhotoCard(photo: Photo, gallery: RwSignal<bool>) -> impl IntoView {
    let not_sure_below = use_preferences().not_sure_below;
    let name = photo.name.clone();
    let state = photo.state;
    view! {
        <article
            class="card"
            class:waiting=move || state.with(|s| matches!(s, PhotoState::Waiting))
            class:failed=move || state.with(|s| matches!(s, PhotoState::Failed(_)))
            data-testid="result"
            data-name=photo.name
        >
            {move || match state.get() {
                PhotoState::Waiting => {
                    view! {
                        <div class="thumb placeholder" aria-hidden="true">
                            <span class="spinner"></span>
                        </div>
                        <div class="body">
                            <h3 class="name">{name.clone()}</h3>
                            <p class="muted">"Waiting for the model…"</p>
                        </div>
                    }
                        .into_any()
                }
                PhotoState::Failed(message) => {
                    view! {
                        <div class="thumb placeholder" aria-hidden="true">"!"</div>
                        <div class="body">
                            <h3 class="name">{name.clone()}</h3>
                            <p class="error" data-testid="error" role="alert">{message}</p>
                        </div>
                    }
                        .into_any()
                }
                PhotoState::Done { top, model_ms, decode_ms, backend, thumbnail, custom } => {
                    let best = top.first().cloned();
                    let (label, prob) = best
                        .map(|p| (p.label, p.prob))
                        .unwrap_or_else(|| ("—".to_string(), 0.0));
                    let thumb = match thumbnail {
                        Some(url) => view! {
                            <img class="thumb" src=url alt=format!("{name}, as the model saw it") loading="lazy" decoding="async" />
                        }
                            .into_any(),
                        None => view! { <div class="thumb placeholder"></div> }.into_any(),
                    };
                    let gallery = move || gallery.get();
                    view! {
                        {thumb}
                        <div class="body">
                            <h3 class="top1">
                                <span data-testid="top-label">{label}</span>
                                " "
                                <span class="prob" data-testid="top-prob" data-prob=prob.to_string()>
                                    {percent(prob)}
                                </span>
                            </h3>
                            {custom.and_then(|c| c.into_iter().next()).map(|best| {
                                let sure = move || f64::from(best.prob) >= not_sure_below.get();
                                let label = best.label.clone();
                                let (class, prob) = (best.label.clone(), best.prob.to_string());
                                view! {
                                    <p class="custom" class:not-sure=move || !sure() data-testid="custom-top" data-class=class data-prob=prob>
                                        "Your classes: "
                                        <strong data-testid="custom-label">
                                            {move || if sure() { label.clone() } else { "not sure".to_string() }}
                                        </strong>
                                        " "
                                        <span class="prob">
                                            {move || if sure() {
                                                percent(best.prob)
                                            } else {
                                                format!("(closest: {} {})", best.label, percent(best.prob))
                                            }}
                                        </span>
                                    </p>
                                }
                            })}
                            <p class="name muted">{name.clone()}</p>
                            <Show when=move || !gallery()>
                                <ol class="top5" aria-label="Top 5">
                                    {top
                                        .iter()
                                        .map(|p| {
                                            view! {
                                                <li>
                                                    <span class="label">{p.label.clone()}</span>
                                                    <span class="bar" aria-hidden="true">
                                                        <span style:width=format!("{:.1}%", p.prob * 100.0)></span>
                                                    </span>
                                                    <span class="value">{percent(p.prob)}</span>
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ol>
                                <p class="timing muted" data-testid="timing">
                                    {format!(
                                        "{} · model {:.0} ms · decoding {:.0} ms",
                                        backend.name(),
                                        model_ms,
                                        decode_ms,
                                    )}
                                </p>
                            </Show>
                        </div>
                    }
                        .into_any()
                }
            }}
        </article>
    }
}
