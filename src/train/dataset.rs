//! The user's classes and photos, and the train/validation split.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use afinar_vocabulary::LeftOut;
pub use afinar_vocabulary::limits::{MAX_CLASSES, MIN_CLASSES, MIN_PHOTOS_PER_CLASS};
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// Why a dataset cannot be trained on. The messages are for people.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DatasetError {
    #[error("{found} classes given; at least {MIN_CLASSES} are needed")]
    TooFewClasses { found: usize },
    #[error("{found} classes given; at most {MAX_CLASSES} are supported")]
    TooManyClasses { found: usize },
    #[error("class “{class}” has no photos")]
    EmptyClass { class: String },
    #[error(
        "class “{class}” has {found} photo(s); each class needs at least {MIN_PHOTOS_PER_CLASS}"
    )]
    TooFewPhotos { class: String, found: usize },
    #[error("two classes are both called “{0}”")]
    DuplicateClass(String),
    #[error("{0}")]
    Io(String),
    #[error("split file line {line}: {message}")]
    SplitFile { line: usize, message: String },
}

/// Where a photo goes in a run: training or validation (or neither, see [`LeftOut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Part {
    Train,
    Val,
    /// Not used by the run: a split never gives it, the run marks its left-out photos with it.
    LeftOut,
}

/// One labelled photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub path: PathBuf,
    pub class: usize,
}

/// Classes (in a fixed order) and their photos.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub classes: Vec<String>,
    pub samples: Vec<Sample>,
}

fn is_photo(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(afinar_vocabulary::limits::is_photo_name)
}

/// The photos (files named as one, [`afinar_vocabulary::limits::is_photo_name`]) in `dir`
/// and in its sub-folders down to `levels` below it, sorted by path. A link to a file counts;
/// a link to a folder is not followed (a loop of links could never end).
pub fn photos_in(dir: &Path, levels: usize) -> Result<Vec<PathBuf>, DatasetError> {
    let mut photos = Vec::new();
    let mut folders = vec![(dir.to_path_buf(), 0)];
    while let Some((folder, level)) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| DatasetError::Io(format!("{}: {e}", folder.display())))?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() && level < levels => folders.push((path, level + 1)),
                Ok(kind) if !kind.is_dir() && path.is_file() && is_photo(&path) => {
                    photos.push(path)
                }
                _ => {}
            }
        }
    }
    photos.sort();
    Ok(photos)
}

impl Dataset {
    /// One sub-folder per class (sorted by name), the photos inside it (sorted).
    pub fn from_dir(dir: &Path) -> Result<Self, DatasetError> {
        let io = |e: std::io::Error, p: &Path| DatasetError::Io(format!("{}: {e}", p.display()));
        let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(e, dir))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        folders.sort();
        let mut classes = Vec::new();
        let mut samples = Vec::new();
        for folder in folders {
            let class = classes.len();
            classes.push(
                folder
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            let photos = photos_in(&folder, 0)?;
            samples.extend(photos.into_iter().map(|path| Sample { path, class }));
        }
        Ok(Self { classes, samples })
    }

    /// Photos per class, in class order.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for s in &self.samples {
            counts[s.class] += 1;
        }
        counts
    }

    /// Checks the class count, duplicate names and photos per class.
    pub fn check(&self) -> Result<(), DatasetError> {
        let found = self.classes.len();
        if found < MIN_CLASSES {
            return Err(DatasetError::TooFewClasses { found });
        }
        if found > MAX_CLASSES {
            return Err(DatasetError::TooManyClasses { found });
        }
        let mut names = std::collections::HashSet::new();
        for name in &self.classes {
            if !names.insert(name.trim().to_lowercase()) {
                return Err(DatasetError::DuplicateClass(name.clone()));
            }
        }
        for (class, count) in self.classes.iter().zip(self.counts()) {
            match count {
                0 => {
                    return Err(DatasetError::EmptyClass {
                        class: class.clone(),
                    });
                }
                n if n < MIN_PHOTOS_PER_CLASS => {
                    return Err(DatasetError::TooFewPhotos {
                        class: class.clone(),
                        found: n,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Photos (by content hash, one per sample) that already are in another class, earlier in
    /// the samples: each is kept only in the class it was added to first, since the same photo
    /// under two labels teaches nothing but confusion. Public datasets have a few (flower_photos
    /// has a rose among its tulips); copies within one class are harmless and stay.
    pub fn cross_class_duplicates(&self, hashes: &[String]) -> Vec<LeftOut> {
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        let mut left_out = Vec::new();
        for (index, (sample, hash)) in self.samples.iter().zip(hashes).enumerate() {
            let first = *first_seen.entry(hash.as_str()).or_insert(index);
            let kept = &self.samples[first];
            if kept.class != sample.class {
                left_out.push(LeftOut {
                    row: index,
                    reason: format!(
                        "{} is the same photo as {} in “{}”; it is used in “{}” only, not in “{}”",
                        sample.path.display(),
                        kept.path.display(),
                        self.classes[kept.class],
                        self.classes[kept.class],
                        self.classes[sample.class],
                    ),
                });
            }
        }
        left_out
    }

    /// The dataset without the samples at `dropped`.
    pub fn without(&self, dropped: &HashSet<usize>) -> Self {
        Self {
            classes: self.classes.clone(),
            samples: self
                .samples
                .iter()
                .enumerate()
                .filter(|(i, _)| !dropped.contains(i))
                .map(|(_, s)| s.clone())
                .collect(),
        }
    }

    /// A stratified split: in each class, `val_fraction` of the photos (at least one) go to
    /// validation, chosen by a seeded shuffle, so the same seed gives the same split.
    pub fn stratified_split(&self, val_fraction: f64, seed: u64) -> Vec<Part> {
        let mut parts = vec![Part::Train; self.samples.len()];
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, s) in self.samples.iter().enumerate() {
            by_class.entry(s.class).or_default().push(i);
        }
        for indices in by_class.values_mut() {
            indices.shuffle(&mut rng);
            let n = indices.len();
            let val =
                ((n as f64 * val_fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1));
            for &i in &indices[..val.min(n)] {
                parts[i] = Part::Val;
            }
        }
        parts
    }

    /// The split from a CSV `relative_path,class,split` (split = train/val; paths relative to
    /// `root`, as in `flower_photos_split.csv`). Photos of the dataset missing from the file are
    /// an error; lines for photos not in the dataset are ignored.
    pub fn split_from_csv(&self, csv: &str, root: &Path) -> Result<Vec<Part>, DatasetError> {
        let mut by_path: HashMap<PathBuf, Part> = HashMap::new();
        for (n, line) in csv.lines().enumerate() {
            let line_no = n + 1;
            let fields: Vec<&str> = line.trim().split(',').map(str::trim).collect();
            if fields.len() < 3 || (n == 0 && fields[2] == "split") || line.trim().is_empty() {
                continue;
            }
            let part = match fields[2] {
                "train" => Part::Train,
                "val" | "validation" => Part::Val,
                other => {
                    return Err(DatasetError::SplitFile {
                        line: line_no,
                        message: format!("split must be train or val, got “{other}”"),
                    });
                }
            };
            by_path.insert(normalize(&root.join(fields[0])), part);
        }
        self.samples
            .iter()
            .map(|s| {
                by_path
                    .get(&normalize(&s.path))
                    .copied()
                    .ok_or_else(|| DatasetError::SplitFile {
                        line: 0,
                        message: format!("{} is not in the split file", s.path.display()),
                    })
            })
            .collect()
    }
}

/// Compares paths without caring about `./` or `a/../` spellings.
fn normalize(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
