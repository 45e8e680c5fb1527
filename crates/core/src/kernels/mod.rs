//! Afinar's CPU kernels for the frozen backbone: NHWC activations, 1×1 convolutions as GEMMs
//! with weights packed once and bias / ReLU6 / residual inside the kernel ([`gemm`]), a fused
//! 3×3 depthwise kernel ([`depthwise`]), work split over the cores ([`rows`]).
//!
//! Each kernel is written once over the ways its inner loop computes (portable [`lanes`] that
//! the compiler vectorizes, AVX-512 and wasm `simd128` intrinsics) and runs on the instruction
//! set chosen at run time ([`isa`]) through one [`dispatch`]. [`backbone`] runs the whole frozen
//! part on them; [`reference`] holds the plain loops every kernel is tested against.

pub mod arithmetic;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod backbone;
pub mod depthwise;
mod dispatch;
pub mod gemm;
pub mod integer_backbone;
pub mod integer_reference;
pub mod isa;
mod lanes;
pub mod qdepthwise;
pub mod qgemm;
mod qpanels;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod qsimd128;
pub mod reference;
pub mod requantize;
pub mod rows;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[cfg(target_arch = "x86_64")]
mod vnni;

pub use arithmetic::Arithmetic;
pub use backbone::{PackedBackbone, PackedTop};
pub use isa::CpuKernels;
