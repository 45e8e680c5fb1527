//! A whole project as one `.afinar` file (a zip): `manifest.json`, the photos as they were
//! added (stored, not compressed: they are JPEGs and PNGs already), the trained head. The types
//! are [`afinar_vocabulary::project`]'s; the page writes and reads the file through its worker,
//! the CLI through [`Project::extract`].
//!
//! A file is checked whole before anything is taken from it: a zip whose manifest says it is an
//! Afinar project of a version this build reads, every entry the manifest names present, and
//! every entry's checksum right. So a damaged, foreign or newer file is refused as a whole, and
//! whoever opens it loses nothing.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use afinar_vocabulary::TrainSettings;
use afinar_vocabulary::limits::MAX_CLASSES;
pub use afinar_vocabulary::project::{
    EXTENSION, FORMAT, HEAD_FILE, LastRun, MANIFEST_FILE, MAX_NAME_BYTES, MAX_PHOTOS, Manifest,
    ProjectClass, ProjectPhotoEntry, VERSION,
};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::recipe::Recipe;
use crate::train::{Dataset, Sample};

/// Largest manifest read (a project of tens of thousands of photos stays far below it).
const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Largest photo or head read from a project.
const MAX_ENTRY_BYTES: u64 = 256 << 20;

/// Why a project file cannot be written or opened. The messages are for people.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("this is not an Afinar project file ({0})")]
    Foreign(String),
    #[error(
        "this project was saved by a newer version of Afinar (project format {found}; this one \
         reads up to {VERSION}): update Afinar to open it"
    )]
    Newer { found: u32 },
    #[error("the project file is damaged: {0}")]
    Damaged(String),
    #[error("the project file is refused: {0}")]
    Refused(String),
    #[error("photo {index} names class {class}, but the project has {classes} classes")]
    NoSuchClass {
        index: usize,
        class: usize,
        classes: usize,
    },
    #[error("cannot write the project: {0}")]
    Write(String),
    #[error("{0}")]
    Io(String),
}

fn damaged(what: &str, e: impl std::fmt::Display) -> ProjectError {
    ProjectError::Damaged(format!("{what}: {e}"))
}

/// Writes a project file: its photos one by one ([`Self::add_photo`]), then the manifest and
/// the head ([`Self::finish`]).
pub struct ProjectWriter<W: Write + Seek> {
    zip: ZipWriter<W>,
    classes: Vec<ProjectClass>,
    photos: usize,
}

impl<W: Write + Seek> ProjectWriter<W> {
    /// A project with these classes (in the order the page shows them), written to `sink`.
    pub fn new(sink: W, classes: &[String]) -> Self {
        Self {
            zip: ZipWriter::new(sink),
            classes: classes
                .iter()
                .map(|name| ProjectClass {
                    name: name.clone(),
                    photos: Vec::new(),
                })
                .collect(),
            photos: 0,
        }
    }

    /// Photos written so far.
    pub fn photos(&self) -> usize {
        self.photos
    }

    /// Adds a photo to class `class` under the name it was added with.
    pub fn add_photo(
        &mut self,
        class: usize,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), ProjectError> {
        let classes = self.classes.len();
        let index = self.photos;
        let entry = self
            .classes
            .get_mut(class)
            .ok_or(ProjectError::NoSuchClass {
                index,
                class,
                classes,
            })?;
        // The entry's own name is made up: the user's names may repeat or hold any character.
        let extension = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .filter(|e| is_entry_extension(e))
            .unwrap_or_else(|| "bin".into());
        let file = photo_entry_name(class, entry.photos.len(), &extension);
        write_entry(&mut self.zip, &file, bytes, CompressionMethod::Stored)?;
        entry.photos.push(ProjectPhotoEntry {
            name: name.to_string(),
            file,
        });
        self.photos += 1;
        Ok(())
    }

    /// Writes the manifest (with `settings` and the last run's scores) and the head, and
    /// closes the zip.
    pub fn finish(
        mut self,
        settings: TrainSettings,
        head: Option<&[u8]>,
        last_run: Option<LastRun>,
    ) -> Result<W, ProjectError> {
        if let Some(head) = head {
            write_entry(&mut self.zip, HEAD_FILE, head, CompressionMethod::Deflated)?;
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            written_by: format!("afinar {}", env!("CARGO_PKG_VERSION")),
            classes: self.classes,
            settings,
            head: head.map(|_| HEAD_FILE.into()),
            last_run,
        };
        // What this writes must open again.
        check_manifest(&manifest).map_err(|e| ProjectError::Write(e.to_string()))?;
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| ProjectError::Write(e.to_string()))?;
        write_entry(
            &mut self.zip,
            MANIFEST_FILE,
            &json,
            CompressionMethod::Deflated,
        )?;
        self.zip
            .finish()
            .map_err(|e| ProjectError::Write(e.to_string()))
    }
}

