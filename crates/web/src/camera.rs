//! Taking a photo with the device's camera (`getUserMedia`), shown only where the browser
//! offers cameras.

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, HtmlCanvasElement, MediaStream, MediaStreamConstraints};

use crate::link::describe;

fn media_devices() -> Option<web_sys::MediaDevices> {
    let navigator = web_sys::window()?.navigator();
    if !js_sys::Reflect::has(&navigator, &"mediaDevices".into()).unwrap_or(false) {
        return None;
    }
    navigator.media_devices().ok()
}

fn stop(stream: &MediaStream) {
    for track in stream.get_tracks().iter() {
        if let Ok(track) = track.dyn_into::<web_sys::MediaStreamTrack>() {
            track.stop();
        }
    }
}

#[component]
pub fn CameraButton(add_photos: Callback<Vec<(String, Blob)>>) -> impl IntoView {
    let offered = media_devices().is_some();
    let open = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let stream = StoredValue::new_local(None::<MediaStream>);
    let video = NodeRef::<html::Video>::new();

    let close = move || {
        stream.update_value(|s| {
            if let Some(s) = s.take() {
                stop(&s);
            }
        });
        open.set(false);
    };

    let start = move |_| {
        error.set(None);
        open.set(true);
        wasm_bindgen_futures::spawn_local(async move {
            let Some(devices) = media_devices() else {
                return;
            };
            let constraints = MediaStreamConstraints::new();
            // Prefer the back camera on phones; any camera elsewhere.
            let video_constraints = js_sys::Object::new();
            let _ = js_sys::Reflect::set(
                &video_constraints,
                &"facingMode".into(),
                &"environment".into(),
            );
            constraints.set_video(&video_constraints);
            let request = match devices.get_user_media_with_constraints(&constraints) {
                Ok(promise) => JsFuture::from(promise).await,
                Err(e) => Err(e),
            };
            match request.and_then(|s| s.dyn_into::<MediaStream>()) {
                Ok(media) => {
                    if let Some(video) = video.get() {
                        video.set_src_object(Some(&media));
                        let _ = video.play();
                    }
                    stream.set_value(Some(media));
                }
                Err(e) => error.set(Some(format!(
                    "The camera could not be opened: {}",
                    describe(&e)
                ))),
            }
        });
    };

    let snap = move |_| {
        let Some(video) = video.get() else { return };
        let (width, height) = (video.video_width(), video.video_height());
        if width == 0 || height == 0 {
            error.set(Some("The camera has not started yet.".into()));
            return;
        }
        let Some(canvas) = document()
            .create_element("canvas")
            .ok()
            .and_then(|c| c.dyn_into::<HtmlCanvasElement>().ok())
        else {
            return;
        };
        canvas.set_width(width);
        canvas.set_height(height);
        let context = canvas
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok());
        let Some(context) = context else { return };
        if context
            .draw_image_with_html_video_element(&video, 0.0, 0.0)
            .is_err()
        {
            return;
        }
        let taken = js_sys::Date::new_0().to_locale_time_string("en-GB");
        let callback = Closure::once_into_js(move |blob: JsValue| {
            if let Ok(blob) = blob.dyn_into::<Blob>() {
                add_photos.run(vec![(format!("camera {taken}"), blob)]);
            }
        });
        let _ = canvas.to_blob_with_type_and_encoder_options(
            callback.unchecked_ref(),
            "image/jpeg",
            &JsValue::from_f64(0.92),
        );
    };

    on_cleanup(close);

    view! {
        <Show when=move || offered>
            <button class="button" data-testid="camera-button" on:click=start>"Take a photo"</button>
        </Show>
        <Show when=move || open.get()>
            <div class="camera" role="dialog" aria-label="Camera">
                <video node_ref=video autoplay playsinline muted></video>
                <p class="error">{move || error.get().unwrap_or_default()}</p>
                <div class="camera-actions">
                    <button class="button primary" on:click=snap>"Capture"</button>
                    <button class="button" on:click=move |_| close()>"Close"</button>
                </div>
            </div>
        </Show>
    }
}
