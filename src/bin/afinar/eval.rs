//! `afinar eval`: the scores of a trained head on folders of photos or a project's photos.

use std::path::PathBuf;

use afinar::FeatureStage;
use afinar::train::finetune::{self, FineTuned};
use afinar::train::{Dataset, LabelledFeatures, Part, Sample, evaluate};
use anyhow::{Context, Result, bail};
use futures_lite::future::block_on;

use crate::args::{CacheArgs, ModelArgs};
use crate::data::Data;
use crate::feature_cache::cached_features;
use crate::scores::print_scores;
use crate::train::split_from_csv;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A head written by `afinar train` [default: a project's own head].
    #[arg(long)]
    head: Option<PathBuf>,
    /// Folder with one sub-folder of photos per class (named as the head's classes), or a
    /// project file saved by the page (`.afinar`): its validation photos, split as its recipe
    /// splits them, are scored.
    #[arg(long)]
    data: PathBuf,
    /// With a split CSV, only its validation photos are scored (folders only).
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

pub fn run(args: &EvalArgs) -> Result<bool> {
    let classifier = args.model.load()?;
    let device = classifier.device().clone();
    let opened = Data::open(&args.data, args.cache.dir().as_deref())?;
    let project = opened.project.as_ref();
    let (bytes, head_name) = match (&args.head, project.and_then(|p| p.head.as_ref())) {
        (Some(path), _) => (
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        (None, Some(head)) => (head.clone(), format!("the head in {}", args.data.display())),
        (None, None) if project.is_some() => {
            bail!("{} has no trained head; pass --head", args.data.display())
        }
        (None, None) => bail!("--head is needed with a folder of photos"),
    };
    let (trained, metadata) = afinar::head::load(&bytes, Some(classifier.model_sha256()), &device)
        .with_context(|| format!("cannot use {head_name}"))?;
    let data = opened.dataset;
    // Folders are matched to the head's classes by name.
    let mut samples = Vec::new();
    for s in &data.samples {
        let name = &data.classes[s.class];
        match metadata.classes.iter().position(|c| c == name) {
            Some(class) => samples.push(Sample {
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
    let parts = match (&args.split, project) {
        (Some(_), Some(_)) => bail!("--split goes with a folder, not a project"),
        (Some(csv), None) => split_from_csv(&data, csv, &args.data)?,
        (None, Some(p)) => {
            let s = p.manifest.settings.effective(data.samples.len(), 1);
            data.stratified_split(s.val_fraction, s.seed)
        }
        (None, None) => vec![Part::Val; data.samples.len()],
    };
    let (chosen, labels): (Vec<PathBuf>, Vec<usize>) = data
        .samples
        .iter()
        .zip(&parts)
        .filter(|(_, p)| **p == Part::Val)
        .map(|(s, _)| (s.path.clone(), s.class))
        .unzip();
    if chosen.is_empty() {
        bail!("no photos to evaluate in {}", args.data.display());
    }
    let dir = args.cache.dir();
    let stage = match &trained.top {
        None => FeatureStage::Pooled,
        Some(top) => FeatureStage::Boundary(top.unfrozen()),
    };
    let rows = cached_features(&classifier, &chosen, stage, None, dir.as_deref())?;
    let rows = LabelledFeatures::new(&rows.values, &labels);
    let scores = match trained.top {
        None => block_on(evaluate(&trained.head, rows, &device))?,
        Some(top) => {
            let tuned = FineTuned {
                top,
                head: trained.head,
            };
            block_on(finetune::evaluate(&tuned, rows, &device))?
        }
    };
    print_scores(&metadata.classes, &scores, &chosen, args.json);
    Ok(true)
}
