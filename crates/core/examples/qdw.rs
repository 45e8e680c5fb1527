use afinar_core::kernels::CpuKernels;
use afinar_core::kernels::qdepthwise::PackedQDepthwise;
use afinar_core::tflite::QuantizedMobileNetV2;
use std::time::Instant;

fn main() {
    let bytes = std::fs::read("../shared/models/mobilenet_v2_1.0_224_quant.tflite").unwrap();
    let model = QuantizedMobileNetV2::from_tflite(&bytes).unwrap();
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap();
    let mut side = 112;
    let mut total = 0.0;
    let mut macs_total = 0.0;
    for (i, b) in model.blocks.iter().enumerate() {
        let conv = &b.depthwise;
        let c = conv.spec.out_channels;
        let p = PackedQDepthwise::pack(conv, CpuKernels::from_env()).unwrap();
        let x: Vec<u8> = (0..side * side * c).map(|i| (i * 37 % 256) as u8).collect();
        let mut out = vec![0u8; side * side * c];
        let n = 200;
        let t = Instant::now();
        let mut oh = 0;
        for _ in 0..n {
            oh = p.run(&x, side, side, &mut out).0;
        }
        let us = t.elapsed().as_secs_f64() / n as f64 * 1e6;
        let macs = (oh * oh * c * 9) as f64;
        total += us;
        macs_total += macs;
        println!(
            "block {i:2} {side:3}x{side:3}x{c:4} s{}: {us:7.1} us  {:.1} GMAC/s",
            p.stride,
            macs / us / 1e3
        );
        side = oh;
    }
    println!("total {total:.0} us, {:.1}M MACs", macs_total / 1e6);
}
