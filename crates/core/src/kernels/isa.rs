//! Which SIMD level the CPU kernels run at: chosen at run time from what the CPU offers (never
//! from build flags that would break older CPUs), or forced with `AFINAR_CPU_KERNELS` for tests
//! and measurements.

/// The CPU path of the frozen backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuKernels {
    /// Burn's own ops (the reference, and the path of every other device).
    Burn,
    /// Afinar's kernels in portable Rust, vectorized by the compiler for the build's baseline
    /// (SSE2 natively).
    Portable,
    /// Afinar's kernels with wasm `simd128` intrinsics: the browser's path.
    Simd128,
    /// Afinar's kernels compiled for AVX2 + FMA.
    Avx2,
    /// Afinar's kernels compiled for AVX-512F (+ FMA).
    Avx512,
}

impl CpuKernels {
    /// Every path.
    pub const ALL: [CpuKernels; 5] = [
        Self::Burn,
        Self::Portable,
        Self::Simd128,
        Self::Avx2,
        Self::Avx512,
    ];

    /// The fastest path this CPU runs.
    pub fn best() -> Self {
        [Self::Avx512, Self::Avx2, Self::Simd128]
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(Self::Portable)
    }

    /// `AFINAR_CPU_KERNELS` (`burn`, `portable`, `avx2`, `avx512`) when it names a path this CPU
    /// runs, else [`Self::best`].
    pub fn from_env() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(name) = std::env::var("AFINAR_CPU_KERNELS")
            && let Some(kernels) = Self::ALL.into_iter().find(|k| k.name() == name)
            && kernels.is_supported()
        {
            return kernels;
        }
        Self::best()
    }

    /// `self` where this CPU runs it as one of Afinar's kernels, else the portable kernels:
    /// what the packed layers keep, so that a kernel is never called on a CPU without its
    /// instructions.
    pub fn runnable(self) -> Self {
        match self {
            Self::Simd128 | Self::Avx2 | Self::Avx512 if self.is_supported() => self,
            _ => Self::Portable,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Burn => "burn",
            Self::Portable => "portable",
            Self::Simd128 => "simd128",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the path: every feature its `#[target_feature]` functions
    /// enable (the AVX-512 path's enable `avx512f,avx2,fma`; the AVX2 path's `avx2,fma`).
    pub fn is_supported(self) -> bool {
        match self {
            Self::Burn | Self::Portable => true,
            Self::Simd128 => cfg!(all(target_arch = "wasm32", target_feature = "simd128")),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 | Self::Avx512 => false,
        }
    }
}

/// How the kernels' inner loops compute: plain fixed-size arrays that the compiler vectorizes
/// and holds in registers for the target features of the function they are inlined into, with
/// fused multiply-add where `FMA` says those features have it.
pub(super) struct Lanes<const FMA: bool>;

/// How the GEMM tile computes with AVX-512: intrinsics on 512-bit registers ([`super::avx512`]).
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx512;

/// How the kernels' inner loops compute in the browser: wasm `simd128` intrinsics
/// ([`super::simd128`]), the compiler leaving [`Lanes`] mostly scalar there.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) struct Simd128;

/// `a · b + c`, fused where the instruction set has FMA (`mul_add` without it is a slow call).
#[inline(always)]
pub(super) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}
