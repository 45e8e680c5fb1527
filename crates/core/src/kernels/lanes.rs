//! The portable way the kernels' inner loops compute: plain fixed-size arrays that the compiler
//! vectorizes and holds in registers for the target features of the function they are inlined
//! into (see [`super::dispatch`]).

/// Lanes of plain arrays, with fused multiply-add where `FMA` says the instruction set of the
/// function they are inlined into has it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lanes<const FMA: bool>;

/// `a · b + c`, fused where the instruction set has FMA (`mul_add` without it is a slow call).
#[inline(always)]
pub(super) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}
