//! In-browser test (wasm-bindgen-test in headless Chromium): the page ↔ worker messages survive
//! the trip through JS values, the way the page and the worker send them.
//!
//! Run by `scripts/test` with the library's in-browser tests.
#![cfg(target_arch = "wasm32")]

use afinar_protocol::{Classification, Reply, Request, TrainingRows};
use afinar_vocabulary::{Backend, Prediction, RecipeName, TrainSettings};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn messages_survive_the_trip_through_js_values() {
    let request = Request::Classify {
        id: 7,
        bytes: vec![0xff, 0xd8, 0, 1, 2],
    };
    let value = serde_wasm_bindgen::to_value(&request).expect("serializes");
    // Bytes travel as a Uint8Array (one copy), not as an array of numbers.
    let bytes = js_sys::Reflect::get(
        &js_sys::Reflect::get(&value, &"Classify".into()).expect("variant"),
        &"bytes".into(),
    )
    .expect("field");
    assert!(bytes.is_instance_of::<js_sys::Uint8Array>());
    match serde_wasm_bindgen::from_value::<Request>(value).expect("deserializes") {
        Request::Classify { id, bytes } => assert_eq!((id, bytes), (7, vec![0xff, 0xd8, 0, 1, 2])),
        other => panic!("got {other:?}"),
    }
    let reply = Reply::Classified {
        id: 3,
        result: Ok(Classification {
            top: vec![Prediction {
                index: 20,
                label: "chickadee".into(),
                prob: 0.9,
            }],
            model_ms: 12.5,
            decode_ms: 3.0,
            thumbnail_jpeg: vec![1, 2, 3],
            backend: Backend::WebGpu,
            custom: None,
            wasm_memory_bytes: 1 << 20,
        }),
    };
    let value = serde_wasm_bindgen::to_value(&reply).expect("serializes");
    assert_eq!(
        serde_wasm_bindgen::from_value::<Reply>(value).expect("deserializes"),
        reply
    );

    // A training set's features travel as bytes too (as numbers, serde-wasm-bindgen took
    // seconds to read a few thousand back).
    let set = TrainingRows {
        classes: vec!["a".into(), "b".into()],
        labels: vec![0, 1],
        features: (0..2 * 1280).map(|i| i as f32 * 0.5).collect(),
        boundary: None,
        augmented: Some((0..2 * 2 * 1280).map(|i| i as f32 * 0.25).collect()),
        augmented_boundary: None,
        sha256: vec!["x".into(), "y".into()],
        names: vec!["x.jpg".into(), "y.jpg".into()],
        validation: Some(vec![false, true]),
        rows_ahead: false,
        // Every kind of setting (the recipe's name, options, numbers) makes the trip.
        settings: TrainSettings {
            views: 2,
            seed: 1234,
            patience: Some(3),
            ..TrainSettings::named(RecipeName::Best)
        },
    };
    let request = Request::Train(Box::new(set.clone()));
    let value = serde_wasm_bindgen::to_value(&request).expect("serializes");
    let features = js_sys::Reflect::get(
        &js_sys::Reflect::get(&value, &"Train".into()).expect("variant"),
        &"features".into(),
    )
    .expect("field");
    assert!(features.is_instance_of::<js_sys::Uint8Array>());
    match serde_wasm_bindgen::from_value::<Request>(value).expect("deserializes") {
        Request::Train(back) => assert_eq!(*back, set),
        other => panic!("got {other:?}"),
    }
}

/// A run's rows go to the worker handed over, not copied: the transfer list names the buffers
/// of its large arrays (and not the small ones), and the message arrives whole through a
/// transferring clone, as `postMessage` makes one, leaving the sender's buffers empty.
#[wasm_bindgen_test]
fn a_runs_large_rows_are_handed_over_whole() {
    let width = 1 << 18; // 1 MiB of f32 per photo's boundary row.
    let set = TrainingRows {
        classes: vec!["a".into(), "b".into()],
        labels: vec![0, 1],
        features: (0..2 * 1280).map(|i| i as f32).collect(),
        boundary: Some((0..2 * width).map(|i| i as f32 * 0.5).collect()),
        augmented: None,
        augmented_boundary: Some((0..2 * width).map(|i| -(i as f32)).collect()),
        sha256: vec!["x".into(), "y".into()],
        names: vec!["x.jpg".into(), "y.jpg".into()],
        validation: None,
        rows_ahead: false,
        settings: TrainSettings::named(RecipeName::Best),
    };
    let value =
        serde_wasm_bindgen::to_value(&Request::Train(Box::new(set.clone()))).expect("serializes");
    let field = |name: &str| -> js_sys::Uint8Array {
        let train = js_sys::Reflect::get(&value, &"Train".into()).expect("variant");
        js_sys::Reflect::get(&train, &name.into())
            .expect("field")
            .unchecked_into()
    };
    let transfer = afinar_protocol::js::transfer_list(&value);
    assert_eq!(
        transfer.length(),
        2,
        "the two large arrays, not the 10 KB of features"
    );
    assert!(transfer.includes(&field("boundary").buffer(), 0));
    assert!(transfer.includes(&field("augmented_boundary").buffer(), 0));

    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"transfer".into(), &transfer).expect("options");
    let clone: js_sys::Function =
        js_sys::Reflect::get(&js_sys::global(), &"structuredClone".into())
            .expect("structuredClone")
            .unchecked_into();
    let arrived = clone
        .call2(&JsValue::NULL, &value, &options)
        .expect("clones");
    assert_eq!(
        field("boundary").byte_length(),
        0,
        "handed over: gone from the sender"
    );
    assert_eq!(
        field("features").byte_length(),
        2 * 1280 * 4,
        "small arrays are copied"
    );
    match serde_wasm_bindgen::from_value::<Request>(arrived).expect("deserializes") {
        Request::Train(back) => assert_eq!(*back, set),
        other => panic!("got {other:?}"),
    }
}
