//! The `afinar` command-line tool (native only; the browser app is a separate entry point).

#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod feature_cache;
#[cfg(not(target_arch = "wasm32"))]
mod train_cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}
