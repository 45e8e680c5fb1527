//! Structure-aware: each input is a plan for a MobileNetV2-shaped `.tflite` file (real shapes,
//! float32 or quantized weights, a classifier or an exported head, then edits that break one
//! thing each: a shape, a scale, a type, an operator's input), built with the flatbuffer schema
//! (`tests/common/tflite_graph/`) and read by every reader. Random bytes rarely get past the
//! flatbuffer's verification; these reach the architecture checks, dequantization, the
//! classifier and a classification. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Its plan builders are for the tests.
#[allow(dead_code)]
#[path = "../../tests/common/tflite_graph/mod.rs"]
mod tflite_graph;

fuzz_target!(|plan: tflite_graph::GraphPlan| {
    tflite_graph::read_with_every_reader(&plan.to_tflite());
});
