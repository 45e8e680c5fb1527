//! Afinar's CPU kernels for the frozen backbone: NHWC activations, 1×1 convolutions as GEMMs
//! with weights packed once and bias / ReLU6 / residual inside the kernel ([`gemm`]), a fused
//! 3×3 depthwise kernel ([`depthwise`]), work split over both cores ([`rows`]), each compiled
//! for AVX-512, AVX2 + FMA and a portable baseline, with wasm `simd128` intrinsics in the
//! browser, and chosen at run time ([`isa`]). [`backbone`] runs the whole frozen part on them.
//!
//! Burn's layers ([`super::layers`]) stay the reference and the path of every other device and
//! of everything that trains; the parity tests hold these kernels to them.

#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod backbone;
pub mod depthwise;
pub mod gemm;
pub mod isa;
pub mod rows;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

pub use backbone::{PackedBackbone, PackedTop};
pub use isa::CpuKernels;
