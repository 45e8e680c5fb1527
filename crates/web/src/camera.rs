//! The device's camera (`getUserMedia`), shown only where the browser offers cameras: a live
//! preview classified frame after frame (ImageNet's top-5, and the user's classes once a head
//! exists) with the frames per second, a still taken as a photo, and *hold to record*, which
//! adds frames to one of the user's classes at a steady rate while held.
//!
//! One frame is with the worker at a time, so the preview never queues work behind itself.
//! The camera stops when the tab is hidden, and a refused camera gets a message.

use std::collections::VecDeque;

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, HtmlCanvasElement, HtmlVideoElement, MediaStream, MediaStreamConstraints};

use crate::link::describe;
use crate::training::Training;
use afinar_protocol::Classification;
use afinar_vocabulary::Prediction;

/// Side of the centre square a live frame is sent as: the model's input size, so the worker's
/// crop and resize have nothing to do.
const FRAME_SIDE: u32 = 224;

/// Frames recorded per second while *hold to record* is held.
const RECORD_PER_SECOND: i32 = 4;

/// Frames the frame rate is averaged over.
const FPS_WINDOW: usize = 10;

/// The worker's answers to live frames, routed here by the app.
#[derive(Clone, Copy)]
pub struct LiveFrames(pub RwSignal<Option<(u32, Result<Classification, String>)>>);

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

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn tab_hidden() -> bool {
    js_sys::Reflect::get(&document(), &"hidden".into())
        .ok()
        .and_then(|h| h.as_bool())
        .unwrap_or(false)
}

/// What to tell the user when the camera does not open.
fn camera_refused(e: &JsValue) -> String {
    let name = js_sys::Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    match name.as_str() {
        "NotAllowedError" | "SecurityError" => "Camera access was refused. To use the camera, \
             allow it for this page in the browser's site settings, then open it again."
            .into(),
        "NotFoundError" | "OverconstrainedError" => "No camera was found on this device.".into(),
        "NotReadableError" => {
            "The camera is in use by another program; close it there and try again.".into()
        }
        _ => format!("The camera could not be opened: {}", describe(e)),
    }
}

/// The video's current frame as a JPEG, passed to `then`: the whole frame, or (`square`) its
/// centre square at `square`×`square` pixels. Nothing when the camera has no frame yet.
fn grab(video: &HtmlVideoElement, square: Option<u32>, then: impl FnOnce(Blob) + 'static) -> bool {
    let (width, height) = (video.video_width(), video.video_height());
    if width == 0 || height == 0 {
        return false;
    }
    let Some(canvas) = document()
        .create_element("canvas")
        .ok()
        .and_then(|c| c.dyn_into::<HtmlCanvasElement>().ok())
    else {
        return false;
    };
    let context = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok());
    let Some(context) = context else {
        return false;
    };
    let drawn = match square {
        Some(side) => {
            canvas.set_width(side);
            canvas.set_height(side);
            let s = width.min(height) as f64;
            let (sx, sy) = ((width as f64 - s) / 2.0, (height as f64 - s) / 2.0);
            context.draw_image_with_html_video_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
                video,
                sx,
                sy,
                s,
                s,
                0.0,
                0.0,
                side as f64,
                side as f64,
            )
        }
        None => {
            canvas.set_width(width);
            canvas.set_height(height);
            context.draw_image_with_html_video_element(video, 0.0, 0.0)
        }
    };
    if drawn.is_err() {
        return false;
    }
    let callback = Closure::once_into_js(move |blob: JsValue| {
        if let Ok(blob) = blob.dyn_into::<Blob>() {
            then(blob);
        }
    });
    canvas
        .to_blob_with_type_and_encoder_options(
            callback.unchecked_ref(),
            "image/jpeg",
            &JsValue::from_f64(0.92),
        )
        .is_ok()
}

