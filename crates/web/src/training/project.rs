//! The whole project as one file. *Save project* writes the classes, their photos, the recipe,
//! the trained head and the last run's scores into a `.afinar` file; *Open project* has the
//! worker check a file whole and only then replaces the page's project with it, so a damaged,
//! foreign or newer file changes nothing. The worker writes and reads the zip with the library's
//! code, as `afinar train --data P.afinar` does.

use std::collections::HashMap;

use leptos::prelude::*;
use web_sys::{Blob, BlobPropertyBag, File};

use super::head::download_parts;
use super::state::{
    Hold, LabelCheck, ProjectJob, RunResult, TrainPhoto, Training, run_local, use_training,
};
use crate::link::read_blob;
use afinar_protocol::Request;
use afinar_protocol::project::{OpenedProject, ProjectPart, ProjectPhoto, ProjectStart};
use afinar_vocabulary::project::{LastRun, MAX_PAGE_PROJECT_BYTES};
use afinar_web::roster::TrainClass;

/// Name a saved project gets.
const PROJECT_FILE: &str = "afinar-project.afinar";
/// Photo bytes per message to the worker while saving.
const SAVE_BATCH_BYTES: usize = 4 << 20;
/// Photos per message from the worker while opening.
const OPEN_BATCH: usize = 24;
/// Bytes in a GiB, for messages.
const GIB: f64 = (1u64 << 30) as f64;
/// Bytes of an opened file per message to the worker.
const READ_PART_BYTES: f64 = 8.0 * 1024.0 * 1024.0;

impl Training {
    fn project_request(self, request: Request) {
        self.with_link(|link| link.project(request));
    }

    /// Ends the save or open under way with `message`; the worker forgets its part.
    pub(super) fn project_failed(self, message: String) {
        let kept = self.drop_opened_project();
        self.project_job.set_value(ProjectJob::Idle);
        self.project.set(None);
        self.project_request(Request::CloseProject);
        self.say(format!("{message}{kept}"));
    }

    /// The photos in project order (class by class, each class's in the page's order), each
    /// with its class's index.
    fn photos_by_class(self) -> Vec<(usize, TrainPhoto)> {
        let classes = self.classes.get_untracked();
        self.photos.with_untracked(|photos| {
            classes
                .iter()
                .enumerate()
                .flat_map(|(i, c)| {
                    photos
                        .iter()
                        .filter(move |p| p.class_id == c.id)
                        .map(move |p| (i, p.clone()))
                })
                .collect()
        })
    }

    /// The bytes of the photos and the head, when they are more than the page can save as one
    /// project.
    pub(super) fn too_large_to_save(self) -> Option<f64> {
        let photos: f64 = self.blobs.with_value(|b| b.values().map(Blob::size).sum());
        let head = self
            .head_file
            .with_value(|h| h.as_ref().map_or(0, Vec::len)) as f64;
        // Room for the manifest and the zip's headers, so that what is saved opens again.
        const MARGIN: f64 = (64u64 << 20) as f64;
        let bytes = photos + head;
        (bytes + MARGIN > MAX_PAGE_PROJECT_BYTES as f64).then_some(bytes)
    }