fn write_entry<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    name: &str,
    bytes: &[u8],
    method: CompressionMethod,
) -> Result<(), ProjectError> {
    let options = SimpleFileOptions::default().compression_method(method);
    zip.start_file(name, options)
        .and_then(|()| zip.write_all(bytes).map_err(Into::into))
        .map_err(|e| ProjectError::Write(e.to_string()))
}

/// An opened, checked project file.
pub struct Project<R: Read + Seek> {
    pub manifest: Manifest,
    /// What was set right on opening, for people (a recipe that cannot run is replaced by the
    /// default one, and said so here).
    pub notes: Vec<String>,
    zip: ZipArchive<R>,
}

impl<R: Read + Seek> Project<R> {
    /// Opens a project file and checks it whole (see the module's doc).
    pub fn open(mut source: R) -> Result<Self, ProjectError> {
        // A file that starts as a zip but does not read as one was cut short or corrupted.
        let mut start = [0u8; 4];
        let starts_as_zip = source.read_exact(&mut start).is_ok() && start == *b"PK\x03\x04";
        source
            .rewind()
            .map_err(|e| ProjectError::Io(e.to_string()))?;
        let mut zip = ZipArchive::new(source).map_err(|e| match starts_as_zip {
            true => damaged("it is cut short or corrupted", e),
            false => ProjectError::Foreign(format!("not a zip: {e}")),
        })?;
        let json =
            read_entry(&mut zip, MANIFEST_FILE, MAX_MANIFEST_BYTES).map_err(|e| match e {
                ProjectError::Damaged(_) if zip.index_for_name(MANIFEST_FILE).is_none() => {
                    ProjectError::Foreign(format!("it has no {MANIFEST_FILE}"))
                }
                e => e,
            })?;
        let mut manifest = parse_manifest(&json)?;
        check_manifest(&manifest)?;
        // Entries sharing bytes make a small file inflate many times over under other names.
        if zip
            .has_overlapping_entries()
            .map_err(|e| damaged("its entries", e))?
        {
            return Err(ProjectError::Refused(
                "its entries overlap one another, which no zip tool writes".into(),
            ));
        }
        // A recipe that cannot run (or asks for more than any run does) costs the user nothing
        // to lose: the photos open with the default recipe, and the reason is said.
        let mut notes = Vec::new();
        if let Err(e) = Recipe::from_settings(&manifest.settings).check() {
            notes.push(format!(
                "Its recipe could not be used ({e}); the automatic choice is used instead."
            ));
            manifest.settings = TrainSettings {
                auto: true,
                ..TrainSettings::default()
            };
        }
        let mut project = Self {
            manifest,
            notes,
            zip,
        };
        project.check_entries()?;
        Ok(project)
    }

    /// Every entry the manifest names is there and reads back with the right checksum (each
    /// is named once: [`check_manifest`]).
    fn check_entries(&mut self) -> Result<(), ProjectError> {
        let files: Vec<String> = self
            .manifest
            .photos()
            .map(|(_, p)| p.file.clone())
            .chain(self.manifest.head.clone())
            .collect();
        for file in files {
            read_entry(&mut self.zip, &file, MAX_ENTRY_BYTES)?;
        }
        Ok(())
    }

    /// The bytes of an entry the manifest names.
    pub fn read(&mut self, file: &str) -> Result<Vec<u8>, ProjectError> {
        read_entry(&mut self.zip, file, MAX_ENTRY_BYTES)
    }

    /// The trained head's file, if the project has one.
    pub fn head(&mut self) -> Result<Option<Vec<u8>>, ProjectError> {
        match self.manifest.head.clone() {
            Some(file) => self.read(&file).map(Some),
            None => Ok(None),
        }
    }

    /// Writes the photos into `dir`, one sub-folder per class (numbered: class names may not
    /// be valid folder names), and returns them as a [`Dataset`] in the project's order, with
    /// the class names of the project. Every path stays inside `dir`: the entry names were
    /// checked to be the ones Afinar writes ([`photo_entry_name`]) when the file was opened.
    pub fn extract(&mut self, dir: &Path) -> Result<Dataset, ProjectError> {
        let io = |e: std::io::Error, p: &Path| ProjectError::Io(format!("{}: {e}", p.display()));
        let entries: Vec<(usize, String)> = self
            .manifest
            .photos()
            .map(|(class, p)| (class, p.file.clone()))
            .collect();
        let mut samples = Vec::with_capacity(entries.len());
        for (class, file) in entries {
            let bytes = self.read(&file)?;
            let path: PathBuf = dir.join(&file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
            }
            std::fs::write(&path, bytes).map_err(|e| io(e, &path))?;
            samples.push(Sample { path, class });
        }
        Ok(Dataset {
            classes: self
                .manifest
                .classes
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            samples,
        })
    }
}

