//! Any byte string given to the TFLite reader returns Ok or Err; it never panics, overflows
//! or allocates without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = afinar::MobileNetV2Weights::from_tflite(data);
});
