//! Which instruction set the CPU kernels run with: chosen at run time from what the CPU offers
//! (never from build flags that would break older CPUs), or named with `AFINAR_CPU_KERNELS`
//! for tests and measurements.
//!
//! [`CpuKernels`] names a path; [`Isa`] is a path this CPU runs, holding the token of its
//! instruction set. A token ([`Avx2`], [`Avx512`], [`Simd128`]) can only be made by its
//! `detect`, after the CPU has reported every feature that its kernels' `#[target_feature]`
//! functions enable, so holding one is the proof that calling them is sound.

/// The CPU path of the frozen backbone, by name.
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
    /// Afinar's kernels compiled for AVX-512F (+ AVX2, FMA).
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
            && let Some(kernels) = Self::from_name(&name)
            && kernels.is_supported()
        {
            return kernels;
        }
        Self::best()
    }

    /// The path called `name` (see [`Self::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The Afinar kernels that run for `self` on this CPU: its own where the CPU has its
    /// instructions, else the portable ones (so a kernel is never called without them).
    pub fn runnable(self) -> Self {
        self.isa().kernels()
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

    /// Whether a quantized file's integers run faster than float32 on this path here: where
    /// the CPU has 8-bit dot products (AVX-512 VNNI), and in wasm (`simd128`'s
    /// `i32x4.dot_i16x8_s`: eight multiply-adds in one instruction). Elsewhere the integer
    /// kernels are the compiler's vectorization of plain loops, slower than the float ones.
    pub fn integer_is_faster(self) -> bool {
        match self.isa() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512(avx512) => avx512.vnni().is_some(),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128(_) => true,
            _ => false,
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Burn | Self::Portable => true,
            _ => self.isa().kernels() == self,
        }
    }

    /// The instruction set `self` runs with on this CPU: its token where detection finds the
    /// features, else [`Isa::Portable`].
    pub fn isa(self) -> Isa {
        let isa = match self {
            Self::Burn | Self::Portable => None,
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => Avx512::detect().map(Isa::Avx512),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => Avx2::detect().map(Isa::Avx2),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Self::Simd128 => Simd128::detect().map(Isa::Simd128),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        isa.unwrap_or(Isa::Portable)
    }
}

/// A path of Afinar's kernels that this CPU runs, with the proof for its instructions.
#[derive(Debug, Clone, Copy)]
pub enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512),
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128(Simd128),
}

impl Isa {
    /// The path's name.
    pub fn kernels(self) -> CpuKernels {
        match self {
            Self::Portable => CpuKernels::Portable,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(_) => CpuKernels::Avx2,
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(_) => CpuKernels::Avx512,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Self::Simd128(_) => CpuKernels::Simd128,
        }
    }
}

/// This CPU runs AVX2 and FMA: what the AVX2 kernels enable.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub struct Avx2 {
    _detected: (),
}

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    pub fn detect() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
            .then_some(Self { _detected: () })
    }
}

/// This CPU runs AVX-512F, AVX2 and FMA: what the AVX-512 kernels enable.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub struct Avx512 {
    _detected: (),
}

#[cfg(target_arch = "x86_64")]
impl Avx512 {
    pub fn detect() -> Option<Self> {
        Avx2::detect()?;
        std::arch::is_x86_feature_detected!("avx512f").then_some(Self { _detected: () })
    }

    /// What the AVX2 kernels need is a part of what was detected for these.
    pub fn avx2(self) -> Avx2 {
        Avx2 { _detected: () }
    }

    /// The 8-bit dot products (AVX-512 VNNI and BW), where this CPU has them too.
    pub fn vnni(self) -> Option<Avx512Vnni> {
        (std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni"))
        .then_some(Avx512Vnni { _detected: () })
    }
}

/// This CPU runs AVX-512F, BW and VNNI, AVX2 and FMA: what the AVX-512 kernels with 8-bit dot
/// products enable. Made only by [`Avx512::vnni`].
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub struct Avx512Vnni {
    _detected: (),
}

#[cfg(target_arch = "x86_64")]
impl Avx512Vnni {
    /// What the AVX-512 kernels need is a part of what was detected for these.
    pub fn avx512(self) -> Avx512 {
        Avx512 { _detected: () }
    }
}

/// wasm `simd128`, which every wasm build of this project enables (`.cargo/config.toml`): a
/// browser without it refuses the whole module, so a running module has it.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[derive(Debug, Clone, Copy)]
pub struct Simd128 {
    _detected: (),
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Simd128 {
    pub fn detect() -> Option<Self> {
        Some(Self { _detected: () })
    }
}
