//! Native training speed and quality, read together from one run on the CPU: feature extraction
//! (photos/s), the default 10-epoch head recipe on cached features (ms per epoch, total,
//! validation accuracy), the fine-tuning stage (last K blocks), and how time and memory grow
//! with the number of training photos (up to a synthetic set made by augmentation).
//!
//! `cargo bench --bench training -- --data DIR --split CSV --out FILE.json [--quick]`;
//! `scripts/bench` runs it and puts the figures in `bench/results.md`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use afinar::architecture::{FEATURE_DIM, boundary_shape};
use afinar::recipe::{FineTuneConfig, Recipe};
use afinar::train::finetune;
use afinar::train::{Dataset, LabelledFeatures, Part, evaluate, train_head};
use afinar::{Classifier, DEFAULT_MODEL_FILE, FeatureStage, ModelInput};
use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Parser;
use futures_lite::future::block_on;
use image::DynamicImage;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Folder with one sub-folder of photos per class.
    #[arg(long)]
    data: PathBuf,
    /// The fixed train/val split (`relative_path,class,split`).
    #[arg(long)]
    split: PathBuf,
    /// Where to write the figures (JSON).
    #[arg(long)]
    out: PathBuf,
    /// A reduced run: a small subset, a short fine-tuning stage.
    #[arg(long)]
    quick: bool,
    /// Where to write each scaling point's features (`features-N.f32`, `labels-N.u8`), for the
    /// browser's scaling run.
    #[arg(long)]
    features_out: Option<PathBuf>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Sizes of the run: everything for the full benchmark, a few dozen photos for `--quick`.
struct Plan {
    train_limit: Option<usize>,
    val_limit: Option<usize>,
    /// Training-set sizes to time; `None` is "all of the train split".
    scaling: Vec<Option<usize>>,
    finetune_photos: Option<usize>,
    finetune_epochs: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                train_limit: Some(60),
                val_limit: Some(40),
                scaling: vec![Some(30), None, Some(120)],
                finetune_photos: Some(30),
                finetune_epochs: 1,
            }
        } else {
            Plan {
                train_limit: None,
                val_limit: None,
                scaling: vec![Some(250), Some(1000), None, Some(10_000)],
                finetune_photos: None,
                finetune_epochs: 5,
            }
        }
    }
}

/// Milliseconds per epoch, from the training loop's per-epoch callback.
struct EpochTimes {
    last: Instant,
    ms: Vec<f64>,
}

impl EpochTimes {
    fn start() -> Self {
        Self {
            last: Instant::now(),
            ms: Vec::new(),
        }
    }

    /// The callback: records the epoch that just ended and goes on.
    fn record(&mut self) -> bool {
        self.ms.push(self.last.elapsed().as_secs_f64() * 1000.0);
        self.last = Instant::now();
        true
    }
}

