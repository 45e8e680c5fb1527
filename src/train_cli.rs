//! `afinar train` and `afinar eval`: a new head on the user's photo folders, and its scores.

use std::path::{Path, PathBuf};

use afinar::architecture::{FEATURE_DIM, boundary_shape};
use afinar::dataset::{Dataset, Part};
use afinar::finetune::{self, FineTuneConfig, FineTuned};
use afinar::head::{self, HeadMetadata, TrainedParts};
use afinar::train::{
    EpochReport, Evaluation, LabelledFeatures, TrainConfig, evaluate, select_rows, train_head,
};
use afinar::{Classifier, ModelInput};
use anyhow::{Context, Result, bail};
use futures_lite::future::block_on;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cli::ModelArgs;
use crate::feature_cache::{FeatureCache, PhotoHash};

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
    /// Epochs of the head on the frozen backbone.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Adam's learning rate for the head.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Then unfreeze the last K inverted-residual blocks (and the last 1×1 conv) and fine-tune
    /// them with the head [1–17; the recipe's K is 2].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(1..=17))]
    unfreeze: Option<u8>,
    /// Epochs of the fine-tuning stage.
    #[arg(long, value_name = "M", default_value_t = 5)]
    finetune_epochs: usize,
    /// Learning rate of the fine-tuning stage.
    #[arg(long, default_value_t = 1e-4)]
    finetune_lr: f64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of each class held out for validation when there is no --split.
    #[arg(long, default_value_t = 0.2)]
    val_fraction: f64,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(clap::Args)]
struct CacheArgs {
    /// Folder of the per-photo feature cache [default: $AFINAR_CACHE_DIR, else afinar/ in the
    /// user's cache folder].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Compute every photo's features again and keep nothing on disk.
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(FeatureCache::default_dir)
        }
    }
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
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    cache: CacheArgs,
}

/// What the frozen backbone computes per photo and the trained parts take as input.
#[derive(Clone, Copy)]
enum Stage {
    /// Pooled features (`[1280]`).
    Pooled,
    /// Activations below the last K blocks.
    Boundary(usize),
}

impl Stage {
    fn name(self) -> String {
        match self {
            Stage::Pooled => "pooled".into(),
            Stage::Boundary(k) => format!("boundary{k}"),
        }
    }

    fn width(self) -> usize {
        match self {
            Stage::Pooled => FEATURE_DIM,
            Stage::Boundary(k) => boundary_shape(k).iter().product(),
        }
    }
}

