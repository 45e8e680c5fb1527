//! `afinar export`: a trained head and its base model as one `.tflite` file for LiteRT,
//! MediaPipe and other TFLite runtimes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use futures_lite::future::block_on;

use afinar::head::export::ExportForm;

use crate::args::ModelArgs;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A head written by `afinar train`.
    #[arg(long)]
    head: PathBuf,
    /// The `.tflite` file to write.
    #[arg(long)]
    out: PathBuf,
    /// Every layer in float32 (the base model's weights dequantized), instead of the base
    /// file's own (quantized) layers below the freeze boundary: larger, and the float anchor
    /// that answers exactly as `afinar classify --head` does.
    #[arg(long)]
    float: bool,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: &ExportArgs) -> Result<bool> {
    let (path, base, file) = args.model.weights()?;
    let device = afinar::device::cpu();
    let bytes = std::fs::read(&args.head)
        .with_context(|| format!("cannot read {}", args.head.display()))?;
    let (parts, metadata) = afinar::head::load(&bytes, Some(&base.sha256), &device)
        .with_context(|| format!("cannot use {}", args.head.display()))?;
    let form = if args.float {
        ExportForm::Float
    } else {
        ExportForm::KeepBase { file: &file }
    };
    let model = block_on(afinar::head::export::tflite(
        &base,
        &parts,
        &metadata.classes,
        form,
    ))
    .with_context(|| format!("cannot export with the base model {}", path.display()))?;
    std::fs::write(&args.out, &model)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({:.1} MB, {}): {} classes ({})",
        args.out.display(),
        model.len() as f64 / 1e6,
        if args.float {
            "float32"
        } else {
            "the base's layers below the trained part kept"
        },
        metadata.classes.len(),
        metadata.classes.join(", ")
    );
    Ok(true)
}
