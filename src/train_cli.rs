//! `afinar train` and `afinar eval`: a new head on the user's photo folders, and its scores.

use std::path::{Path, PathBuf};

use afinar::dataset::{Dataset, Part};
use afinar::head::{self, HeadMetadata};
use afinar::train::{Evaluation, LabelledFeatures, TrainConfig, evaluate, train_head};
use afinar::{Classifier, ModelInput};
use anyhow::{Context, Result, bail};
use futures_lite::future::block_on;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::cli::{Backend, load_classifier, model_path};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Folder with one sub-folder of photos per class.
    #[arg(long)]
    data: PathBuf,
    /// CSV `relative_path,class,split` (paths relative to DATA's parent) that decides the split;
    /// without it, a stratified, seeded 80/20 split.
    #[arg(long)]
    split: Option<PathBuf>,
    /// Where to write the trained head (`.safetensors`).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of each class held out for validation when there is no --split.
    #[arg(long, default_value_t = 0.2)]
    val_fraction: f64,
    /// The MobileNetV2 `.tflite` file.
    #[arg(long, env = "AFINAR_MODEL")]
    model: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    device: Backend,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A head written by `afinar train`.
    #[arg(long)]
    head: PathBuf,
    /// Folder with one sub-folder of photos per class (named as the head's classes).
    #[arg(long)]
    data: PathBuf,
    /// With a split CSV, only its validation photos are scored.
    #[arg(long)]
    split: Option<PathBuf>,
    /// Print the scores as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    #[arg(long, env = "AFINAR_MODEL")]
    model: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    device: Backend,
}

