//! `afinar train`: a new head on the user's photo folders, by the library's one training
//! pipeline, with the features from the on-disk cache.

use std::path::{Path, PathBuf};

use crate::data::Data;
use afinar::FeatureStage;
use afinar::architecture::MAX_UNFROZEN_BLOCKS;
use afinar::recipe::Recipe;
use afinar::train::{self, AugmentedRows, Dataset, EpochReport, Part, Split, TrainingSet};
use afinar_vocabulary::{RecipeName, TrainSettings};
use anyhow::{Context, Result, bail};
use burn::config::Config;
use futures_lite::future::block_on;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{CacheArgs, ModelArgs};
use crate::feature_cache::{Views, cached_features};
use crate::scores::{print_disputed, print_scores};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Folder with one sub-folder of photos per class, or a project file saved by the page
    /// (`.afinar`).
    #[arg(long)]
    data: PathBuf,
    /// CSV `relative_path,class,split` (paths relative to DATA's parent) that decides the split;
    /// without it, a stratified, seeded split (--val-fraction).
    #[arg(long)]
    split: Option<PathBuf>,
    /// Where to write the trained head (`.safetensors`).
    #[arg(long)]
    out: PathBuf,
    /// The recipe to start from; the flags below change single settings of it [default: a
    /// project's own recipe, else best].
    #[arg(long, value_enum)]
    recipe: Option<RecipeArg>,
    /// Epochs of the head on the frozen backbone.
    #[arg(long)]
    epochs: Option<usize>,
    /// Adam's learning rate for the head.
    #[arg(long)]
    lr: Option<f64>,
    /// Unfreeze the last K inverted-residual blocks (and the last 1×1 conv) and fine-tune them
    /// with the head after its own epochs [0: no fine-tuning; up to 17].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(0..=MAX_UNFROZEN_BLOCKS as i64))]
    unfreeze: Option<u8>,
    /// Epochs of the fine-tuning stage.
    #[arg(long, value_name = "M")]
    finetune_epochs: Option<usize>,
    /// Learning rate of the fine-tuning stage.
    #[arg(long)]
    finetune_lr: Option<f64>,
    /// Each unfrozen block's learning rate as a share of the block above it's.
    #[arg(long)]
    layer_decay: Option<f64>,
    /// Augmented views per training photo (0: the plain photos only).
    #[arg(long, value_name = "N")]
    views: Option<usize>,
    /// Label smoothing (0: none).
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// AdamW's weight decay (0: plain Adam).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Stop a stage after this many epochs without a better validation score.
    #[arg(long, value_name = "EPOCHS")]
    patience: Option<usize>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Share of each class held out for validation when there is no --split.
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Also write the recipe that ran as JSON (the form the head file keeps).
    #[arg(long, value_name = "FILE")]
    recipe_out: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RecipeArg {
    /// The head alone on the frozen backbone (the Keras transfer-learning recipe).
    Quick,
    /// The head on augmented views of the photos, with a schedule and regularization.
    Better,
    /// Better, then the top of the backbone fine-tuned too.
    Best,
}

