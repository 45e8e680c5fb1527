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

use afinar::{Classifier, FeatureStage, ModelInput};
use anyhow::{Context, Result, bail};
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
    pub hashes: Vec<String>,
}

/// Every photo's rows at `stage`: read from the cache in `cache_dir`, or decoded (in parallel)
/// and computed once, then cached. A photo that cannot be read or decoded is an error that
/// names it.
pub fn cached_features(
    classifier: &Classifier,
    paths: &[PathBuf],
    stage: FeatureStage,
    cache_dir: Option<&Path>,
) -> Result<PhotoRows> {
    let width = stage.width();
    let mut cache = FeatureCache::open(cache_dir, classifier.model_sha256(), &stage.name(), width)?;
    let progress = ProgressBar::new(paths.len() as u64).with_style(
        ProgressStyle::with_template("features {bar:40} {pos}/{len} photos  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut values = Vec::with_capacity(paths.len() * width);
    let mut hashes = Vec::with_capacity(paths.len());
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
            let computed = block_on(classifier.features(&inputs, stage))?;
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
            hashes.push(afinar::preprocess::hex(hash));
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(PhotoRows { values, hashes })
}
