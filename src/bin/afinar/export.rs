//! `afinar export`: a trained head and its base model as one `.tflite` file for LiteRT,
//! MediaPipe and other TFLite runtimes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use futures_lite::future::block_on;

use crate::args::ModelArgs;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A head written by `afinar train`.
    #[arg(long)]
    head: PathBuf,
    /// The `.tflite` file to write.
    #[arg(long)]
    out: PathBuf,
    /// Every weight in float32 (the base model's dequantized). The only form written so far:
    /// the flag says so explicitly, since a later default may keep the base's quantized layers.
    #[arg(long, required = true)]
    float: bool,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: &ExportArgs) -> Result<bool> {
    let (_, base) = args.model.weights()?;
    let device = afinar::device::cpu();
    let bytes = std::fs::read(&args.head)
        .with_context(|| format!("cannot read {}", args.head.display()))?;
    let (parts, metadata) = afinar::head::load(&bytes, Some(&base.sha256), &device)
        .with_context(|| format!("cannot use {}", args.head.display()))?;
    let model = block_on(afinar::head::export::float_tflite(
        &base,
        &parts,
        &metadata.classes,
    ))?;
    std::fs::write(&args.out, &model)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({:.1} MB, float32): {} classes ({})",
        args.out.display(),
        model.len() as f64 / 1e6,
        metadata.classes.len(),
        metadata.classes.join(", ")
    );
    Ok(true)
}
