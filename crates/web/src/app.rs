//! The app: model status, backend choice, photo intake and results.
//!
//! It knows photos, labels and messages, never tensors: all model work happens in the model
//! worker (crate `afinar-worker`) behind [`link::WorkerLink`]. This crate does not depend on
//! Burn, so the page's wasm stays small and starts fast.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::Blob;

use crate::camera;
use crate::link::WorkerLink;
use crate::notice::Notice;
use crate::photos::{self, Photo, PhotoViews};
use crate::preferences::{self, Preferences};
use crate::training::{Training, TrainingPanel};
use afinar_protocol::{ModelInfo, ModelSource, Reply};
use afinar_vocabulary::Backend;
use afinar_vocabulary::limits::MAX_PHOTO_WORKERS;

/// Mounts the app on the page's `<body>`.
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// Registers the offline service worker. Called once the model has loaded (or failed to), so
/// that its install, which fetches the app's files again, does not compete with the start-up;
/// registering again is a no-op.
fn register_service_worker() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let navigator = window.navigator();
    // Absent in insecure contexts (plain http on another host); the app then works online only.
    if js_sys::Reflect::has(&navigator, &"serviceWorker".into()).unwrap_or(false) {
        let _ = navigator.service_worker().register("./sw.js");
    }
}

fn browser_has_webgpu() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"gpu".into()).ok())
        .is_some_and(|gpu| !gpu.is_undefined())
}

/// The backend the user chose, remembered by this browser for the next visits: a preference,
/// so `localStorage` (read before the worker starts), and losing it costs nothing.
mod backend_choice {
    use afinar_vocabulary::Backend;

    const KEY: &str = "afinar.backend";

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    pub fn load() -> Option<Backend> {
        match storage()?.get_item(KEY).ok()??.as_str() {
            "webgpu" => Some(Backend::WebGpu),
            "cpu" => Some(Backend::Cpu),
            _ => None,
        }
    }

    pub fn save(backend: Backend) {
        let value = match backend {
            Backend::WebGpu => "webgpu",
            Backend::Cpu => "cpu",
        };
        // A storage that refuses (full, private mode) leaves the choice to this visit.
        if let Some(storage) = storage() {
            let _ = storage.set_item(KEY, value);
        }
    }
}

