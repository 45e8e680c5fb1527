use afinar_core::kernels::CpuKernels;
use afinar_core::kernels::integer_backbone::IntegerBackbone;
use afinar_core::tflite::QuantizedMobileNetV2;
use std::time::Instant;

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or("../shared/models/mobilenet_v2_1.0_224_quant.tflite".into());
    let bytes = std::fs::read(path).unwrap();
    let model = QuantizedMobileNetV2::from_tflite(&bytes).unwrap();
    let b = IntegerBackbone::pack(&model, CpuKernels::from_env()).unwrap();
    let rgb: Vec<u8> = (0..224 * 224 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let threads: usize = std::env::var("T")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    for _ in 0..20 {
        b.run(&rgb);
    }
    let mut v = vec![];
    for _ in 0..40 {
        let t = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(b.run(&rgb));
        }
        v.push(t.elapsed().as_secs_f64() / 20.0 * 1e3);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let out = b.run(&rgb);
    let sum: u64 = out.logits.iter().map(|&v| v as u64).sum();
    println!(
        "{threads} threads: min {:.3} median {:.3} ms (logit sum {sum})",
        v[0], v[20]
    );
}