#[component]
pub fn CameraButton(
    add_photos: Callback<Vec<(String, Blob)>>,
    classify_frame: Callback<(u32, Blob)>,
) -> impl IntoView {
    let offered = media_devices().is_some();
    let training = expect_context::<Training>();
    let live = expect_context::<LiveFrames>().0;
    let open = RwSignal::new(false);
    let message = RwSignal::new(None::<String>);
    let stream = StoredValue::new_local(None::<MediaStream>);
    let video = NodeRef::<html::Video>::new();
    // The live preview: the last frame's answer, the frame with the worker, recent answer times.
    let top = RwSignal::new(Vec::<Prediction>::new());
    let custom = RwSignal::new(None::<Vec<Prediction>>);
    let fps = RwSignal::new(None::<f64>);
    let next_frame = StoredValue::new(0u32);
    let in_flight = StoredValue::new(None::<u32>);
    let answered = StoredValue::new(VecDeque::<f64>::new());
    // Hold to record: the class, the timer while held, and how many frames it added.
    let record_class = RwSignal::new(None::<u32>);
    let recording = StoredValue::new(None::<i32>);
    let recorded = RwSignal::new(0usize);

    let send_frame = move || {
        if !open.get_untracked() || in_flight.get_value().is_some() {
            return;
        }
        let Some(video) = video.get_untracked() else {
            return;
        };
        let id = next_frame.get_value();
        next_frame.set_value(id.wrapping_add(1));
        if grab(&video, Some(FRAME_SIDE), move |blob| {
            classify_frame.run((id, blob))
        }) {
            in_flight.set_value(Some(id));
        }
    };

    Effect::new(move |_| {
        let Some((id, result)) = live.get() else {
            return;
        };
        if in_flight.get_value() != Some(id) {
            return;
        }
        in_flight.set_value(None);
        match result {
            Ok(c) => {
                top.set(c.top);
                custom.set(c.custom);
                answered.update_value(|times| {
                    times.push_back(now_ms());
                    if times.len() > FPS_WINDOW {
                        times.pop_front();
                    }
                    if let (Some(first), Some(last)) = (times.front(), times.back())
                        && times.len() > 1
                        && last > first
                    {
                        fps.set(Some((times.len() - 1) as f64 * 1000.0 / (last - first)));
                    }
                });
            }
            Err(e) => message.set(Some(format!("A camera frame could not be classified: {e}"))),
        }
        // The next frame once the browser has drawn this answer.
        let next = Closure::once_into_js(send_frame);
        if let Some(window) = web_sys::window() {
            let _ = window.request_animation_frame(next.unchecked_ref());
        }
    });

    let stop_recording = move || {
        if let (Some(handle), Some(window)) = (recording.get_value(), web_sys::window()) {
            window.clear_interval_with_handle(handle);
        }
        recording.set_value(None);
    };

    let close = move || {
        stop_recording();
        stream.update_value(|s| {
            if let Some(s) = s.take() {
                stop(&s);
            }
        });
        open.set(false);
        in_flight.set_value(None);
        answered.update_value(VecDeque::clear);
        fps.set(None);
    };

    let start = move |_| {
        message.set(None);
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
                Ok(media) if open.get_untracked() => {
                    if let Some(video) = video.get_untracked() {
                        video.set_src_object(Some(&media));
                        let _ = video.play();
                    }
                    stream.set_value(Some(media));
                }
                // Closed while the browser asked: let the camera go at once.
                Ok(media) => stop(&media),
                Err(e) => {
                    close();
                    message.set(Some(camera_refused(&e)));
                }
            }
        });
    };

    let snap = move |_| {
        let Some(video) = video.get_untracked() else {
            return;
        };
        let taken = js_sys::Date::new_0().to_locale_time_string("en-GB");
        let grabbed = grab(&video, None, move |blob| {
            add_photos.run(vec![(format!("camera {taken}"), blob)]);
        });
        if !grabbed {
            message.set(Some("The camera has not started yet.".into()));
        }
    };

    let record_frame = move || {
        let (Some(video), Some(class_id)) = (video.get_untracked(), record_class.get_untracked())
        else {
            return;
        };
        let n = recorded.get_untracked() + 1;
        let name = format!("camera frame {}.jpg", now_ms() as u64);
        if grab(&video, None, move |blob| {
            training.add_photo_to_class(class_id, name, blob)
        }) {
            recorded.set(n);
        }
    };
    let start_recording = move || {
        if recording.get_value().is_some() || record_class.get_untracked().is_none() {
            return;
        }
        record_frame();
        let tick = Closure::<dyn Fn()>::new(record_frame).into_js_value();
        let handle = web_sys::window().and_then(|w| {
            w.set_interval_with_callback_and_timeout_and_arguments_0(
                tick.unchecked_ref(),
                1000 / RECORD_PER_SECOND,
            )
            .ok()
        });
        recording.set_value(handle);
    };

    // The first of the user's classes until one is chosen; none once it is removed.
    Effect::new(move |_| {
        let classes = training.class_options();
        let chosen = record_class.get();
        let first = classes.first().map(|(id, _)| *id);
        // Set only when it changes: setting it runs this effect again.
        if chosen.is_none_or(|id| !classes.iter().any(|(c, _)| *c == id)) && chosen != first {
            record_class.set(first);
        }
    });

    let hidden = window_event_listener_untyped("visibilitychange", move |_| {
        if tab_hidden() && open.get_untracked() {
            close();
            message.set(Some(
                "The camera was stopped because the tab was hidden; open it again to go on.".into(),
            ));
        }
    });
    on_cleanup(move || {
        hidden.remove();
        close();
    });

    let fps_text = move || match fps.get() {
        Some(f) => format!("{f:.1} frames per second"),
        None => "Starting…".to_string(),
    };
    let custom_text = move || {
        custom
            .get()
            .and_then(|c| c.into_iter().next())
            .map(|p| format!("Your classes: {} {:.0} %", p.label, p.prob * 100.0))
    };

    view! {
        <Show when=move || offered>
            <button class="button" data-testid="camera-button" on:click=start>"Camera"</button>
        </Show>
        <p class="camera-message" role="status" data-testid="camera-message">{move || message.get().unwrap_or_default()}</p>
        <Show when=move || open.get()>
            <div class="camera" role="dialog" aria-label="Camera">
                <video node_ref=video autoplay playsinline muted on:playing=move |_| send_frame()></video>
                <div class="live" aria-live="off" data-testid="live">
                    <p class="muted" data-testid="live-fps">{fps_text}</p>
                    <p class="custom" data-testid="live-custom">{custom_text}</p>
                    <ol class="top5" aria-label="Live top 5">
                        {move || top.get().into_iter().map(|p| view! {
                            <li>
                                <span class="label" data-testid="live-label">{p.label}</span>
                                <span class="bar" aria-hidden="true"><span style:width=format!("{:.1}%", p.prob * 100.0)></span></span>
                                <span class="value">{format!("{:.1} %", p.prob * 100.0)}</span>
                            </li>
                        }).collect_view()}
                    </ol>
                </div>
                <div class="camera-actions">
                    <button class="button primary" on:click=snap>"Capture"</button>
                    <button class="button" on:click=move |_| close()>"Close"</button>
                </div>
                <div class="camera-actions record">
                    <label>
                        "Record into "
                        <select
                            data-testid="record-class"
                            on:change=move |ev| record_class.set(event_target_value(&ev).parse().ok())
                            prop:value=move || record_class.get().map(|id| id.to_string()).unwrap_or_default()
                        >
                            {move || training.class_options().into_iter().map(|(id, name)| view! {
                                <option value=id.to_string()>{name}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <button
                        class="button"
                        data-testid="record-button"
                        disabled=move || record_class.get().is_none()
                        title="Adds frames to the class while held (mouse, touch, or Space)"
                        on:pointerdown=move |_| start_recording()
                        on:pointerup=move |_| stop_recording()
                        on:pointerleave=move |_| stop_recording()
                        on:pointercancel=move |_| stop_recording()
                        on:keydown=move |ev| if ev.key() == " " && !ev.repeat() { ev.prevent_default(); start_recording() }
                        on:keyup=move |ev| if ev.key() == " " { stop_recording() }
                        on:blur=move |_| stop_recording()
                    >
                        "Hold to record"
                    </button>
                    <span class="muted" data-testid="recorded">
                        {move || match recorded.get() {
                            0 => String::new(),
                            n => format!("{n} frames recorded"),
                        }}
                    </span>
                </div>
            </div>
        </Show>
    }
}
