//! On-disk cache of what the frozen backbone computes per photo, so a photo's features are
//! computed once across `afinar train` / `afinar eval` runs.
//!
//! One file per base model and stage (`pooled` features or boundary activations), records of
//! `[sha256 of the photo's bytes (32 bytes)][width × f32 little-endian]`, appended as photos are
//! computed. A record cut short by an interrupted run is dropped.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use afinar::augment::AugmentConfig;
use afinar::{Arithmetic, Classifier, FeatureStage, ModelInput};
use anyhow::{Context, Result};
use futures_lite::future::block_on;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

pub type PhotoHash = [u8; 32];

pub struct FeatureCache {
    path: Option<PathBuf>,
    width: usize,
    rows: HashMap<PhotoHash, Vec<f32>>,
}

impl FeatureCache {
    /// The default folder: `$AFINAR_CACHE_DIR`, else the user's cache folder.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("AFINAR_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("afinar")))
    }

    /// Opens (or starts) the cache of `stage` for the model with `model_sha256`, whose rows have
    /// `width` values. Without a folder, the cache lives in memory only.
    pub fn open(dir: Option<&Path>, model_sha256: &str, stage: &str, width: usize) -> Result<Self> {
        let Some(dir) = dir else {
            return Ok(Self {
                path: None,
                width,
                rows: HashMap::new(),
            });
        };
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
        let model: String = model_sha256.chars().take(16).collect();
        let path = dir.join(format!("features-{model}-{stage}.bin"));
        let mut rows = HashMap::new();
        if let Ok(bytes) = std::fs::read(&path) {
            let record_len = 32 + width * 4;
            let whole = bytes.len() / record_len * record_len;
            if whole != bytes.len() {
                // Drop a record cut short, so that appended records stay aligned.
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(whole as u64))
                    .with_context(|| format!("cannot repair the cache {}", path.display()))?;
            }
            for record in bytes[..whole].chunks_exact(record_len) {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&record[..32]);
                let values = record[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                rows.insert(hash, values);
            }
        }
        Ok(Self {
            path: Some(path),
            width,
            rows,
        })
    }

    pub fn get(&self, hash: &PhotoHash) -> Option<&[f32]> {
        self.rows.get(hash).map(Vec::as_slice)
    }

    /// Adds rows and appends them to the file.
    pub fn insert(&mut self, new: Vec<(PhotoHash, Vec<f32>)>) -> Result<()> {
        if let Some(path) = &self.path {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot write the cache {}", path.display()))?;
            let mut out = BufWriter::new(file);
            for (hash, values) in &new {
                debug_assert_eq!(values.len(), self.width);
                out.write_all(hash)?;
                for v in values {
                    out.write_all(&v.to_le_bytes())?;
                }
            }
            out.flush()?;
        }
        self.rows.extend(new);
        Ok(())
    }
}

/// Photos' rows at one stage of the frozen backbone, with the photos' sha256 (lowercase hex).
pub struct PhotoRows {
    /// One row of `stage.width()` values per photo, in the order asked for.
    pub values: Vec<f32>,
    /// The augmented views' rows: `views` per photo, photo after photo (empty without views).
    pub augmented: Vec<f32>,
    pub hashes: Vec<String>,
}

/// Augmented views to compute beside each photo's plain input.
#[derive(Clone, Copy)]
pub struct Views<'a> {
    pub config: &'a AugmentConfig,
    pub seed: u64,
    /// The photos that need views (all when `None`): training ones, not validation ones. The
    /// others' view rows repeat their plain row, which training never reads.
    pub only: Option<&'a [bool]>,
}

impl Views<'_> {
    /// Cache keys of a photo's views: the photo, the settings that shape a view (not how many
    /// there are, so that asking for more views reuses the first ones), the seed, the view.
    /// `shape` is [`Self::shape`], serialized once per run rather than once per photo.
    fn keys(&self, shape: &[u8], photo: &PhotoHash) -> Vec<PhotoHash> {
        (0..self.config.views)
            .map(|view| {
                Sha256::new()
                    .chain_update(photo)
                    .chain_update(shape)
                    .chain_update(self.seed.to_le_bytes())
                    .chain_update((view as u64).to_le_bytes())
                    .finalize()
                    .into()
            })
            .collect()
    }
}

impl Views<'_> {
    /// The settings that shape a view, as the bytes its cache keys are made from.
    fn shape(&self) -> Vec<u8> {
        serde_json::to_vec(&self.config.clone().with_views(0)).unwrap_or_default()
    }
}

/// A photo read from disk, with the cache keys of its plain input and of its views.
struct Photo {
    hash: PhotoHash,
    bytes: Vec<u8>,
    view_keys: Vec<PhotoHash>,
}

