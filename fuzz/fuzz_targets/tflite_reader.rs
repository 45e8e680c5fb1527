//! Any byte string given to the TFLite reader returns Ok or Err; it never panics, overflows
//! or allocates without bound. The appended-zip label reader is fed the same bytes directly,
//! since the full reader only reaches it for files whose graph is a complete MobileNetV2.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = afinar::MobileNetV2Weights::from_tflite(data);
    let _ = afinar::labels::labels_from_appended_zip(data);
});
