//! In-browser test (wasm-bindgen-test in headless Chromium): the page ↔ worker messages survive
//! the trip through JS values, the way the page and the worker send them.
//!
//! Run by `scripts/test` with the library's in-browser tests.
#![cfg(target_arch = "wasm32")]

use afinar_protocol::{Classification, Reply, Request, TrainingRows};
use afinar_vocabulary::{Backend, Prediction, RecipeName, TrainSettings};
use wasm_bindgen::JsCast;
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
