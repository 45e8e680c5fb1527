//! Command-line front end: argument parsing, files, progress and output formats.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use afinar::{Classifier, DEFAULT_MODEL_FILE, ModelInput, Prediction};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

/// Where the setup script puts the model, relative to the project root.
const MODEL_DIR: &str = "www/models";
/// Label list looked for beside a model file that carries none.
const LABELS_FILE: &str = "imagenet_labels.txt";

#[derive(Parser)]
#[command(
    name = "afinar",
    version,
    about = "MobileNetV2 image classification and transfer learning, on your machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify photos against the 1,000 ImageNet classes.
    Classify(ClassifyArgs),
    /// Train a new head on folders of photos (one sub-folder per class).
    Train(crate::train_cli::TrainArgs),
    /// Score a trained head on folders of photos: accuracy, per class, confusion matrix.
    Eval(crate::train_cli::EvalArgs),
}

/// Which model file, on which device: shared by every subcommand.
#[derive(clap::Args)]
pub(crate) struct ModelArgs {
    /// The MobileNetV2 `.tflite` file [default: www/models/mobilenet_v2_1.0_224_quant.tflite]
    #[arg(long, env = "AFINAR_MODEL")]
    model: Option<PathBuf>,
    /// Where the model runs.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    device: Backend,
}

impl ModelArgs {
    /// Finds and loads the model on the chosen device.
    pub(crate) fn load(&self) -> Result<Classifier> {
        load_classifier(&model_path(self.model.as_deref())?, self.device)
    }
}

#[derive(clap::Args)]
struct ClassifyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// How many labels to print per photo.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1001))]
    top: u16,
    /// One JSON object per line per file.
    #[arg(long)]
    json: bool,
    /// Photos per forward pass.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    batch: u16,
    /// A head written by `afinar train`: classify into its classes instead of ImageNet's.
    #[arg(long)]
    head: Option<PathBuf>,
    /// Image files (JPEG, PNG, WebP, GIF, BMP).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Backend {
    /// Burn's ndarray backend on the CPU.
    Cpu,
    /// Burn's wgpu backend on the first GPU adapter (Vulkan, Metal, DX12).
    #[cfg(feature = "wgpu")]
    Wgpu,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Classify(args) => classify(&args),
        Command::Train(args) => crate::train_cli::train(&args),
        Command::Eval(args) => crate::train_cli::eval(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Finds the model: `--model` / `$AFINAR_MODEL`, else the setup script's location under the
/// working directory or under the source tree this binary was built from.
fn model_path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let candidates = [
        Path::new(MODEL_DIR).join(DEFAULT_MODEL_FILE),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(MODEL_DIR)
            .join(DEFAULT_MODEL_FILE),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => Ok(path.clone()),
        None => bail!(
            "no model found at {}; run scripts/setup-model, or pass --model PATH (or set AFINAR_MODEL)",
            candidates[1].display()
        ),
    }
}

fn load_classifier(path: &Path, backend: Backend) -> Result<Classifier> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
    let sidecar = path.with_file_name(LABELS_FILE);
    let fallback = std::fs::read_to_string(&sidecar).ok();
    let device = match backend {
        Backend::Cpu => afinar::device::cpu(),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Device::wgpu_options()
            .init()
            .context("no usable GPU adapter for --device wgpu")?,
    };
    Classifier::from_tflite(&bytes, fallback.as_deref(), &device)
        .with_context(|| format!("cannot load model {}", path.display()))
}

#[derive(Serialize)]
#[serde(untagged)]
enum FileResult<'a> {
    Top {
        file: &'a str,
        top: &'a [Prediction],
    },
    Error {
        file: &'a str,
        error: &'a str,
    },
}

/// Classifies every file; `Ok(false)` when some file could not be classified.
fn classify(args: &ClassifyArgs) -> Result<bool> {
    let classifier = args.model.load()?;
    let head = match &args.head {
        Some(file) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let (parts, metadata) =
                afinar::head::load(&bytes, Some(classifier.model_sha256()), classifier.device())
                    .with_context(|| format!("cannot use {}", file.display()))?;
            Some((parts, metadata.classes))
        }
        None => None,
    };
    let progress = ProgressBar::new(args.files.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} photos  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut all_ok = true;
    for chunk in args.files.chunks(usize::from(args.batch)) {
        // Decoding dominates for large photos; spread it over the cores.
        let inputs: Vec<Result<ModelInput, String>> = chunk
            .par_iter()
            .map(|file| {
                let bytes =
                    std::fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
                ModelInput::from_image_bytes(&bytes).map_err(|e| e.to_string())
            })
            .collect();
        let good: Vec<ModelInput> = inputs
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let result = match &head {
            Some((parts, classes)) => {
                futures_lite::future::block_on(classifier.classify_trained_async(
                    &good,
                    parts,
                    classes,
                    usize::from(args.top).min(classes.len()),
                ))
            }
            None => classifier.classify(&good, usize::from(args.top)),
        };
        let mut predictions = match result {
            Ok(predictions) => predictions.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e.to_string()); good.len()],
        }
        .into_iter();
        for (file, input) in chunk.iter().zip(&inputs) {
            let name = file.to_string_lossy();
            let result = match input {
                Ok(_) => predictions
                    .next()
                    .unwrap_or_else(|| Err("the model returned no result".to_string())),
                Err(e) => Err(e.clone()),
            };
            all_ok &= result.is_ok();
            progress.suspend(|| print_result(&name, &result, args.json));
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    Ok(all_ok)
}

fn print_result(file: &str, result: &Result<Vec<Prediction>, String>, json: bool) {
    if json {
        let line = match result {
            Ok(top) => FileResult::Top { file, top },
            Err(error) => FileResult::Error { file, error },
        };
        match serde_json::to_string(&line) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("error: cannot write JSON for {file}: {e}"),
        }
        return;
    }
    match result {
        Ok(top) => {
            println!("{file}");
            for p in top {
                println!("  {:6.2}%  {} [{}]", p.prob * 100.0, p.label, p.index);
            }
        }
        Err(e) => println!("{file}\n  error: {e}"),
    }
}