/// Reads an entry whole (which checks its checksum), refusing one larger than `limit`.
fn read_entry<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, ProjectError> {
    let entry = zip.by_name(name).map_err(|e| damaged(name, e))?;
    if entry.size() > limit {
        return Err(damaged(
            name,
            format!("{} bytes is too large", entry.size()),
        ));
    }
    // The recorded size is the zip's word only: read one byte past it (and never past the
    // limit) so an entry that inflates to more than it says is caught, not trusted.
    let recorded = entry.size();
    let mut bytes = Vec::with_capacity(usize::try_from(recorded).unwrap_or(0));
    entry
        .take(recorded + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| damaged(name, e))?;
    if bytes.len() as u64 > recorded {
        return Err(damaged(
            name,
            format!("it inflates past its recorded {recorded} bytes"),
        ));
    }
    Ok(bytes)
}

/// The zip entry Afinar writes for the `index`-th photo of class `class` (`ext`: the photo's
/// own extension, [`ProjectWriter::add_photo`]).
fn photo_entry_name(class: usize, index: usize, ext: &str) -> String {
    format!("photos/{class}/{index:05}.{ext}")
}

/// Whether `file` is an entry name [`photo_entry_name`] can make for class `class`: only
/// those are taken from a file, so no name can reach outside the folder a project is
/// extracted into (`../`, absolute paths, drive letters, backslashes) or into another class.
fn is_photo_entry_of(file: &str, class: usize) -> bool {
    let Some(rest) = file.strip_prefix(&format!("photos/{class}/")) else {
        return false;
    };
    let Some((number, ext)) = rest.split_once('.') else {
        return false;
    };
    (1..=9).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
        && is_entry_extension(ext)
}

/// Whether `ext` is an extension [`photo_entry_name`] is given: 1 to 5 lower-case letters or
/// digits (the photo's own, lower-cased, or `bin`).
fn is_entry_extension(ext: &str) -> bool {
    (1..=5).contains(&ext.len())
        && ext
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A name from a file, cut short for a message.
fn shown(name: &str) -> String {
    const MOST: usize = 80;
    match name.char_indices().nth(MOST) {
        Some((at, _)) => format!("{}…", name[..at].escape_debug()),
        None => name.escape_debug().to_string(),
    }
}

/// Refuses a manifest that asks for more than a real project holds, or names an entry Afinar
/// does not write or one entry twice, before anything is read from the zip (a crafted manifest
/// can name one deflate bomb thousands of times). The writer holds itself to it too.
fn check_manifest(manifest: &Manifest) -> Result<(), ProjectError> {
    let refuse = |m: String| Err(ProjectError::Refused(m));
    let classes = manifest.classes.len();
    if classes > MAX_CLASSES {
        return refuse(format!(
            "it has {classes} classes; Afinar trains at most {MAX_CLASSES}"
        ));
    }
    let photos = manifest.photo_count();
    if photos > MAX_PHOTOS {
        return refuse(format!(
            "it has {photos} photos; Afinar opens at most {MAX_PHOTOS}"
        ));
    }
    let mut files = std::collections::HashSet::with_capacity(photos);
    for class in &manifest.classes {
        if class.name.len() > MAX_NAME_BYTES {
            return refuse(format!(
                "a class name is {} bytes long; at most {MAX_NAME_BYTES}",
                class.name.len()
            ));
        }
    }
    for (class, photo) in manifest.photos() {
        let file = photo.file.as_str();
        if !is_photo_entry_of(file, class) {
            return refuse(format!(
                "photo entry “{}” is not a name Afinar writes (photos/{class}/<number>.<ext>)",
                shown(file)
            ));
        }
        if photo.name.len() > MAX_NAME_BYTES {
            return refuse(format!(
                "photo {file} has a name {} bytes long; at most {MAX_NAME_BYTES}",
                photo.name.len()
            ));
        }
        if !files.insert(file) {
            return refuse(format!("photo entry {file} is named more than once"));
        }
    }
    if let Some(head) = &manifest.head
        && head != HEAD_FILE
    {
        return refuse(format!("its head is “{}”, not {HEAD_FILE}", shown(head)));
    }
    if let Some(run) = &manifest.last_run
        && let Some(row) = run.rows.iter().find(|&&row| row >= photos)
    {
        return refuse(format!(
            "its last run names photo {row}, but it has {photos} photos"
        ));
    }
    Ok(())
}

/// The manifest, after its format and version say this build can read the rest.
fn parse_manifest(json: &[u8]) -> Result<Manifest, ProjectError> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| ProjectError::Foreign(format!("{MANIFEST_FILE} is not JSON: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(ProjectError::Foreign(format!(
            "its {MANIFEST_FILE} is not an Afinar project's"
        )));
    }
    let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    if version > u64::from(VERSION) {
        return Err(ProjectError::Newer {
            found: u32::try_from(version).unwrap_or(u32::MAX),
        });
    }
    serde_json::from_value(value).map_err(|e| damaged(MANIFEST_FILE, e))
}

#[cfg(test)]
mod tests;