/// Decodes every photo (in parallel) and computes its backbone features once.
fn features(classifier: &Classifier, paths: &[PathBuf]) -> Result<Vec<f32>> {
    let progress = ProgressBar::new(paths.len() as u64).with_style(
        ProgressStyle::with_template("features {bar:40} {pos}/{len} photos  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut values = Vec::with_capacity(paths.len() * 1280);
    for chunk in paths.chunks(64) {
        let inputs: Vec<ModelInput> = chunk
            .par_iter()
            .map(|path| {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                ModelInput::from_image_bytes(&bytes).with_context(|| format!("{}", path.display()))
            })
            .collect::<Result<_>>()?;
        values.extend(block_on(classifier.features_async(&inputs))?);
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(values)
}

fn split(
    data: &Dataset,
    csv: Option<&Path>,
    root: &Path,
    val_fraction: f64,
    seed: u64,
) -> Result<Vec<Part>> {
    match csv {
        Some(csv) => {
            let text = std::fs::read_to_string(csv)
                .with_context(|| format!("cannot read {}", csv.display()))?;
            let parent = root.parent().unwrap_or(Path::new("."));
            Ok(data.split_from_csv(&text, parent)?)
        }
        None => Ok(data.stratified_split(val_fraction, seed)),
    }
}

fn rows(features: &[f32], labels: &[usize], parts: &[Part], want: Part) -> (Vec<f32>, Vec<usize>) {
    let mut f = Vec::new();
    let mut l = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if *part == want {
            f.extend_from_slice(&features[i * 1280..(i + 1) * 1280]);
            l.push(labels[i]);
        }
    }
    (f, l)
}

pub fn train(args: &TrainArgs) -> Result<bool> {
    let data = Dataset::from_dir(&args.data)?;
    data.check()?;
    let hashes: Vec<String> = data
        .samples
        .par_iter()
        .map(|s| {
            std::fs::read(&s.path)
                .map(|b| afinar::tflite::sha256_hex(&b))
                .unwrap_or_default()
        })
        .collect();
    // The same photo under two classes teaches the head nothing but confusion; say so, but
    // keep it (public datasets, flower_photos among them, have a few such photos, and a split
    // file lists them).
    if let Err(conflict) = data.check_duplicates(&hashes) {
        eprintln!("warning: {conflict}; it is kept in both classes");
    }
    let parts = split(
        &data,
        args.split.as_deref(),
        &args.data,
        args.val_fraction,
        args.seed,
    )?;
    let model = model_path(args.model.as_deref())?;
    let classifier = load_classifier(&model, args.device)?;
    eprintln!(
        "{} classes ({}), {} photos: {} train, {} validation",
        data.classes.len(),
        data.classes.join(", "),
        data.samples.len(),
        parts.iter().filter(|p| **p == Part::Train).count(),
        parts.iter().filter(|p| **p == Part::Val).count(),
    );
    let paths: Vec<PathBuf> = data.samples.iter().map(|s| s.path.clone()).collect();
    let all = features(&classifier, &paths)?;
    let labels: Vec<usize> = data.samples.iter().map(|s| s.class).collect();
    let (tf, tl) = rows(&all, &labels, &parts, Part::Train);
    let (vf, vl) = rows(&all, &labels, &parts, Part::Val);
    let train = LabelledFeatures {
        features: &tf,
        labels: &tl,
    };
    let val = LabelledFeatures {
        features: &vf,
        labels: &vl,
    };
    let config = TrainConfig::new()
        .with_epochs(args.epochs)
        .with_learning_rate(args.lr)
        .with_batch_size(args.batch)
        .with_seed(args.seed);
    let device = classifier.device().clone();
    let (head, _) = block_on(train_head(
        &config,
        data.classes.len(),
        train,
        Some(val),
        &device,
        |r| {
            println!(
                "epoch {:>3}/{}  train loss {:.4} acc {:.3}  val loss {} acc {}",
                r.epoch,
                args.epochs,
                r.train_loss,
                r.train_accuracy,
                r.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
                r.val_accuracy.map_or("-".into(), |v| format!("{v:.3}")),
            );
            true
        },
    ))?;
    let metadata = HeadMetadata {
        classes: data.classes.clone(),
        base_model_sha256: classifier.model_sha256().to_string(),
        recipe: serde_json::json!({
            "head": "dense128-relu-dense",
            "optimizer": "adam",
            "epochs": config.epochs,
            "learning_rate": config.learning_rate,
            "batch_size": config.batch_size,
            "seed": config.seed,
            "split": args.split.as_ref().map_or(format!("stratified {}", args.val_fraction), |p| p.display().to_string()),
        }),
        preprocessing: head::PREPROCESSING.into(),
    };
    let bytes = block_on(head::save(&head, &metadata))?;
    std::fs::write(&args.out, bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if !val.is_empty() {
        let scores = block_on(evaluate(&head, val, &device))?;
        print_scores(&data.classes, &scores, false);
    }
    eprintln!("head written to {}", args.out.display());
    Ok(true)
}

#[derive(Serialize)]
struct Scores<'a> {
    accuracy: f64,
    classes: &'a [String],
    per_class: serde_json::Map<String, serde_json::Value>,
    confusion: &'a [Vec<usize>],
}

fn print_scores(classes: &[String], e: &Evaluation, json: bool) {
    if json {
        let per_class = classes
            .iter()
            .zip(&e.per_class)
            .map(|(c, a)| (c.clone(), serde_json::json!(a)))
            .collect();
        let scores = Scores {
            accuracy: e.accuracy,
            classes,
            per_class,
            confusion: &e.confusion,
        };
        match serde_json::to_string(&scores) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("error: {err}"),
        }
        return;
    }
    println!(
        "validation accuracy {:.1}% (loss {:.4})",
        e.accuracy * 100.0,
        e.loss
    );
    let width = classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
    for (c, a) in classes.iter().zip(&e.per_class) {
        println!("  {c:<width$}  {:5.1}%", a * 100.0);
    }
    println!("confusion (rows: true class, columns: predicted):");
    for (c, row) in classes.iter().zip(&e.confusion) {
        let cells: Vec<String> = row.iter().map(|n| format!("{n:>5}")).collect();
        println!("  {c:<width$} {}", cells.join(""));
    }
}

pub fn eval(args: &EvalArgs) -> Result<bool> {
    let model = model_path(args.model.as_deref())?;
    let classifier = load_classifier(&model, args.device)?;
    let device = classifier.device().clone();
    let bytes = std::fs::read(&args.head)
        .with_context(|| format!("cannot read {}", args.head.display()))?;
    let (head, metadata) = head::load(&bytes, Some(classifier.model_sha256()), &device)
        .with_context(|| format!("cannot use {}", args.head.display()))?;
    let data = Dataset::from_dir(&args.data)?;
    // Folders are matched to the head's classes by name.
    let mut samples = Vec::new();
    for s in &data.samples {
        let name = &data.classes[s.class];
        match metadata.classes.iter().position(|c| c == name) {
            Some(class) => samples.push(afinar::dataset::Sample {
                path: s.path.clone(),
                class,
            }),
            None => bail!(
                "folder “{name}” is not one of the head's classes ({})",
                metadata.classes.join(", ")
            ),
        }
    }
    let data = Dataset {
        classes: metadata.classes.clone(),
        samples,
    };
    let parts = match &args.split {
        Some(_) => split(&data, args.split.as_deref(), &args.data, 0.0, 0)?,
        None => vec![Part::Val; data.samples.len()],
    };
    let chosen: Vec<PathBuf> = data
        .samples
        .iter()
        .zip(&parts)
        .filter(|(_, p)| **p == Part::Val)
        .map(|(s, _)| s.path.clone())
        .collect();
    let labels: Vec<usize> = data
        .samples
        .iter()
        .zip(&parts)
        .filter(|(_, p)| **p == Part::Val)
        .map(|(s, _)| s.class)
        .collect();
    if chosen.is_empty() {
        bail!("no photos to evaluate in {}", args.data.display());
    }
    let values = features(&classifier, &chosen)?;
    let scores = block_on(evaluate(
        &head,
        LabelledFeatures {
            features: &values,
            labels: &labels,
        },
        &device,
    ))?;
    print_scores(&metadata.classes, &scores, args.json);
    Ok(true)
}