/// Peak and current resident memory of this process (Linux), in MB.
fn memory_mb() -> (Option<f64>, Option<f64>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Variant `v` of a photo: 0 is the photo itself; then mirror images and 85 % crops at the
/// four corners — the usual augmentations, so a synthetic large set is as costly as a real one.
fn augmented(image: &DynamicImage, v: usize) -> DynamicImage {
    let mut out = if v % 2 == 1 {
        image.fliph()
    } else {
        image.clone()
    };
    let corner = v / 2;
    if corner > 0 {
        let (w, h) = (out.width(), out.height());
        let (cw, ch) = (w * 85 / 100, h * 85 / 100);
        let x = if corner.is_multiple_of(2) { w - cw } else { 0 };
        let y = if (corner / 2) % 2 == 1 { h - ch } else { 0 };
        out = out.crop_imm(x, y, cw, ch);
    }
    out
}

/// `(photo, variant)` pairs decoded, augmented and cropped in parallel.
fn decode_all(items: &[(PathBuf, usize)]) -> Result<Vec<ModelInput>> {
    items
        .par_iter()
        .map(|(path, v)| {
            let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
            let image =
                afinar::preprocess::decode(&bytes).with_context(|| path.display().to_string())?;
            Ok(ModelInput::from_image(&augmented(&image, *v)))
        })
        .collect()
}

/// Pooled features of `(photo, variant)` pairs, batches of 32 decoded in parallel. Returns the
/// features and the seconds taken after each photo (cumulative).
fn extract(
    classifier: &Classifier,
    items: &[(PathBuf, usize)],
    mut progress: impl FnMut(usize),
) -> Result<(Vec<f32>, Vec<f64>)> {
    let start = Instant::now();
    let mut features = Vec::with_capacity(items.len() * FEATURE_DIM);
    let mut elapsed = Vec::with_capacity(items.len());
    for chunk in items.chunks(32) {
        let inputs = decode_all(chunk)?;
        features.extend(block_on(
            classifier.features(&inputs, FeatureStage::Pooled),
        )?);
        let now = start.elapsed().as_secs_f64();
        elapsed.extend(std::iter::repeat_n(now, chunk.len()));
        progress(elapsed.len());
    }
    Ok((features, elapsed))
}

fn boundary(classifier: &Classifier, paths: &[PathBuf], k: usize) -> Result<(Vec<f32>, f64)> {
    let start = Instant::now();
    let mut out = Vec::new();
    for chunk in paths.chunks(32) {
        let items: Vec<(PathBuf, usize)> = chunk.iter().map(|p| (p.clone(), 0)).collect();
        let inputs = decode_all(&items)?;
        out.extend(block_on(
            classifier.features(&inputs, FeatureStage::Boundary(k)),
        )?);
    }
    Ok((out, start.elapsed().as_secs_f64()))
}

/// The default head recipe on `rows` of `features`, timed, scored on the validation features.
fn train_default(
    num_classes: usize,
    train: LabelledFeatures,
    val: LabelledFeatures,
    device: &Device,
) -> Result<Value> {
    let config = Recipe::new();
    let (_, rss_before) = memory_mb();
    let start = Instant::now();
    let mut epochs = EpochTimes::start();
    let (head, reports) = block_on(train_head(
        &config,
        num_classes,
        train,
        Some(val),
        device,
        |_| epochs.record(),
    ))?;
    let total_ms = start.elapsed().as_secs_f64() * 1000.0;
    let scores = block_on(evaluate(&head, val, device))?;
    let (peak, rss_after) = memory_mb();
    Ok(json!({
        "photos": train.len(),
        "epochs": config.epochs,
        "total_ms": total_ms,
        "ms_per_epoch": epochs.ms,
        "final_train_loss": reports.last().map(|r| r.train_loss),
        "val_accuracy": scores.accuracy,
        "peak_rss_mb": peak,
        "rss_growth_mb": rss_after.zip(rss_before).map(|(a, b)| a - b),
    }))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let plan = Plan::new(args.quick);
    let data = Dataset::from_dir(&args.data)?;
    let csv = std::fs::read_to_string(&args.split)?;
    let parts = data.split_from_csv(&csv, args.data.parent().unwrap_or(Path::new(".")))?;
    let num_classes = data.classes.len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    // Shuffled once so that any prefix of the training photos mixes the classes.
    let mut pick = |part: Part, limit: Option<usize>| {
        let mut rows: Vec<usize> = (0..data.samples.len())
            .filter(|&i| parts[i] == part)
            .collect();
        rows.shuffle(&mut rng);
        rows.truncate(limit.unwrap_or(usize::MAX));
        rows
    };
    let train_rows = pick(Part::Train, plan.train_limit);
    let val_rows = pick(Part::Val, plan.val_limit);
    let path = |i: &usize| data.samples[*i].path.clone();
    let label = |i: &usize| data.samples[*i].class;

    let device = afinar::device::cpu();
    let model_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("www/models")
        .join(DEFAULT_MODEL_FILE);
    let load_start = Instant::now();
    let classifier = Classifier::from_tflite(
        &std::fs::read(&model_path).with_context(|| model_path.display().to_string())?,
        None,
        &device,
    )?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1000.0;
    eprintln!("model loaded in {load_ms:.0} ms");

    // Validation features: the yardstick of every head below.
    let val_items: Vec<(PathBuf, usize)> = val_rows.iter().map(|i| (path(i), 0)).collect();
    let (val_features, _) = extract(&classifier, &val_items, |_| {})?;
    let val_labels: Vec<usize> = val_rows.iter().map(label).collect();
    let val = LabelledFeatures::new(&val_features, &val_labels);

    // Training features: the real photos, then augmented variants for the synthetic sizes.
    let largest = plan
        .scaling
        .iter()
        .map(|n| n.unwrap_or(train_rows.len()))
        .max()
        .unwrap_or(train_rows.len());
    let items: Vec<(PathBuf, usize)> = (0..largest)
        .map(|n| {
            let i = &train_rows[n % train_rows.len()];
            (path(i), n / train_rows.len())
        })
        .collect();
    let labels: Vec<usize> = (0..largest)
        .map(|n| label(&train_rows[n % train_rows.len()]))
        .collect();
    let (features, elapsed) = extract(&classifier, &items, |done| {
        if done % 512 == 0 {
            eprintln!("features: {done}/{largest}");
        }
    })?;
    let all = train_rows.len();
    let photos_per_s = all as f64 / elapsed[all - 1];
    eprintln!("features: {photos_per_s:.1} photos/s over the {all} training photos");

    let mut scaling = Vec::new();
    let mut default_recipe = Value::Null;
    for n in &plan.scaling {
        let n = n.unwrap_or(all);
        let train = LabelledFeatures::new(&features[..n * FEATURE_DIM], &labels[..n]);
        let mut point = train_default(num_classes, train, val, &device)?;
        point["extract_s"] = json!(elapsed[n - 1]);
        point["features_mb"] = json!((n * FEATURE_DIM * 4) as f64 / 1e6);
        point["synthetic"] = json!(n > all);
        eprintln!(
            "{n} photos: head {:.0} ms, val accuracy {:.3}",
            point["total_ms"].as_f64().unwrap_or(f64::NAN),
            point["val_accuracy"].as_f64().unwrap_or(f64::NAN)
        );
        if let Some(dir) = &args.features_out {
            std::fs::create_dir_all(dir)?;
            let bytes: Vec<u8> = features[..n * FEATURE_DIM]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            std::fs::write(dir.join(format!("features-{n}.f32")), bytes)?;
            let label_bytes: Vec<u8> = labels[..n].iter().map(|&l| l as u8).collect();
            std::fs::write(dir.join(format!("labels-{n}.u8")), label_bytes)?;
        }
        if n == all {
            default_recipe = point.clone();
        }
        scaling.push(point);
    }

    // The fine-tuning stage: boundary activations below the last K blocks, the head on the
    // frozen top, then top and head together.
    let k = FineTuneConfig::new().unfreeze;
    let ft_rows: Vec<usize> = train_rows
        .iter()
        .copied()
        .take(plan.finetune_photos.unwrap_or(usize::MAX))
        .collect();
    let ft_paths: Vec<PathBuf> = ft_rows.iter().map(path).collect();
    let val_paths: Vec<PathBuf> = val_rows.iter().map(path).collect();
    let (train_boundary, boundary_s) = boundary(&classifier, &ft_paths, k)?;
    let (val_boundary, _) = boundary(&classifier, &val_paths, k)?;
    let ft_labels: Vec<usize> = ft_rows.iter().map(label).collect();
    let top = classifier.model().top(k);
    let pooled = block_on(finetune::pooled_features(&top, &train_boundary, &device))?;
    let head_start = Instant::now();
    let recipe = Recipe::new();
    let (head, _) = block_on(train_head(
        &recipe,
        num_classes,
        LabelledFeatures::new(&pooled, &ft_labels),
        Some(val),
        &device,
        |_| true,
    ))?;
    let head_ms = head_start.elapsed().as_secs_f64() * 1000.0;
    let frozen = block_on(evaluate(&head, val, &device))?;
    let tuning = FineTuneConfig::new().with_epochs(plan.finetune_epochs);
    let start = Instant::now();
    let mut epochs = EpochTimes::start();
    let train_b = LabelledFeatures::new(&train_boundary, &ft_labels);
    let val_b = LabelledFeatures::new(&val_boundary, &val_labels);
    let (tuned, _, _) = block_on(finetune::fine_tune(
        &recipe,
        &tuning,
        top,
        head,
        train_b,
        Some(val_b),
        &device,
        |_| epochs.record(),
    ))?;
    let tune_ms = start.elapsed().as_secs_f64() * 1000.0;
    let tuned_scores = block_on(finetune::evaluate(&tuned, val_b, &device))?;
    let width: usize = boundary_shape(k).iter().product();
    eprintln!(
        "fine-tuning {k} blocks on {} photos: {tune_ms:.0} ms, val accuracy {:.3} (frozen {:.3})",
        ft_rows.len(),
        tuned_scores.accuracy,
        frozen.accuracy
    );

    let (peak, _) = memory_mb();
    let report = json!({
        "device": "ndarray (CPU)",
        "threads": rayon::current_num_threads(),
        "quick": args.quick,
        "model_load_ms": load_ms,
        "train_photos": all,
        "val_photos": val_rows.len(),
        "features_photos_per_s": photos_per_s,
        "default_recipe": default_recipe,
        "finetune": {
            "unfreeze": k,
            "photos": ft_rows.len(),
            "epochs": tuning.epochs,
            "boundary_photos_per_s": ft_rows.len() as f64 / boundary_s,
            "boundary_mb": (ft_rows.len() * width * 4) as f64 / 1e6,
            "head_ms": head_ms,
            "total_ms": tune_ms,
            "ms_per_epoch": epochs.ms,
            "frozen_val_accuracy": frozen.accuracy,
            "val_accuracy": tuned_scores.accuracy,
        },
        "scaling": scaling,
        "peak_rss_mb": peak,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    Ok(())
}
