//! `--data`: a folder with one sub-folder of photos per class, or a project file saved by the
//! page (`.afinar`), whose photos are written out to a folder of their own first.

use std::path::{Path, PathBuf};

use afinar::project::{Manifest, Project};
use afinar::train::Dataset;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// The photos of `--data`, and the project's manifest and head when it is a project file.
pub struct Data {
    pub dataset: Dataset,
    pub project: Option<ProjectContents>,
}

/// A project file's manifest and trained head (its photos are extracted into the dataset).
pub struct ProjectContents {
    pub manifest: Manifest,
    pub head: Option<Vec<u8>>,
}

impl Data {
    /// Reads a folder of class folders or a project file; a project's photos go under
    /// `cache` (or the system's temporary folder), in a folder named after the file's hash.
    pub fn open(path: &Path, cache: Option<&Path>) -> Result<Self> {
        if path.is_dir() {
            return Ok(Self {
                dataset: Dataset::from_dir(path)?,
                project: None,
            });
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut project = Project::open(std::io::Cursor::new(&bytes[..]))
            .with_context(|| format!("cannot open {}", path.display()))?;
        let hash = Sha256::digest(&bytes);
        let name: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        let dir: PathBuf = cache
            .map_or_else(std::env::temp_dir, Path::to_path_buf)
            .join("projects")
            .join(name);
        let dataset = project
            .extract(&dir)
            .with_context(|| format!("cannot unpack {}", path.display()))?;
        for note in &project.notes {
            eprintln!("{}: {note}", path.display());
        }
        let head = project.head()?;
        Ok(Self {
            dataset,
            project: Some(ProjectContents {
                manifest: project.manifest,
                head,
            }),
        })
    }
}
