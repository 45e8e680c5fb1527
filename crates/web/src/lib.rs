//! The page's logic that needs no browser: plain types and their operations, which the page
//! (`main.rs` and its modules) wraps in signals and which `cargo test` checks natively.

pub mod photo_writes;
pub mod roster;
