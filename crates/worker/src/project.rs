//! Project files for the page: written from the photos it sends, read from the parts of a file
//! it sends; the zip itself is the library's (`afinar::project`), as for the CLI.

use std::io::Cursor;

use afinar::project::{Project, ProjectWriter};
use afinar_protocol::project::{OpenedProject, ProjectPart, ProjectPhoto, ProjectStart};
use afinar_protocol::{Reply, Request};

/// Size of the parts a finished project goes to the page in: each passes through the page's
/// own memory, which never shrinks.
const PART_BYTES: usize = 8 << 20;

/// The project file being written or read, between the page's requests.
#[derive(Default)]
pub enum ProjectFile {
    #[default]
    None,
    Writing {
        writer: Box<ProjectWriter<Cursor<Vec<u8>>>>,
        start: Box<ProjectStart>,
    },
    /// Parts of a file the user opened, as they arrive.
    Receiving(Vec<u8>),
    Open(Box<Project<Cursor<Vec<u8>>>>),
}

impl ProjectFile {
    /// Handles a project request, posting its replies; other requests are not for it.
    pub fn handle(&mut self, request: Request, post: impl Fn(&Reply)) {
        match request {
            Request::SaveProject(start) => {
                let writer = Box::new(ProjectWriter::new(Cursor::new(Vec::new()), &start.classes));
                *self = Self::Writing { writer, start };
            }
            Request::AddProjectPhotos(photos) => post(&Reply::ProjectProgress(self.add(photos))),
            Request::FinishProject => match self.finish() {
                Ok(bytes) => {
                    // A zip is never empty: it ends with its central directory.
                    let count = bytes.len().div_ceil(PART_BYTES);
                    for (i, part) in bytes.chunks(PART_BYTES).enumerate() {
                        post(&Reply::ProjectBytes(Ok(ProjectPart {
                            bytes: part.to_vec(),
                            last: i + 1 == count,
                        })));
                    }
                }
                Err(message) => post(&Reply::ProjectBytes(Err(message))),
            },
            Request::OpenProjectPart { bytes } => match self {
                Self::Receiving(file) => file.extend_from_slice(&bytes),
                _ => *self = Self::Receiving(bytes),
            },
            Request::OpenProject => post(&Reply::ProjectOpened(self.open())),
            Request::ProjectPhotos { from, count } => {
                post(&Reply::ProjectPhotos(self.photos(from, count)))
            }
            Request::CloseProject => *self = Self::None,
            _ => {}
        }
    }

    fn add(&mut self, photos: Vec<ProjectPhoto>) -> Result<usize, String> {
        let Self::Writing { writer, .. } = self else {
            return Err("No project is being saved.".into());
        };
        for photo in photos {
            writer
                .add_photo(photo.class, &photo.name, &photo.bytes)
                .map_err(|e| e.to_string())?;
        }
        Ok(writer.photos())
    }

    fn finish(&mut self) -> Result<Vec<u8>, String> {
        let Self::Writing { writer, start } = std::mem::take(self) else {
            return Err("No project is being saved.".into());
        };
        let start = *start;
        writer
            .finish(start.settings, start.head.as_deref(), start.last_run)
            .map(Cursor::into_inner)
            .map_err(|e| e.to_string())
    }

    fn open(&mut self) -> Result<Box<OpenedProject>, String> {
        let Self::Receiving(bytes) = std::mem::take(self) else {
            return Err("No project file was received.".into());
        };
        let mut project = Project::open(Cursor::new(bytes)).map_err(|e| e.to_string())?;
        let head = project.head().map_err(|e| e.to_string())?;
        let opened = OpenedProject {
            manifest: project.manifest.clone(),
            head,
            notes: project.notes.clone(),
        };
        *self = Self::Open(Box::new(project));
        Ok(Box::new(opened))
    }

    fn photos(&mut self, from: usize, count: usize) -> Result<Vec<ProjectPhoto>, String> {
        let Self::Open(project) = self else {
            return Err("No project is open.".into());
        };
        let wanted: Vec<(usize, String, String)> = project
            .manifest
            .photos()
            .skip(from)
            .take(count)
            .map(|(class, p)| (class, p.name.clone(), p.file.clone()))
            .collect();
        wanted
            .into_iter()
            .map(|(class, name, file)| {
                let bytes = project.read(&file).map_err(|e| e.to_string())?;
                Ok(ProjectPhoto { class, name, bytes })
            })
            .collect()
    }
}
