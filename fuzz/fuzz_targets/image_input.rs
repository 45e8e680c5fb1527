//! Photo bytes → model input never panics, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = afinar::ModelInput::from_image_bytes(data);
});
