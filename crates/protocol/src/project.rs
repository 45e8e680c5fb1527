//! Messages that carry a project file (`.afinar`) between the page and the worker, in parts.
//! The file's format is `afinar_vocabulary::project`'s.

use afinar_vocabulary::TrainSettings;
use afinar_vocabulary::project::{LastRun, Manifest};
use serde::{Deserialize, Serialize};

/// A photo going into a project being saved, or coming out of one being opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectPhoto {
    /// Its class's index in [`Manifest::classes`].
    pub class: usize,
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// What a project being saved holds besides its photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectStart {
    pub classes: Vec<String>,
    pub settings: TrainSettings,
    #[serde(with = "serde_bytes")]
    pub head: Option<Vec<u8>>,
    pub last_run: Option<LastRun>,
}

/// A project file the worker opened and checked: its manifest and head. Its photos follow on
/// request ([`crate::Request::ProjectPhotos`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenedProject {
    pub manifest: Manifest,
    #[serde(with = "serde_bytes")]
    pub head: Option<Vec<u8>>,
    /// What was set right on opening, for people (a recipe that could not be used).
    pub notes: Vec<String>,
}

/// A part of a project file on its way to the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectPart {
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    pub last: bool,
}
