//! The `afinar` command-line tool (native only; the browser app is a separate entry point):
//! `classify`, `train`, `eval`, `export` and `publish` over the library, with files, progress and output formats.

#[cfg(not(target_arch = "wasm32"))]
mod args;
#[cfg(not(target_arch = "wasm32"))]
mod classify;
#[cfg(not(target_arch = "wasm32"))]
mod data;
#[cfg(not(target_arch = "wasm32"))]
mod eval;
#[cfg(not(target_arch = "wasm32"))]
mod export;
#[cfg(not(target_arch = "wasm32"))]
mod feature_cache;
#[cfg(not(target_arch = "wasm32"))]
mod publish;
#[cfg(not(target_arch = "wasm32"))]
mod scores;
#[cfg(not(target_arch = "wasm32"))]
mod train;

#[cfg(not(target_arch = "wasm32"))]
#[derive(clap::Parser)]
#[command(
    name = "afinar",
    version,
    about = "MobileNetV2 image classification and transfer learning, on your machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(clap::Subcommand)]
enum Command {
    /// Classify photos against the 1,000 ImageNet classes.
    Classify(classify::ClassifyArgs),
    /// Train a new head on folders of photos (one sub-folder per class) or a project file.
    Train(Box<train::TrainArgs>),
    /// Score a trained head on folders of photos or a project: accuracy, per class, confusion matrix.
    Eval(eval::EvalArgs),
    /// Write a trained head with its base model as one `.tflite` (LiteRT, MediaPipe).
    Export(export::ExportArgs),
    /// Write a trained head with its base model as a web app of its own (folder, zip or one .html).
    Publish(publish::PublishArgs),
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use clap::Parser;
    let result = match Cli::parse().command {
        Command::Classify(args) => classify::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Publish(args) => publish::run(&args),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