/// Every photo's features (row-major, in `paths` order): read from the cache, or decoded (in
/// parallel) and computed once, then cached.
fn features(
    classifier: &Classifier,
    paths: &[PathBuf],
    stage: Stage,
    cache_dir: Option<&Path>,
) -> Result<Vec<f32>> {
    let width = stage.width();
    let mut cache = FeatureCache::open(cache_dir, classifier.model_sha256(), &stage.name(), width)?;
    let progress = ProgressBar::new(paths.len() as u64).with_style(
        ProgressStyle::with_template("features {bar:40} {pos}/{len} photos  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut values = Vec::with_capacity(paths.len() * width);
    for chunk in paths.chunks(64) {
        let photos: Vec<(PhotoHash, Vec<u8>)> = chunk
            .par_iter()
            .map(|path| {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Ok((Sha256::digest(&bytes).into(), bytes))
            })
            .collect::<Result<_>>()?;
        let missing: Vec<(PhotoHash, ModelInput)> = photos
            .par_iter()
            .zip(chunk)
            .filter(|((hash, _), _)| cache.get(hash).is_none())
            .map(|((hash, bytes), path)| {
                ModelInput::from_image_bytes(bytes)
                    .map(|input| (*hash, input))
                    .with_context(|| format!("{}", path.display()))
            })
            .collect::<Result<_>>()?;
        if !missing.is_empty() {
            let inputs: Vec<ModelInput> = missing.iter().map(|(_, i)| i.clone()).collect();
            let computed = match stage {
                Stage::Pooled => block_on(classifier.features_async(&inputs))?,
                Stage::Boundary(k) => block_on(classifier.boundary_async(&inputs, k))?,
            };
            cache.insert(
                missing
                    .iter()
                    .zip(computed.chunks_exact(width))
                    .map(|((hash, _), row)| (*hash, row.to_vec()))
                    .collect(),
            )?;
        }
        for (hash, _) in &photos {
            match cache.get(hash) {
                Some(row) => values.extend_from_slice(row),
                None => bail!("the model returned no features"),
            }
        }
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

fn epoch_bar(epochs: usize) -> ProgressBar {
    ProgressBar::new(epochs as u64).with_style(
        ProgressStyle::with_template("training {bar:40} epoch {pos}/{len}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

fn print_epoch(bar: &ProgressBar, total: usize, r: &EpochReport) {
    // Not `bar.println`: that prints nothing when the bar is hidden (output not a terminal).
    bar.suspend(|| {
        println!(
            "epoch {:>3}/{}  train loss {:.4} acc {:.3}  val loss {} acc {}",
            r.epoch,
            total,
            r.train_loss,
            r.train_accuracy,
            r.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
            r.val_accuracy.map_or("-".into(), |v| format!("{v:.3}")),
        )
    });
    bar.inc(1);
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
    let classifier = args.model.load()?;
    eprintln!(
        "{} classes ({}), {} photos: {} train, {} validation",
        data.classes.len(),
        data.classes.join(", "),
        data.samples.len(),
        parts.iter().filter(|p| **p == Part::Train).count(),
        parts.iter().filter(|p| **p == Part::Val).count(),
    );
    let paths: Vec<PathBuf> = data.samples.iter().map(|s| s.path.clone()).collect();
    let labels: Vec<usize> = data.samples.iter().map(|s| s.class).collect();
    let device = classifier.device().clone();
    let cache_dir = args.cache.dir();
    let unfreeze = args.unfreeze.map(usize::from);
    // With the fine-tuning stage, the cache holds boundary activations and the pooled features
    // come from running the (still frozen) top over them.
    let stage = unfreeze.map_or(Stage::Pooled, Stage::Boundary);
    let cached = features(&classifier, &paths, stage, cache_dir.as_deref())?;
    let pooled = match unfreeze {
        Some(k) => block_on(finetune::pooled_features(
            &classifier.model().top(k),
            &cached,
            &device,
        ))?,
        None => cached.clone(),
    };
    let (tf, tl) = select_rows(&pooled, FEATURE_DIM, &labels, &parts, Part::Train);
    let (vf, vl) = select_rows(&pooled, FEATURE_DIM, &labels, &parts, Part::Val);
    let train = LabelledFeatures::new(&tf, &tl);
    let val = LabelledFeatures::new(&vf, &vl);
    let config = TrainConfig::new()
        .with_epochs(args.epochs)
        .with_learning_rate(args.lr)
        .with_batch_size(args.batch)
        .with_seed(args.seed);
    let total_epochs = args.epochs + unfreeze.map_or(0, |_| args.finetune_epochs);
    let bar = epoch_bar(total_epochs);
    let (head, _) = block_on(train_head(
        &config,
        data.classes.len(),
        train,
        Some(val),
        &device,
        |r| {
            print_epoch(&bar, total_epochs, r);
            true
        },
    ))?;
    let frozen_scores = (!val.is_empty())
        .then(|| block_on(evaluate(&head, val, &device)))
        .transpose()?;
    let split_name = args
        .split
        .as_ref()
        .map_or(format!("stratified {}", args.val_fraction), |p| {
            p.display().to_string()
        });
    let mut tuning_used = None;
    let (parts_out, scores) = match unfreeze {
        None => (TrainedParts { head, top: None }, frozen_scores.clone()),
        Some(k) => {
            let tuning = FineTuneConfig::new()
                .with_unfreeze(k)
                .with_epochs(args.finetune_epochs)
                .with_learning_rate(args.finetune_lr)
                .with_batch_size(args.batch)
                .with_seed(args.seed);
            let width = Stage::Boundary(k).width();
            let (tb, tl) = select_rows(&cached, width, &labels, &parts, Part::Train);
            let (vb, vl) = select_rows(&cached, width, &labels, &parts, Part::Val);
            let train = LabelledFeatures::new(&tb, &tl);
            let val = LabelledFeatures::new(&vb, &vl);
            let (tuned, _) = block_on(finetune::fine_tune(
                &tuning,
                classifier.model().top(k),
                head,
                train,
                Some(val),
                &device,
                args.epochs + 1,
                |r| {
                    print_epoch(&bar, total_epochs, r);
                    true
                },
            ))?;
            let scores = (!val.is_empty())
                .then(|| block_on(finetune::evaluate(&tuned, val, &device)))
                .transpose()?;
            tuning_used = Some(tuning);
            (
                TrainedParts {
                    head: tuned.head,
                    top: Some(tuned.top),
                },
                scores,
            )
        }
    };
    bar.finish_and_clear();
    let metadata = HeadMetadata {
        classes: data.classes.clone(),
        base_model_sha256: classifier.model_sha256().to_string(),
        recipe: head::recipe(&config, &split_name, tuning_used.as_ref()),
        preprocessing: head::PREPROCESSING.into(),
        unfrozen_blocks: parts_out.unfrozen(),
    };
    let bytes = block_on(head::save(&parts_out, &metadata))?;
    std::fs::write(&args.out, bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let (Some(k), Some(frozen)) = (unfreeze, &frozen_scores) {
        println!(
            "frozen backbone: validation accuracy {:.1}%; after fine-tuning the last {k} blocks:",
            frozen.accuracy * 100.0
        );
    }
    if let Some(scores) = &scores {
        print_scores(&data.classes, scores, false);
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
    let classifier = args.model.load()?;
    let device = classifier.device().clone();
    let bytes = std::fs::read(&args.head)
        .with_context(|| format!("cannot read {}", args.head.display()))?;
    let (trained, metadata) = head::load(&bytes, Some(classifier.model_sha256()), &device)
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
    let dir = args.cache.dir();
    let scores = match trained.top {
        None => {
            let values = features(&classifier, &chosen, Stage::Pooled, dir.as_deref())?;
            block_on(evaluate(
                &trained.head,
                LabelledFeatures::new(&values, &labels),
                &device,
            ))?
        }
        Some(top) => {
            let stage = Stage::Boundary(top.unfrozen());
            let values = features(&classifier, &chosen, stage, dir.as_deref())?;
            let tuned = FineTuned {
                top,
                head: trained.head,
            };
            block_on(finetune::evaluate(
                &tuned,
                LabelledFeatures::new(&values, &labels),
                &device,
            ))?
        }
    };
    print_scores(&metadata.classes, &scores, args.json);
    Ok(true)
}