/// What the page shows about the model.
#[derive(Clone, Debug, PartialEq)]
enum ModelView {
    Loading { loaded: u64, total: Option<u64> },
    Ready(ModelInfo),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
struct BackendView {
    backend: Backend,
    adapter: String,
}

#[component]
fn App() -> impl IntoView {
    let model = RwSignal::new(ModelView::Loading {
        loaded: 0,
        total: None,
    });
    let activity = RwSignal::new(String::new());
    let backend = RwSignal::new(None::<BackendView>);
    let notice = RwSignal::new(None::<String>);
    // The notice last set because the backend asked for was not the one in use.
    let fallback_notice = StoredValue::new(None::<String>);
    let photos = RwSignal::new(Vec::<Photo>::new());
    let webgpu_offered = browser_has_webgpu();
    let prefs = Preferences::provide();
    let training = Training::provide();
    let live_frames = camera::LiveFrames(RwSignal::new(None));
    provide_context(live_frames);

    // Every reply to its owner, in one exhaustive match: a new kind of reply does not compile
    // until it has one.
    let handle_reply = move |reply: Reply| match reply {
        Reply::Started => {}
        Reply::Status(text) => activity.set(text),
        Reply::Download { loaded, total } => {
            if !matches!(model.get_untracked(), ModelView::Ready(_)) {
                model.set(ModelView::Loading { loaded, total });
            }
        }
        Reply::ModelReady(info) => {
            register_service_worker();
            training.model_ready(&info);
            activity.set(String::new());
            if let ModelSource::File(name) = &info.source {
                notice.set(Some(format!("Now using your model “{name}”.")));
            }
            model.set(ModelView::Ready(info));
        }
        Reply::ModelFailed(message) => {
            register_service_worker();
            training.model_not_loaded();
            activity.set(String::new());
            model.set(ModelView::Failed(message));
        }
        Reply::WrongBuild => {
            activity.set(String::new());
            model.set(ModelView::Failed(
                "This page and its model worker come from two versions of Afinar: an update \
                 arrived while the page was loading. Reload the page to use the new one."
                    .into(),
            ));
        }
        Reply::ModelRefused { name, message } => {
            training.model_not_loaded();
            activity.set(String::new());
            notice.set(Some(format!(
                "“{name}” was not loaded: {message}. The current model stays."
            )));
        }
        Reply::BackendReady {
            backend: chosen,
            adapter,
            fallback,
        } => {
            match fallback {
                Some(reason) => {
                    let message = format!("{reason}; running on the CPU instead.");
                    fallback_notice.set_value(Some(message.clone()));
                    notice.set(Some(message));
                }
                // The backend asked for is in use: a notice saying why it was not is stale.
                None => {
                    if let Some(stale) = fallback_notice.get_value()
                        && notice.with_untracked(|n| n.as_ref() == Some(&stale))
                    {
                        notice.set(None);
                    }
                    fallback_notice.set_value(None);
                }
            }
            backend.set(Some(BackendView {
                backend: chosen,
                adapter,
            }));
        }
        Reply::Crashed(reason) => {
            training.worker_crashed();
            notice.set(Some(format!(
                "The model stopped unexpectedly ({reason}); it was restarted on the CPU. \
                 Your photos are kept."
            )));
        }
        Reply::BadRequest(reason) => notice.set(Some(format!(
            "The model worker could not read the page's request ({reason}). The page and the \
             worker seem to be from different versions: reload the page."
        ))),
        Reply::Classified { id, result } => photos::settle(photos, id, result),
        Reply::FrameClassified { id, result } => live_frames.0.set(Some((id, result))),
        Reply::Prepared { id, rows, result } => training.prepared(id, rows, result),
        Reply::Epoch(epoch) => training.epoch_done(epoch),
        Reply::Trained(result) => training.run_ended(result),
        Reply::HeadReady(info) => training.head_ready(&info),
        Reply::HeadRefused(message) => training.head_refused(&message),
        Reply::HeadSetAside(reason) => training.head_set_aside(&reason),
        Reply::ModelExported(result) => training.model_exported(&result),
        Reply::Published(result) => training.published(&result),
        Reply::LabelsChecked(result) => training.labels_answered(result),
        Reply::StageFailed(_) | Reply::HelperMemory(_) => {} // between training workers
        Reply::ProjectProgress(result) => training.project_progress(result),
        Reply::ProjectBytes(result) => training.project_bytes(result),
        Reply::ProjectOpened(result) => training.project_checked(result),
        Reply::ProjectPhotos(result) => training.project_photos(result),
    };

    let on_reply = move |reply: Reply| {
        // Prepared photos' states are set a batch at a time: before anything else the worker
        // says, the batch so far, as it came before.
        if !matches!(reply, Reply::Prepared { .. }) {
            training.settle_prepared();
        }
        handle_reply(reply)
    };

    let link = WorkerLink::spawn(backend_choice::load(), on_reply);
    link.load_default_model(&afinar_vocabulary::default_model_url());
    training.start(link.clone());
    let link = StoredValue::new_local(link);

    // The workers that prepare photos, as the person chose or as this device allows.
    let workers = prefs.workers;
    Effect::new(move |_| {
        let count = preferences::photo_workers(workers.get());
        link.with_value(|link| link.use_workers(count));
    });

    let next_id = StoredValue::new(0u32);
    let add_photos = Callback::new(move |files: Vec<(String, Blob)>| {
        let mut added = Vec::with_capacity(files.len());
        for (name, blob) in files {
            let id = next_id.get_value();
            next_id.set_value(id + 1);
            added.push((Photo::new(id, name), blob));
        }
        photos.update(|list| list.extend(added.iter().map(|(p, _)| p.clone())));
        link.with_value(|link| {
            for (photo, blob) in added {
                link.classify(photo.id, blob);
            }
        });
    });
    let classify_frame = Callback::new(move |(id, frame): (u32, Blob)| {
        link.with_value(|link| link.classify_frame(id, frame));
    });
    let set_backend = Callback::new(move |choice: Backend| {
        backend_choice::save(choice);
        link.with_value(|link| link.use_backend(choice));
    });
    let load_model = Callback::new(move |(name, blob): (String, Blob)| {
        activity.set(format!("Checking “{name}”…"));
        training.model_requested();
        link.with_value(|link| link.load_model_file(name, blob));
    });

    listen_for_drops_and_pastes(add_photos);

    view! {
        <header class="top">
            <div class="brand">
                <h1>"Afinar"</h1>
                <p class="tagline">"Image recognition that runs on your machine. Nothing is uploaded."</p>
            </div>
            <ModelStatus model activity />
            <BackendControl backend webgpu_offered set_backend />
            <WorkersControl workers />
            <ModelFilePicker load_model />
        </header>
        <Notice message=notice />
        <main>
            <PhotoIntake photos add_photos classify_frame />
            <PhotoViews photos />
            <TrainingPanel />
        </main>
    }
}

/// Files dropped anywhere on the page or pasted are classified too.
fn listen_for_drops_and_pastes(add_photos: Callback<Vec<(String, Blob)>>) {
    let dragging = |on: bool| {
        if let Some(body) = document().body() {
            let _ = body.class_list().toggle_with_force("dragging", on);
        }
    };
    window_event_listener(leptos::ev::dragover, move |ev| {
        ev.prevent_default();
        dragging(true);
    });
    window_event_listener(leptos::ev::dragleave, move |ev| {
        // Leaving for a child element fires dragleave too; only the window edge counts.
        if ev.related_target().is_none() {
            dragging(false);
        }
    });
    window_event_listener(leptos::ev::drop, move |ev| {
        ev.prevent_default();
        dragging(false);
        if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
            add_photos.run(photos::named_files(&files, "dropped photo"));
        }
    });
    window_event_listener(leptos::ev::paste, move |ev| {
        if let Some(files) = ev.clipboard_data().and_then(|d| d.files())
            && files.length() > 0
        {
            ev.prevent_default();
            add_photos.run(photos::named_files(&files, "pasted image"));
        }
    });
}