    fn save_project(self) {
        if self.is_running() || self.project_busy() || self.kept_elsewhere() {
            return;
        }
        if let Some(bytes) = self.too_large_to_save() {
            self.say(format!(
                "The photos come to {:.2} GiB, more than the {} GiB a project saved from the \
                 page can hold. Nothing was saved: remove some photos to save the rest.",
                bytes / GIB,
                MAX_PAGE_PROJECT_BYTES >> 30
            ));
            return;
        }
        let photos = self.photos_by_class();
        let place: HashMap<u32, usize> = photos
            .iter()
            .enumerate()
            .map(|(i, (_, p))| (p.id, i))
            .collect();
        // The last run's scores go along while all of its photos are still here.
        let last_run = self.result.get_untracked().and_then(|r| {
            let rows = r.photo_ids.iter().map(|id| place.get(id).copied());
            Some(LastRun {
                rows: rows.collect::<Option<_>>()?,
                outcome: r.outcome,
            })
        });
        let start = ProjectStart {
            classes: self
                .classes
                .with_untracked(|l| l.iter().map(|c| c.name.clone()).collect()),
            settings: self.settings.get_untracked(),
            head: self.head_file.get_value(),
            last_run,
        };
        let total = photos.len();
        self.project_job.set_value(ProjectJob::Saving {
            photos: total,
            parts: js_sys::Array::new(),
        });
        self.project
            .set(Some(format!("Saving the project: 0 of {total} photos…")));
        self.project_request(Request::SaveProject(Box::new(start)));
        run_local(async move {
            let mut batch = Vec::new();
            let mut batch_bytes = 0;
            for (class, photo) in photos {
                let saving = self
                    .project_job
                    .with_value(|job| matches!(job, ProjectJob::Saving { .. }));
                if !saving {
                    return;
                }
                let read = match self.blob(photo.id) {
                    Some(blob) => read_blob(&blob).await,
                    None => Err("it is gone".into()),
                };
                let bytes = match read {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        return self.project_failed(format!(
                            "The project was not saved: the photo “{}” could not be read ({e}).",
                            photo.name
                        ));
                    }
                };
                batch_bytes += bytes.len();
                batch.push(ProjectPhoto {
                    class,
                    name: photo.name,
                    bytes,
                });
                if batch_bytes >= SAVE_BATCH_BYTES {
                    batch_bytes = 0;
                    self.project_request(Request::AddProjectPhotos(std::mem::take(&mut batch)));
                }
            }
            if !batch.is_empty() {
                self.project_request(Request::AddProjectPhotos(batch));
            }
            self.project_request(Request::FinishProject);
        });
    }

    fn saved_part(self, part: &ProjectPart) {
        let finished = self.project_job.with_value(|job| match job {
            ProjectJob::Saving { parts, photos } => {
                parts.push(&js_sys::Uint8Array::from(&part.bytes[..]));
                part.last.then(|| (parts.clone(), *photos))
            }
            _ => None,
        });
        let Some((parts, photos)) = finished else {
            return;
        };
        self.project_job.set_value(ProjectJob::Idle);
        self.project.set(None);
        let bytes: f64 = parts
            .iter()
            .map(|p| js_sys::Uint8Array::from(p).length() as f64)
            .sum();
        download_parts(&parts, PROJECT_FILE);
        let classes = self.classes.with_untracked(Vec::len);
        let head = match self.head_file.with_value(Option::is_some) {
            true => ", the trained head and its scores",
            false => "",
        };
        self.say(format!(
            "Saved {PROJECT_FILE} ({:.1} MB): {photos} photos in {classes} classes, the \
             recipe{head}. Open it with Open project (here or in another browser), or train on \
             it with afinar train --data {PROJECT_FILE}.",
            bytes / 1e6
        ));
    }

    fn open_project(self, file: File) {
        let name = file.name();
        if self.kept_elsewhere() {
            return;
        }
        if self.is_running() {
            self.say("Training is under way: open the project once it ends.");
            return;
        }
        if self.project_busy() {
            return;
        }
        if file.size() == 0.0 {
            self.say(format!(
                "Could not open {name}: the file is empty. Nothing was changed."
            ));
            return;
        }
        if file.size() > MAX_PAGE_PROJECT_BYTES as f64 {
            self.say(format!(
                "Could not open {name}: it is {:.2} GiB, and the page opens projects up to \
                 {} GiB. Nothing was changed. The command-line afinar reads it whole \
                 (afinar train --data {name}).",
                file.size() / GIB,
                MAX_PAGE_PROJECT_BYTES >> 30
            ));
            return;
        }
        let photos = self.photos.with_untracked(Vec::len);
        if photos > 0 {
            let question = format!(
                "Open {name}? It replaces the {photos} photos and the classes here (save them \
                 as a project first to keep them)."
            );
            if !window().confirm_with_message(&question).unwrap_or(false) {
                return;
            }
        }
        self.project_request(Request::CloseProject);
        self.project_job.set_value(ProjectJob::Opening {
            name: name.clone(),
            opened: None,
            ids: Vec::new(),
        });
        self.project.set(Some(format!("Reading {name}…")));
        run_local(async move {
            let size = file.size();
            let mut at = 0.0;
            while at < size {
                let end = (at + READ_PART_BYTES).min(size);
                let part = match file.slice_with_f64_and_f64(at, end) {
                    Ok(part) => read_blob(&part).await,
                    Err(e) => Err(crate::link::describe(&e)),
                };
                match part {
                    Ok(bytes) => self.project_request(Request::OpenProjectPart { bytes }),
                    Err(e) => {
                        return self.project_failed(format!(
                            "Could not read {name} ({e}). Nothing was changed."
                        ));
                    }
                }
                at = end;
                self.project
                    .set(Some(format!("Reading {name}: {:.0} %…", 100.0 * at / size)));
            }
            self.project.set(Some(format!("Checking {name}…")));
            self.project_request(Request::OpenProject);
        });
    }

    /// The worker checked the opened file: the page's project gives way to it.
    fn replace_project(self, opened: &OpenedProject) {
        // The store keeps the project there was until this one has arrived whole.
        self.hold.set_value(Hold::Arriving);
        let gone: Vec<u32> = self
            .photos
            .with_untracked(|l| l.iter().map(|p| p.id).collect());
        self.photos.set(Vec::new());
        self.forget_photos(gone);
        self.result.set(None);
        self.epochs.set(Vec::new());
        self.forget_head();
        let m = &opened.manifest;
        self.classes.set(
            m.classes
                .iter()
                .enumerate()
                .map(|(i, c)| TrainClass {
                    id: i as u32,
                    name: c.name.clone(),
                })
                .collect(),
        );
        self.settings.set(m.settings.clone());
        self.project_job.update_value(|job| {
            if let ProjectJob::Opening { opened: slot, .. } = job {
                *slot = Some(Box::new(opened.clone()));
            }
        });
        self.next_project_photos(0, m.photo_count());
    }

    fn next_project_photos(self, done: usize, total: usize) {
        if done >= total {
            return self.project_opened();
        }
        self.project.set(Some(format!(
            "Opening the project: {done} of {total} photos…"
        )));
        self.project_request(Request::ProjectPhotos {
            from: done,
            count: OPEN_BATCH,
        });
    }

    fn add_project_photos(self, photos: &[ProjectPhoto]) {
        let mut added = Vec::with_capacity(photos.len());
        for p in photos {
            match blob_of(&p.bytes, &p.name) {
                Some(blob) => added.push((p.class as u32, p.name.clone(), blob)),
                None => {
                    return self.project_failed(format!(
                        "The photo “{}” could not be kept in this page.",
                        p.name
                    ));
                }
            }
        }
        let ids = self.add_to_classes(added);
        let progress = self.project_job.try_update_value(|job| match job {
            ProjectJob::Opening {
                opened: Some(opened),
                ids: all,
                ..
            } => {
                all.extend(ids);
                Some((all.len(), opened.manifest.photo_count()))
            }
            _ => None,
        });
        if let Some(Some((done, total))) = progress {
            self.next_project_photos(done, total);
        }
    }

    /// Every photo is in: the last run's scores and the head come back too.
    fn project_opened(self) {
        let ProjectJob::Opening {
            name,
            opened: Some(opened),
            ids,
        } = self
            .project_job
            .try_update_value(std::mem::take)
            .unwrap_or_default()
        else {
            return;
        };
        self.project.set(None);
        self.project_request(Request::CloseProject);
        let OpenedProject {
            manifest,
            head,
            notes,
        } = *opened;
        if let Some(run) = manifest.last_run {
            let photo_ids: Option<Vec<u32>> =
                run.rows.iter().map(|&r| ids.get(r).copied()).collect();
            if let Some(photo_ids) = photo_ids {
                self.epochs.set(run.outcome.epochs.clone());
                self.result.set(Some(RunResult {
                    outcome: run.outcome,
                    photo_ids,
                    labels: LabelCheck::Failed(
                        "The labels of the project's run were not checked here; train again to \
                         check them."
                            .into(),
                    ),
                }));
            }
        }
        self.keep_opened_project(name.clone());
        let with_head = match head {
            Some(head) => {
                // Kept once the worker accepts it (`head_ready`); a refusal is said.
                self.import_head(head, false);
                ", with its trained head"
            }
            None => "",
        };
        let notes: String = notes.iter().map(|n| format!(" {n}")).collect();
        self.say(format!(
            "Opened {name}: {} photos in {} classes{with_head}. The photos are being prepared \
             for training.{notes}",
            ids.len(),
            manifest.classes.len()
        ));
    }

    /// Photos written to the project being saved so far, or why it cannot be written.
    pub fn project_progress(self, result: Result<usize, String>) {
        match result {
            Ok(done) => {
                if let Some(total) = self.project_job.with_value(|job| match job {
                    ProjectJob::Saving { photos, .. } => Some(*photos),
                    _ => None,
                }) {
                    self.project.set(Some(format!(
                        "Saving the project: {done} of {total} photos…"
                    )));
                }
            }
            Err(message) => self.project_failed(format!("The project was not saved: {message}")),
        }
    }

    /// A part of the project file being saved, or why it cannot be written.
    pub fn project_bytes(self, result: Result<ProjectPart, String>) {
        match result {
            Ok(part) => self.saved_part(&part),
            Err(message) => self.project_failed(format!("The project was not saved: {message}")),
        }
    }

    /// The worker checked the project file being opened (or refused it).
    pub fn project_checked(self, result: Result<Box<OpenedProject>, String>) {
        let name = self.project_job.with_value(|job| match job {
            ProjectJob::Opening { name, .. } => name.clone(),
            _ => String::new(),
        });
        match result {
            Ok(opened) => self.replace_project(&opened),
            Err(message) => self.project_failed(format!(
                "Could not open {name}: {message}. Nothing was changed."
            )),
        }
    }

    /// Photos of the project being opened, or why they could not be read.
    pub fn project_photos(self, result: Result<Vec<ProjectPhoto>, String>) {
        match result {
            Ok(photos) => self.add_project_photos(&photos),
            Err(message) => {
                self.project_failed(format!("The project could not be opened whole: {message}"))
            }
        }
    }
}

/// A photo's bytes as a file the page keeps, typed by its name.
fn blob_of(bytes: &[u8], name: &str) -> Option<Blob> {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let kind = match extension.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        _ => "",
    };
    let options = BlobPropertyBag::new();
    options.set_type(kind);
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()
}

/// *Save project*, *Open project* and where a save or open is.
#[component]
pub fn ProjectControls() -> impl IntoView {
    let training = use_training();
    let open = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            training.open_project(file);
        }
        input.set_value("");
    };
    let busy = move || training.project.with(Option::is_some);
    view! {
        <div class="intake-actions project-actions">
            <button
                data-testid="save-project"
                title="The classes, their photos, the recipe, the trained head and its scores, as one file"
                disabled=move || busy() || training.photos.with(Vec::is_empty)
                on:click=move |_| training.save_project()
            >
                "Save project"
            </button>
            <label class="button subtle" class:disabled=busy>
                "Open project…"
                <input
                    type="file"
                    accept=".afinar"
                    class="visually-hidden"
                    data-testid="open-project"
                    disabled=busy
                    on:change=open
                />
            </label>
            <span class="muted" role="status" data-testid="project-status">
                {move || training.project.get()}
            </span>
        </div>
    }
}
