//! Native inference speed: ms per photo at batch 1 and batch 32 on the CPU (and on wgpu when
//! an adapter exists), from decoded 224×224 input and from a JPEG file.
//!
//! `cargo bench --bench inference`. Needs the model in `www/models/` (`scripts/setup-model`)
//! and `../shared` for the photos.

use std::path::PathBuf;
use std::time::Duration;

use afinar::{Classifier, DEFAULT_MODEL_FILE, ModelInput};
use burn::tensor::Device;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn classifier(device: &Device) -> Classifier {
    let path = root().join("www/models").join(DEFAULT_MODEL_FILE);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup-model", path.display()));
    Classifier::from_tflite(&bytes, None, device).expect("model loads")
}

fn photo_path() -> PathBuf {
    root().join("../shared/data/flower_photos/daisy/100080576_f52e8ee070_n.jpg")
}

fn bench_device(c: &mut Criterion, name: &str, device: &Device) {
    let classifier = classifier(device);
    let jpeg = std::fs::read(photo_path()).expect("photo");
    let input = ModelInput::from_image_bytes(&jpeg).expect("decodes");
    let mut group = c.benchmark_group(format!("inference/{name}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for batch in [1usize, 32] {
        let inputs = vec![input.clone(); batch];
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("decoded", batch), &inputs, |b, inputs| {
            b.iter(|| classifier.classify(inputs, 5))
        });
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("jpeg/1", |b| {
        b.iter(|| {
            let input = ModelInput::from_image_bytes(&jpeg).expect("decodes");
            classifier.classify(&[input], 5)
        })
    });
    group.finish();
}

fn inference(c: &mut Criterion) {
    bench_device(c, "ndarray", &afinar::device::cpu());
    #[cfg(feature = "wgpu")]
    match Device::wgpu_options().init() {
        Ok(device) => bench_device(c, "wgpu", &device),
        Err(e) => eprintln!("wgpu skipped: {e}"),
    }
}

fn preprocessing(c: &mut Criterion) {
    let jpeg = std::fs::read(photo_path()).expect("photo");
    c.bench_function("preprocess/jpeg 320x263", |b| {
        b.iter(|| ModelInput::from_image_bytes(&jpeg))
    });
}

criterion_group!(benches, inference, preprocessing);
criterion_main!(benches);
