//! A whole project as one `.afinar` file: a zip holding `manifest.json` (this module's
//! [`Manifest`]), the photos as they were added, and the trained head (`head.safetensors`).
//! The page saves and opens it through the worker; `afinar train|eval --data P.afinar` read it.
//! The library's `afinar::project` reads and writes the zip; here is the format's vocabulary.

use serde::{Deserialize, Serialize};

use crate::scores::RunScores;
use crate::settings::TrainSettings;

/// What `manifest.json`'s `format` says in every Afinar project.
pub const FORMAT: &str = "afinar-project";
/// The newest format version this build reads and the one it writes. A reader refuses a file
/// of a newer version instead of guessing at it.
pub const VERSION: u32 = 1;
/// The manifest's name inside the zip.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The trained head's name inside the zip (a head file as `afinar train` writes it).
pub const HEAD_FILE: &str = "head.safetensors";
/// The extension of a project file.
pub const EXTENSION: &str = "afinar";
/// Most photos a project may hold (the page and the CLI have been measured at 5,000).
pub const MAX_PHOTOS: usize = 100_000;
/// Longest class or photo name, in bytes.
pub const MAX_NAME_BYTES: usize = 4096;
/// Largest project file the page saves or opens: its worker holds the whole file in its
/// 32-bit memory, next to the model and a copy while the file grows. The CLI has no such limit.
pub const MAX_PAGE_PROJECT_BYTES: u64 = 1 << 30;

/// `manifest.json`: what a project holds and where in the zip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version ([`VERSION`] when written by this build).
    pub version: u32,
    /// The program that wrote the file, e.g. "afinar 0.1.0".
    pub written_by: String,
    /// The classes in the order the page shows them, each with its photos.
    pub classes: Vec<ProjectClass>,
    /// The recipe as the user left it.
    pub settings: TrainSettings,
    /// The zip entry of the trained head, if there is one ([`HEAD_FILE`]).
    pub head: Option<String>,
    /// The last training run's scores, if any.
    pub last_run: Option<LastRun>,
}

/// A class and its photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectClass {
    pub name: String,
    pub photos: Vec<ProjectPhotoEntry>,
}

/// One photo: the name it was added under, and its zip entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectPhotoEntry {
    pub name: String,
    pub file: String,
}

/// The last run's scores, as the page shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    /// The run's scores; its head file is the project's [`HEAD_FILE`].
    pub outcome: RunScores,
    /// For each row of the run's training set, the photo's place in the project: its index
    /// when the classes' photos are listed one class after the other.
    pub rows: Vec<usize>,
}

impl Manifest {
    /// Every photo with its class index, one class after the other (the order of
    /// [`LastRun::rows`] and of the photos a project is opened with).
    pub fn photos(&self) -> impl Iterator<Item = (usize, &ProjectPhotoEntry)> {
        self.classes
            .iter()
            .enumerate()
            .flat_map(|(class, c)| c.photos.iter().map(move |p| (class, p)))
    }

    pub fn photo_count(&self) -> usize {
        self.classes.iter().map(|c| c.photos.len()).sum()
    }
}
