//! The user's classes and photos, and the train/validation split.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;

/// Fewest and most classes a head can be trained on.
pub const MIN_CLASSES: usize = 2;
pub const MAX_CLASSES: usize = 20;
/// Fewest photos a class needs (one to learn from, one to check against).
pub const MIN_PHOTOS_PER_CLASS: usize = 2;

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
    #[error("the same photo is in “{first}” and “{second}” ({photo})")]
    SamePhotoInTwoClasses {
        photo: String,
        first: String,
        second: String,
    },
    #[error("{0}")]
    Io(String),
    #[error("split file line {line}: {message}")]
    SplitFile { line: usize, message: String },
}

/// Train or validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Part {
    Train,
    Val,
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
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        matches!(
            e.to_ascii_lowercase().as_str(),
            "jpg" | "jpeg" | "png" | "webp" | "gif" | "bmp"
        )
    })
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
            let mut photos: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map_err(|e| io(e, &folder))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && is_photo(p))
                .collect();
            photos.sort();
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

    /// Refuses a photo (by content hash) that appears in two classes.
    pub fn check_duplicates(&self, hashes: &[String]) -> Result<(), DatasetError> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, (sample, hash)) in self.samples.iter().zip(hashes).enumerate() {
            match seen.get(hash.as_str()) {
                Some(&other) if self.samples[other].class != sample.class => {
                    return Err(DatasetError::SamePhotoInTwoClasses {
                        photo: sample.path.display().to_string(),
                        first: self.classes[self.samples[other].class].clone(),
                        second: self.classes[sample.class].clone(),
                    });
                }
                Some(_) => {}
                None => {
                    seen.insert(hash, i);
                }
            }
        }
        Ok(())
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