#[component]
fn ModelStatus(model: RwSignal<ModelView>, activity: RwSignal<String>) -> impl IntoView {
    view! {
        <div class="model-status" role="status" aria-live="polite">
            {move || match model.get() {
                ModelView::Loading { loaded, total } => {
                    let text = match total {
                        Some(total) => format!("Downloading the model: {} of {}", megabytes(loaded), megabytes(total)),
                        None if loaded > 0 => format!("Downloading the model: {}", megabytes(loaded)),
                        None => "Loading the model…".to_string(),
                    };
                    view! {
                        <div class="loading">
                            <span class="spinner" aria-hidden="true"></span>
                            <span>{text}</span>
                            <progress
                                data-testid="model-progress"
                                max=move || total.unwrap_or(1).max(1) as f64
                                value=move || if total.is_some() { loaded as f64 } else { 0.0 }
                            ></progress>
                        </div>
                    }
                        .into_any()
                }
                ModelView::Ready(info) => {
                    let origin = match &info.source {
                        ModelSource::Network => "downloaded".to_string(),
                        ModelSource::Cache => "from this browser's cache".to_string(),
                        ModelSource::File(name) => format!("from {name}"),
                    };
                    view! {
                        <p
                            class="ready"
                            data-testid="model-ready"
                            title=format!("sha256 {}; runs in {}", info.sha256, info.arithmetic)
                        >
                            "✓ Model ready: MobileNetV2, "
                            {info.num_classes}
                            " classes, "
                            {megabytes(info.size_bytes)}
                            " "
                            {origin}
                            ", ready in "
                            {format!("{:.1} s", info.load_ms / 1000.0)}
                        </p>
                    }
                        .into_any()
                }
                ModelView::Failed(message) => {
                    view! {
                        <p class="failed" data-testid="model-error" role="alert">
                            {message}
                            " "
                            <button data-testid="reload" on:click=|_| {
                                let _ = window().location().reload();
                            }>"Reload the page"</button>
                        </p>
                    }
                        .into_any()
                }
            }}
            <p class="activity">{move || activity.get()}</p>
        </div>
    }
}

