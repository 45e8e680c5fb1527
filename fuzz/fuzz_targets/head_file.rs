//! Any byte string read as a head file (`.safetensors`) is refused or loaded; it never panics
//! or sizes an allocation from a count it did not check.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let device = afinar::device::cpu();
    let _ = afinar::head::load(data, None, &device);
});
