//! `afinar classify`: the top labels of each photo, ImageNet's or a trained head's.

use std::path::PathBuf;

use afinar::{ModelInput, Prediction};
use anyhow::{Context, Result};
use futures_lite::future::block_on;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::args::ModelArgs;

#[derive(clap::Args)]
pub struct ClassifyArgs {
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
    /// Image files (JPEG, PNG, WebP, GIF, BMP), or folders: the photos in them and in their
    /// sub-folders, in order of path.
    #[arg(required = true)]
    files: Vec<PathBuf>,
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

/// How deep into a folder's sub-folders `classify` looks for photos.
const FOLDER_LEVELS: usize = 16;

/// The files named and the photos in the folders named; `false` where a folder holds none or
/// cannot be read (reported, and the others still answered).
fn photos(paths: &[PathBuf]) -> (Vec<PathBuf>, bool) {
    let mut files = Vec::new();
    let mut all_found = true;
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        match afinar::train::dataset::photos_in(path, FOLDER_LEVELS) {
            Ok(found) if found.is_empty() => {
                eprintln!(
                    "error: {} holds no photos (JPEG, PNG, WebP, GIF, BMP; {FOLDER_LEVELS} \
                     folders deep at most, links to folders not followed)",
                    path.display()
                );
                all_found = false;
            }
            Ok(found) => files.extend(found),
            Err(e) => {
                eprintln!("error: cannot read the folder {e}");
                all_found = false;
            }
        }
    }
    (files, all_found)
}

/// Reads and prepares each file, spread over the cores (decoding dominates for large photos).
fn decode(files: &[PathBuf]) -> Vec<Result<ModelInput, String>> {
    files
        .par_iter()
        .map(|file| {
            let bytes = std::fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
            ModelInput::from_image_bytes(&bytes).map_err(|e| e.to_string())
        })
        .collect()
}

/// Classifies every file; `Ok(false)` when some file could not be classified.
pub fn run(args: &ClassifyArgs) -> Result<bool> {
    let (files, mut all_ok) = photos(&args.files);
    let classifier = args.model.load()?;
    // Which path runs, for whoever compares figures (stderr: stdout is the results).
    eprintln!("{}", classifier.runs_on());
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
    let progress = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} photos  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let top = usize::from(args.top);
    let chunks: Vec<&[PathBuf]> = files.chunks(usize::from(args.batch)).collect();
    let mut next = chunks.first().map(|chunk| decode(chunk));
    for (i, chunk) in chunks.iter().enumerate() {
        let Some(inputs) = next.take() else { break };
        // The prepared photos move to the model; each file keeps only why it failed, if it did.
        let mut good = Vec::with_capacity(inputs.len());
        let failed: Vec<Option<String>> = inputs
            .into_iter()
            .map(|input| match input {
                Ok(input) => {
                    good.push(input);
                    None
                }
                Err(why) => Some(why),
            })
            .collect();
        // The next photos are decoded while these are classified.
        let (result, decoded) = rayon::join(
            || {
                block_on(async {
                    match &head {
                        Some((parts, classes)) => {
                            let k = top.min(classes.len());
                            classifier.classify_trained(&good, parts, classes, k).await
                        }
                        None => classifier.classify(&good, top).await,
                    }
                })
            },
            || chunks.get(i + 1).map(|chunk| decode(chunk)),
        );
        next = decoded;
        let mut predictions = match result {
            Ok(predictions) => predictions.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e.to_string()); good.len()],
        }
        .into_iter();
        for (file, failed) in chunk.iter().zip(failed) {
            let name = file.to_string_lossy();
            let result = match failed {
                None => predictions
                    .next()
                    .unwrap_or_else(|| Err("the model returned no result".to_string())),
                Some(e) => Err(e),
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