/// Every photo's rows at `stage` (and its augmented views' rows): read from the cache in
/// `cache_dir`, or decoded (in parallel, once per photo) and computed once, then cached. A
/// photo that cannot be read or decoded is an error that names it.
pub fn cached_features(
    classifier: &Classifier,
    paths: &[PathBuf],
    stage: FeatureStage,
    views: Option<Views>,
    cache_dir: Option<&Path>,
) -> Result<PhotoRows> {
    let width = stage.width();
    // The file's integers give other rows than float32 over its weights.
    let name = match classifier.arithmetic() {
        Arithmetic::Integer => format!("{}-integer", stage.name()),
        Arithmetic::Float | Arithmetic::Auto => stage.name(),
    };
    let mut cache = FeatureCache::open(cache_dir, classifier.model_sha256(), &name, width)?;
    let progress = ProgressBar::new(paths.len() as u64).with_style(
        ProgressStyle::with_template("features {bar:40} {pos}/{len} photos  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let view_count = views.map_or(0, |v| v.config.views);
    let shape = views.map(|v| v.shape()).unwrap_or_default();
    let mut values = Vec::with_capacity(paths.len() * width);
    let mut augmented = Vec::with_capacity(paths.len() * width * view_count);
    let mut hashes = Vec::with_capacity(paths.len());
    let chunk_len = (64 / (1 + view_count)).max(4);
    for chunk in paths.chunks(chunk_len) {
        let first = values.len() / width;
        let photos: Vec<Photo> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, path)| {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let hash: PhotoHash = Sha256::digest(&bytes).into();
                let wanted = |v: &Views| {
                    v.only
                        .is_none_or(|only| only.get(first + i) != Some(&false))
                };
                let view_keys = match views {
                    Some(v) if wanted(&v) => v.keys(&shape, &hash),
                    _ => Vec::new(),
                };
                Ok(Photo {
                    hash,
                    bytes,
                    view_keys,
                })
            })
            .collect::<Result<_>>()?;
        let missing: Vec<Vec<(PhotoHash, ModelInput)>> = photos
            .par_iter()
            .zip(chunk)
            .map(|(photo, path)| {
                missing_inputs(photo, views, &cache).with_context(|| format!("{}", path.display()))
            })
            .collect::<Result<_>>()?;
        let missing: Vec<(PhotoHash, ModelInput)> = missing.into_iter().flatten().collect();
        if !missing.is_empty() {
            let inputs: Vec<ModelInput> = missing.iter().map(|(_, i)| i.clone()).collect();
            let computed = block_on(classifier.features(&inputs, stage))?;
            cache.insert(
                missing
                    .iter()
                    .zip(computed.chunks_exact(width))
                    .map(|((hash, _), row)| (*hash, row.to_vec()))
                    .collect(),
            )?;
        }
        for photo in &photos {
            let row = |key| cache.get(key).context("the model returned no features");
            let plain = row(&photo.hash)?;
            values.extend_from_slice(plain);
            for key in &photo.view_keys {
                augmented.extend_from_slice(row(key)?);
            }
            if photo.view_keys.is_empty() {
                for _ in 0..view_count {
                    augmented.extend_from_slice(plain);
                }
            }
            hashes.push(afinar::preprocess::hex(&photo.hash));
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(PhotoRows {
        values,
        augmented,
        hashes,
    })
}

/// The inputs of a photo's plain view and augmented views that the cache does not hold yet,
/// each with its cache key; the photo is decoded only when one is missing.
fn missing_inputs(
    photo: &Photo,
    views: Option<Views>,
    cache: &FeatureCache,
) -> Result<Vec<(PhotoHash, ModelInput)>> {
    let plain_missing = cache.get(&photo.hash).is_none();
    let views_missing: Vec<usize> = (0..photo.view_keys.len())
        .filter(|&v| cache.get(&photo.view_keys[v]).is_none())
        .collect();
    if !plain_missing && views_missing.is_empty() {
        return Ok(Vec::new());
    }
    let image = afinar::preprocess::decode(&photo.bytes)?.to_rgb8();
    let mut inputs = Vec::with_capacity(1 + views_missing.len());
    if plain_missing {
        inputs.push((photo.hash, ModelInput::from_rgb_image(&image)));
    }
    if let Some(views) = views {
        let sha = afinar::preprocess::hex(&photo.hash);
        for v in views_missing {
            let input = views.config.view(&image, &sha, views.seed, v);
            inputs.push((photo.view_keys[v], input));
        }
    }
    Ok(inputs)
}