impl TrainArgs {
    /// The named recipe (or the project's, as the page would run it on its photos) with the
    /// flags' changes.
    fn recipe(&self, data: &Data) -> Recipe {
        let name = self.recipe.map(|r| match r {
            RecipeArg::Quick => RecipeName::Quick,
            RecipeArg::Better => RecipeName::Better,
            RecipeArg::Best => RecipeName::Best,
        });
        let mut s = match (name, &data.project) {
            (Some(name), _) => TrainSettings::named(name),
            (None, Some(p)) => p.manifest.settings.effective(data.dataset.samples.len(), 1),
            (None, None) => TrainSettings::named(RecipeName::Best),
        };
        fn set<T>(value: Option<T>, field: &mut T) {
            if let Some(v) = value {
                *field = v;
            }
        }
        set(self.epochs, &mut s.epochs);
        set(self.lr, &mut s.learning_rate);
        set(self.batch, &mut s.batch_size);
        set(self.seed, &mut s.seed);
        set(self.val_fraction, &mut s.val_fraction);
        set(self.views, &mut s.views);
        set(self.label_smoothing, &mut s.label_smoothing);
        set(self.weight_decay, &mut s.weight_decay);
        set(self.finetune_epochs, &mut s.finetune_epochs);
        set(self.finetune_lr, &mut s.finetune_learning_rate);
        set(self.layer_decay, &mut s.layer_decay);
        if self.patience.is_some() {
            s.patience = self.patience;
        }
        match self.unfreeze {
            Some(0) => s.unfreeze = None,
            Some(k) => s.unfreeze = Some(usize::from(k)),
            None => {}
        }
        Recipe::from_settings(&s)
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
    // Read before `suspend`, which holds the bar's lock.
    let elapsed = bar.elapsed().as_secs_f64();
    // Not `bar.println`: that prints nothing when the bar is hidden (output not a terminal).
    bar.suspend(|| {
        println!(
            "epoch {:>3}/{}  train loss {:.4} acc {:.3}  val loss {} acc {}  ({:.0} s)",
            r.epoch,
            total,
            r.train_loss,
            r.train_accuracy,
            r.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
            r.val_accuracy.map_or("-".into(), |v| format!("{v:.3}")),
            elapsed,
        )
    });
    bar.inc(1);
}

pub fn run(args: &TrainArgs) -> Result<bool> {
    let data = Data::open(&args.data, args.cache.dir().as_deref())?;
    let recipe = args.recipe(&data);
    recipe.check()?;
    let dataset = data.dataset;
    dataset.check()?;
    let split = match &args.split {
        Some(_) if data.project.is_some() => bail!("--split goes with a folder, not a project"),
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
    // With a fixed split, only the training photos need views.
    let training: Option<Vec<bool>> = match &split {
        Split::Fixed { parts, .. } => Some(parts.iter().map(|p| *p == Part::Train).collect()),
        Split::Stratified => None,
    };
    let views = recipe.augment.as_ref().map(|config| Views {
        config,
        seed: recipe.seed,
        only: training.as_deref(),
    });
    let rows = cached_features(
        &classifier,
        &paths,
        stage,
        views,
        args.cache.dir().as_deref(),
    )?;
    let augmented = (!rows.augmented.is_empty()).then_some(rows.augmented);
    let (pooled, boundary, augmented) = match stage {
        FeatureStage::Pooled => (Some(rows.values), None, augmented.map(|a| (Some(a), None))),
        FeatureStage::Boundary(_) => (None, Some(rows.values), augmented.map(|a| (None, Some(a)))),
    };
    let set = TrainingSet {
        dataset,
        hashes: rows.hashes,
        pooled,
        boundary,
        augmented: augmented.map(|(pooled, boundary)| AugmentedRows {
            views: recipe.augmented_views(),
            pooled,
            boundary,
        }),
        split,
    };
    if let Some(path) = &args.recipe_out {
        recipe
            .save(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
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
    let kept = match run.metadata.unfrozen_blocks {
        0 => "the head alone".to_string(),
        k => format!("the head and the last {k} blocks"),
    };
    println!(
        "kept epoch {} of {} ({kept})",
        run.kept_epoch,
        run.epochs.len()
    );
    if let Some(scores) = &run.scores {
        let photos: Vec<PathBuf> = run
            .val_samples
            .iter()
            .map(|&i| set.dataset.samples[i].path.clone())
            .collect();
        print_scores(&set.dataset.classes, scores, &photos, false);
    }
    // Labels to check: every photo scored by heads trained without it, on its pooled features
    // (the cache's, or those the run computed from the boundary activations).
    let pooled = set.pooled.as_deref().or(run.computed_pooled.as_deref());
    if let Some(pooled) = pooled {
        let labels: Vec<usize> = set.dataset.samples.iter().map(|s| s.class).collect();
        let audit = train::AuditConfig::new().with_seed(recipe.seed);
        let disputed = block_on(train::disputed_labels(
            &audit,
            pooled,
            &labels,
            &run.used_samples,
            set.dataset.classes.len(),
            classifier.device(),
        ))?;
        print_disputed(&set.dataset, &disputed);
    }
    eprintln!("head written to {}", args.out.display());
    Ok(true)
}
