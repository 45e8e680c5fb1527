//! `afinar train`: a new head on the user's photo folders, by the library's one training
//! pipeline, with the features from the on-disk cache.

use std::path::{Path, PathBuf};

use afinar::FeatureStage;
use afinar::architecture::MAX_UNFROZEN_BLOCKS;
use afinar::recipe::{FineTuneConfig, Recipe};
use afinar::train::{self, Dataset, EpochReport, Part, Split, TrainingSet};
use afinar_protocol::defaults;
use anyhow::{Context, Result};
use futures_lite::future::block_on;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{CacheArgs, ModelArgs};
use crate::feature_cache::cached_features;
use crate::scores::print_scores;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Folder with one sub-folder of photos per class.
    #[arg(long)]
    data: PathBuf,
    /// CSV `relative_path,class,split` (paths relative to DATA's parent) that decides the split;
    /// without it, a stratified, seeded split (--val-fraction).
    #[arg(long)]
    split: Option<PathBuf>,
    /// Where to write the trained head (`.safetensors`).
    #[arg(long)]
    out: PathBuf,
    /// Epochs of the head on the frozen backbone.
    #[arg(long, default_value_t = defaults::EPOCHS)]
    epochs: usize,
    /// Adam's learning rate for the head.
    #[arg(long, default_value_t = defaults::LEARNING_RATE)]
    lr: f64,
    /// Then unfreeze the last K inverted-residual blocks (and the last 1×1 conv) and fine-tune
    /// them with the head [1–17; the recipe's K is 2].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(1..=MAX_UNFROZEN_BLOCKS as i64))]
    unfreeze: Option<u8>,
    /// Epochs of the fine-tuning stage.
    #[arg(long, value_name = "M", default_value_t = defaults::FINETUNE_EPOCHS)]
    finetune_epochs: usize,
    /// Learning rate of the fine-tuning stage.
    #[arg(long, default_value_t = defaults::FINETUNE_LEARNING_RATE)]
    finetune_lr: f64,
    #[arg(long, default_value_t = defaults::BATCH_SIZE)]
    batch: usize,
    #[arg(long, default_value_t = defaults::SEED)]
    seed: u64,
    /// Share of each class held out for validation when there is no --split.
    #[arg(long, default_value_t = defaults::VAL_FRACTION)]
    val_fraction: f64,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    cache: CacheArgs,
}

impl TrainArgs {
    fn recipe(&self) -> Recipe {
        Recipe::new()
            .with_epochs(self.epochs)
            .with_learning_rate(self.lr)
            .with_batch_size(self.batch)
            .with_seed(self.seed)
            .with_val_fraction(self.val_fraction)
            .with_finetune(self.unfreeze.map(|k| {
                FineTuneConfig::new()
                    .with_unfreeze(usize::from(k))
                    .with_epochs(self.finetune_epochs)
                    .with_learning_rate(self.finetune_lr)
            }))
    }
}

/// The split from a CSV `relative_path,class,split` whose paths are relative to the data
/// folder's parent.
pub fn split_from_csv(data: &Dataset, csv: &Path, root: &Path) -> Result<Vec<Part>> {
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("cannot read {}", csv.display()))?;
    let parent = root.parent().unwrap_or(Path::new("."));
    Ok(data.split_from_csv(&text, parent)?)
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

pub fn run(args: &TrainArgs) -> Result<bool> {
    let recipe = args.recipe();
    recipe.check()?;
    let dataset = Dataset::from_dir(&args.data)?;
    dataset.check()?;
    let split = match &args.split {
        Some(csv) => Split::Fixed {
            parts: split_from_csv(&dataset, csv, &args.data)?,
            name: csv.display().to_string(),
        },
        None => Split::Stratified,
    };
    let classifier = args.model.load()?;
    eprintln!(
        "{} classes ({}), {} photos",
        dataset.classes.len(),
        dataset.classes.join(", "),
        dataset.samples.len(),
    );
    let paths: Vec<PathBuf> = dataset.samples.iter().map(|s| s.path.clone()).collect();
    // With the fine-tuning stage, the cache holds boundary activations and the pooled features
    // come from running the (still frozen) top over them.
    let stage = recipe
        .finetune
        .as_ref()
        .map_or(FeatureStage::Pooled, |f| FeatureStage::Boundary(f.unfreeze));
    let rows = cached_features(&classifier, &paths, stage, args.cache.dir().as_deref())?;
    let (pooled, boundary) = match stage {
        FeatureStage::Pooled => (Some(rows.values), None),
        FeatureStage::Boundary(_) => (None, Some(rows.values)),
    };
    let set = TrainingSet {
        dataset,
        hashes: rows.hashes,
        pooled,
        boundary,
        split,
    };
    let total_epochs = recipe.total_epochs();
    let bar = epoch_bar(total_epochs);
    let run = block_on(train::run(
        &set,
        &recipe,
        classifier.base(),
        classifier.device(),
        |r| {
            print_epoch(&bar, total_epochs, r);
            true
        },
    ))?;
    bar.finish_and_clear();
    for left_out in &run.left_out {
        eprintln!("warning: {}", left_out.reason);
    }
    let val = run.val_samples.len();
    let train = set.dataset.samples.len() - run.left_out.len() - val;
    eprintln!("trained on {train} photos, validated on {val}");
    std::fs::write(&args.out, &run.head_file)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let (Some(f), Some(alone)) = (&recipe.finetune, &run.head_alone_scores) {
        println!(
            "frozen backbone: validation accuracy {:.1}%; after fine-tuning the last {} blocks:",
            alone.accuracy * 100.0,
            f.unfreeze
        );
    }
    if let Some(scores) = &run.scores {
        print_scores(&set.dataset.classes, scores, false);
    }
    eprintln!("head written to {}", args.out.display());
    Ok(true)
}
