//! Which arithmetic runs a quantized file's frozen part on the CPU kernels.

use super::isa::CpuKernels;

/// The arithmetic of a quantized file's frozen part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arithmetic {
    /// The file's own 8-bit integers where the kernels run them faster than float32
    /// ([`CpuKernels::integer_is_faster`]), else float32.
    Auto,
    /// The file's 8-bit integers on any path (a float32 file stays float32).
    Integer,
    /// Float32 over the dequantized weights.
    Float,
}

impl Arithmetic {
    /// Whether a quantized file's integers are wanted on `kernels`: asked for, or
    /// [`Self::Auto`] where they run faster.
    pub fn wants_integers(self, kernels: CpuKernels) -> bool {
        match self {
            Self::Integer => true,
            Self::Auto => kernels.runnable().integer_is_faster(),
            Self::Float => false,
        }
    }

    pub const ALL: [Self; 3] = [Self::Auto, Self::Integer, Self::Float];

    /// What runs, in words, for diagnostics: "8-bit integers" or "float32" ([`Self::Auto`]
    /// is not a result: a classifier runs one of the two).
    pub fn describe(self) -> &'static str {
        match self {
            Self::Integer => "the file's 8-bit integers",
            Self::Float | Self::Auto => "float32",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Integer => "integer",
            Self::Float => "float",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// What a page's worker URL query (`search`, as `location.search` gives it) asks for:
    /// `?arithmetic=float` (or `integer`, `auto`), for measurements beside the default; else
    /// [`Self::Auto`].
    pub fn from_query(search: &str) -> Self {
        search
            .trim_start_matches('?')
            .split('&')
            .find_map(|pair| pair.strip_prefix("arithmetic="))
            .and_then(Self::from_name)
            .unwrap_or(Self::Auto)
    }

    /// `AFINAR_ARITHMETIC` (`auto`, `integer`, `float`) where set, else [`Self::Auto`].
    pub fn from_env() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(name) = std::env::var("AFINAR_ARITHMETIC")
            && let Some(arithmetic) = Self::from_name(&name)
        {
            return arithmetic;
        }
        Self::Auto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_query_names_the_arithmetic() {
        assert_eq!(Arithmetic::from_query(""), Arithmetic::Auto);
        assert_eq!(
            Arithmetic::from_query("?arithmetic=float"),
            Arithmetic::Float
        );
        let both = "?x=1&arithmetic=integer";
        assert_eq!(Arithmetic::from_query(both), Arithmetic::Integer);
        assert_eq!(Arithmetic::from_query("?arithmetic=fast"), Arithmetic::Auto);
        assert_eq!(
            Arithmetic::from_query("?xarithmetic=float"),
            Arithmetic::Auto
        );
    }
}
