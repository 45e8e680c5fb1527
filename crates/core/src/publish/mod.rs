//! The trained classifier as a web app of its own, for people to classify photos into the
//! user's classes offline, with nothing to install and no server of anyone's.
//!
//! One app in two forms: a folder (handed over as a zip) for any static host, whose service
//! worker keeps it for offline use; and one `.html` file with every part inlined (gzip, then
//! [`text`]'s base 85), which works opened straight from the disk, where browsers refuse to
//! fetch files.
//! Both run the app's own inference worker (its wasm-bindgen script and module, as the build has
//! them), started from a `blob:` URL so that both forms start the same way. The model and the
//! head travel as they are. What is written depends only on the inputs, so the page and the CLI
//! write the same bytes.

mod page;
pub mod text;

use std::io::{Cursor, Write};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::head::{HeadFileError, HeadWeights};
use crate::preprocess::{hex, sha256_hex};

/// The inference worker's wasm-bindgen script, as the app's build names it.
pub const WORKER_SCRIPT: &str = "afinar-inference-worker.js";
/// The inference worker's wasm module, as the app's build names it.
pub const WORKER_WASM: &str = "afinar-inference-worker_bg.wasm";
/// The folder a published zip unpacks to.
pub const ZIP_FOLDER: &str = "afinar-classifier";
const MODEL: &str = "model.tflite";
const HEAD: &str = "head.safetensors";

const APP_SCRIPT: &str = include_str!("app/app.js");
const APP_STYLE: &str = include_str!("app/style.css");
const SERVICE_WORKER: &str = include_str!("app/sw.js");

/// What a published app is made of.
#[derive(Debug, Clone, Copy)]
pub struct AppParts<'a> {
    /// The base model file the head was trained on.
    pub model: &'a [u8],
    /// The head file (classes, weights, how it was trained).
    pub head: &'a [u8],
    /// The inference worker's script and module ([`WORKER_SCRIPT`], [`WORKER_WASM`]).
    pub worker_script: &'a [u8],
    pub worker_wasm: &'a [u8],
    /// Below this probability a photo is shown as *not sure* instead of in the top class.
    pub not_sure_below: f64,
}

/// Why an app cannot be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the head can't be published: {0}")]
    Head(#[from] HeadFileError),
    #[error("the inference worker's files are not from Afinar's app build ({0})")]
    Worker(&'static str),
    #[error("the not-sure threshold must be between 0 and 1, not {0}")]
    Threshold(f64),
    #[error("the zip could not be written ({0})")]
    Zip(String),
}

/// One file of the folder form.
#[derive(Debug, Clone, PartialEq)]
pub struct AppFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// An app ready to be written in either form, its parts checked.
#[derive(Debug)]
pub struct PublishedApp<'a> {
    parts: AppParts<'a>,
    page: page::Page,
}

impl<'a> PublishedApp<'a> {
    /// Checks the parts: the head must be one trained on this model, the worker's files a
    /// wasm-bindgen script and a wasm module, the threshold a probability.
    pub fn new(parts: AppParts<'a>) -> Result<Self, PublishError> {
        if !(0.0..=1.0).contains(&parts.not_sure_below) {
            return Err(PublishError::Threshold(parts.not_sure_below));
        }
        if !parts.worker_wasm.starts_with(b"\0asm") {
            return Err(PublishError::Worker("its module is not WebAssembly"));
        }
        let script = std::str::from_utf8(parts.worker_script)
            .map_err(|_| PublishError::Worker("its script is not text"))?;
        if !script.contains("wasm_bindgen") {
            return Err(PublishError::Worker("its script is not wasm-bindgen's"));
        }
        let head = HeadWeights::read(parts.head, Some(&sha256_hex(parts.model)))?;
        Ok(Self {
            page: page::Page::describe(&head, parts.not_sure_below),
            parts,
        })
    }

    /// The classes the app sorts photos into.
    pub fn classes(&self) -> &[String] {
        &self.page.classes
    }

    /// The folder form: the files of an app for any static host.
    pub fn folder(&self) -> Vec<AppFile> {
        let file = |name: &str, bytes: &[u8]| AppFile {
            name: name.to_string(),
            bytes: bytes.to_vec(),
        };
        let mut files = vec![
            file("index.html", self.page.folder_html().as_bytes()),
            file("app.js", APP_SCRIPT.as_bytes()),
            file("style.css", APP_STYLE.as_bytes()),
            file(WORKER_SCRIPT, self.parts.worker_script),
            file(WORKER_WASM, self.parts.worker_wasm),
            file(MODEL, self.parts.model),
            file(HEAD, self.parts.head),
        ];
        // The service worker's cache is named after everything it keeps, so a new publication
        // replaces the old cache.
        let mut digest = Sha256::new();
        for f in &files {
            digest.update(f.name.as_bytes());
            digest.update((f.bytes.len() as u64).to_le_bytes());
            digest.update(&f.bytes);
        }
        let cache = hex(&digest.finalize())[..16].to_string();
        let kept: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
        let kept = serde_json::to_string(&kept).unwrap_or_else(|_| "[]".into());
        let service_worker = SERVICE_WORKER
            .replace("{{cache}}", &cache)
            .replace("{{files}}", &kept);
        files.push(file("sw.js", service_worker.as_bytes()));
        files
    }

    /// The folder form as a zip, its files in [`ZIP_FOLDER`].
    pub fn zip(&self) -> Result<Vec<u8>, PublishError> {
        let zip_error = |e: &dyn std::fmt::Display| PublishError::Zip(e.to_string());
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        // A fixed time and mode: the same app gives the same bytes anywhere.
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        for file in self.folder() {
            zip.start_file(format!("{ZIP_FOLDER}/{}", file.name), options)
                .map_err(|e| zip_error(&e))?;
            zip.write_all(&file.bytes).map_err(|e| zip_error(&e))?;
        }
        let cursor = zip.finish().map_err(|e| zip_error(&e))?;
        Ok(cursor.into_inner())
    }

    /// The single-file form: one `.html` with every part inlined.
    pub fn single_file(&self) -> Vec<u8> {
        let inlined = [
            (WORKER_SCRIPT, self.parts.worker_script),
            (WORKER_WASM, self.parts.worker_wasm),
            (MODEL, self.parts.model),
            (HEAD, self.parts.head),
        ]
        .map(|(name, bytes)| (name, text::encode(&gzip(bytes))));
        self.page
            .single_html(APP_SCRIPT, APP_STYLE, &inlined)
            .into_bytes()
    }
}

/// Gzip with no file name and no time in its header, so the same bytes compress the same.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests;