#[component]
fn BackendControl(
    backend: RwSignal<Option<BackendView>>,
    webgpu_offered: bool,
    set_backend: Callback<Backend>,
) -> impl IntoView {
    let on_change = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        set_backend.run(if value == "webgpu" {
            Backend::WebGpu
        } else {
            Backend::Cpu
        });
    };
    let selected = move || match backend.get().map(|b| b.backend) {
        Some(Backend::WebGpu) => "webgpu",
        _ => "cpu",
    };
    view! {
        <div class="backend">
            <label for="backend-select">"Compute on"</label>
            <select id="backend-select" data-testid="backend-select" on:change=on_change prop:value=selected>
                <option value="webgpu" disabled=!webgpu_offered>
                    {if webgpu_offered { "WebGPU (graphics card)" } else { "WebGPU (not offered by this browser)" }}
                </option>
                <option value="cpu">"CPU"</option>
            </select>
            <span class="backend-name" data-testid="backend">
                {move || match backend.get() {
                    Some(b) if b.adapter.is_empty() => format!("Running on {}", b.backend.name()),
                    Some(b) => format!("Running on {} · {}", b.backend.name(), b.adapter),
                    None => "Choosing a backend…".to_string(),
                }}
            </span>
        </div>
    }
}

/// How many workers prepare training photos at once: one per core (within the device's memory)
/// unless the person picks a number.
#[component]
fn WorkersControl(workers: RwSignal<Option<u32>>) -> impl IntoView {
    let automatic = preferences::automatic_workers();
    let on_change = move |ev: leptos::ev::Event| {
        workers.set(event_target_value(&ev).parse::<u32>().ok());
    };
    let selected = move || workers.get().map_or("auto".to_string(), |n| n.to_string());
    let counts = 1..=MAX_PHOTO_WORKERS;
    view! {
        <div class="workers">
            <label for="workers-select">"Workers preparing photos"</label>
            <select id="workers-select" data-testid="workers-select" on:change=on_change prop:value=selected>
                <option value="auto">{format!("Automatic ({automatic})")}</option>
                {counts.map(|n| view! { <option value=n.to_string()>{n.to_string()}</option> }).collect_view()}
            </select>
        </div>
    }
}

#[component]
fn ModelFilePicker(load_model: Callback<(String, Blob)>) -> impl IntoView {
    let on_change = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            load_model.run((file.name(), file.unchecked_into()));
        }
        input.set_value("");
    };
    view! {
        <label class="button subtle" title="Another MobileNetV2 1.0/224 .tflite (uint8, int8 or float32)">
            "Use your own model…"
            <input type="file" accept=".tflite" class="visually-hidden" data-testid="model-input" on:change=on_change />
        </label>
    }
}

/// Where photos come in: picker, camera, and the hint about dropping and pasting.
#[component]
fn PhotoIntake(
    photos: RwSignal<Vec<Photo>>,
    add_photos: Callback<Vec<(String, Blob)>>,
    classify_frame: Callback<(u32, Blob)>,
) -> impl IntoView {
    let on_change = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(files) = input.files() {
            add_photos.run(photos::named_files(&files, "photo"));
        }
        // Picking the same files again must fire `change` again.
        input.set_value("");
    };
    let empty = move || photos.with(Vec::is_empty);
    view! {
        <section class="intake" class:empty=empty aria-label="Add photos">
            <Show when=empty>
                <div class="empty-state">
                    <h2>"Drop photos here to see what the model recognises"</h2>
                    <p>
                        "Afinar runs MobileNetV2 (1,000 ImageNet classes) in this page. Choose photos, "
                        "drag them onto the page, or paste an image. They never leave your machine."
                    </p>
                </div>
            </Show>
            <div class="intake-actions">
                <label class="button primary">
                    "Choose photos…"
                    <input
                        type="file"
                        accept="image/*"
                        multiple
                        class="visually-hidden"
                        data-testid="photo-input"
                        on:change=on_change
                    />
                </label>
                <camera::CameraButton add_photos classify_frame />
                <span class="hint">"or drop / paste images anywhere"</span>
            </div>
        </section>
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}
