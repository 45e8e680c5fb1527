//! Any byte string read back as an exported classifier (`afinar export`'s `.tflite`) is
//! refused or read; it never panics or overflows a size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = afinar::tflite::ExportedClassifier::from_tflite(data);
});
