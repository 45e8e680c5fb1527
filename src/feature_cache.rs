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

use anyhow::{Context, Result};

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
