//! Which SIMD level the CPU kernels run at: chosen at run time from what the CPU offers (never
//! from build flags that would break older CPUs), or forced with `AFINAR_CPU_KERNELS` for tests
//! and measurements.

/// The CPU path of the frozen backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuKernels {
    /// Burn's own ops (the reference, and the path of every other device).
    Burn,
    /// Afinar's kernels in portable Rust, vectorized by the compiler for the build's baseline:
    /// SSE2 natively, `simd128` in the browser.
    Portable,
    /// Afinar's kernels compiled for AVX2 + FMA.
    Avx2,
    /// Afinar's kernels compiled for AVX-512F (+ FMA).
    Avx512,
}

impl CpuKernels {
    /// Every path, fastest last.
    pub const ALL: [CpuKernels; 4] = [Self::Burn, Self::Portable, Self::Avx2, Self::Avx512];

    /// The fastest path this CPU runs. In the browser that is Burn's, for now: the portable
    /// kernels built for wasm `simd128` measured several times slower there than Burn's
    /// ndarray backend (the compiler leaves their tiles scalar), so they stay opt-in
    /// ([`Classifier::with_cpu_kernels`](crate::Classifier::with_cpu_kernels)) until they are
    /// written with explicit `simd128` intrinsics.
    pub fn best() -> Self {
        if cfg!(target_arch = "wasm32") {
            return Self::Burn;
        }
        [Self::Avx512, Self::Avx2]
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
            Self::Avx2 | Self::Avx512 if self.is_supported() => self,
            _ => Self::Portable,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Burn => "burn",
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Burn | Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 | Self::Avx512 => false,
        }
    }
}
