//! The one place where a kernel meets an instruction set: each kernel says what it does per
//! [`Isa`] ([`Kernel`]), and [`dispatch`] runs that inside a function compiled for the
//! instruction set, so the kernel's `#[inline(always)]` loops are vectorized for it.

use super::isa::Isa;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use super::isa::Simd128;
#[cfg(target_arch = "x86_64")]
use super::isa::{Avx2, Avx512, Avx512Vnni};

/// A kernel's work on one instruction set. Every method is meant to be `#[inline(always)]`,
/// so that it is compiled into [`dispatch`]'s function for that set. A set a kernel has no
/// code of its own for runs the next one down.
pub(super) trait Kernel: Sized {
    type Output;

    fn portable(self) -> Self::Output;

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx2(self, _isa: Avx2) -> Self::Output {
        self.portable()
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx512(self, isa: Avx512) -> Self::Output {
        self.avx2(isa.avx2())
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx512_vnni(self, isa: Avx512Vnni) -> Self::Output {
        self.avx512(isa.avx512())
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    fn simd128(self, _isa: Simd128) -> Self::Output {
        self.portable()
    }
}

/// Runs `kernel` with `isa`'s instructions.
pub(super) fn dispatch<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    match isa {
        Isa::Portable => kernel.portable(),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` token is only made by `Avx2::detect` (or from an `Avx512` one, whose
        // detection includes it) after this CPU reported avx2 and fma: every feature that
        // `with_avx2` enables.
        Isa::Avx2(token) => unsafe { with_avx2(token, kernel) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512(token) => match token.vnni() {
            // SAFETY: an `Avx512Vnni` token is only made by `Avx512::vnni`, from a detected
            // `Avx512` (avx512f, avx2, fma) after this CPU reported avx512bw and avx512vnni:
            // every feature that `with_avx512_vnni` enables.
            Some(vnni) => unsafe { with_avx512_vnni(vnni, kernel) },
            // SAFETY: an `Avx512` token is only made by `Avx512::detect` after this CPU
            // reported avx512f, avx2 and fma: every feature that `with_avx512` enables.
            None => unsafe { with_avx512(token, kernel) },
        },
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128(token) => kernel.simd128(token),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn with_avx2<K: Kernel>(token: Avx2, kernel: K) -> K::Output {
    kernel.avx2(token)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn with_avx512<K: Kernel>(token: Avx512, kernel: K) -> K::Output {
    kernel.avx512(token)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
fn with_avx512_vnni<K: Kernel>(token: Avx512Vnni, kernel: K) -> K::Output {
    kernel.avx512_vnni(token)
}
