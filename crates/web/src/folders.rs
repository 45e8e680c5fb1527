//! Photos out of dropped folders: a drop carries file-system entries, read here into
//! `(folder, name, blob)` triples, so a folder with one sub-folder per class can be dropped as a
//! whole.

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, DataTransfer, File, FileSystemDirectoryEntry, FileSystemDirectoryReader, FileSystemEntry,
    FileSystemFileEntry,
};

/// A dropped photo and the folder it was in (`None` for a file dropped by itself).
pub struct DroppedFile {
    pub folder: Option<String>,
    pub name: String,
    pub blob: Blob,
}

/// One thing dropped: a file-system entry (file or folder), or a plain file where the browser
/// gives no entry (a drop made by a script, for one).
pub enum DropItem {
    Entry(FileSystemEntry),
    File(File),
}

/// The top-level items of a drop. Must be called while the drop event is being handled: the
/// browser empties the list afterwards.
pub fn entries(data: &DataTransfer) -> Vec<DropItem> {
    let items = data.items();
    (0..items.length())
        .filter_map(|i| items.get(i))
        .filter(|item| item.kind() == "file")
        .filter_map(|item| match item.webkit_get_as_entry() {
            Ok(Some(entry)) => Some(DropItem::Entry(entry)),
            _ => item.get_as_file().ok().flatten().map(DropItem::File),
        })
        .collect()
}

/// Every file among `items`, two folder levels deep at most (a folder of class folders).
pub async fn files(items: Vec<DropItem>) -> Result<Vec<DroppedFile>, String> {
    let mut found = Vec::new();
    for item in items {
        match item {
            DropItem::Entry(entry) => collect(entry, None, 0, &mut found).await?,
            DropItem::File(file) => found.push(DroppedFile {
                folder: None,
                name: file.name(),
                blob: file.unchecked_into(),
            }),
        }
    }
    Ok(found)
}

async fn collect(
    entry: FileSystemEntry,
    folder: Option<String>,
    depth: usize,
    found: &mut Vec<DroppedFile>,
) -> Result<(), String> {
    if entry.is_file() {
        let file = file_of(entry.unchecked_ref::<FileSystemFileEntry>()).await?;
        found.push(DroppedFile {
            folder,
            name: entry.name(),
            blob: file,
        });
    } else if entry.is_directory() && depth < 2 {
        let reader = entry
            .unchecked_ref::<FileSystemDirectoryEntry>()
            .create_reader();
        for child in read_all(&reader).await? {
            Box::pin(collect(child, Some(entry.name()), depth + 1, found)).await?;
        }
    }
    Ok(())
}

/// `readEntries` answers in batches (100 in Chromium) until it answers none.
async fn read_all(reader: &FileSystemDirectoryReader) -> Result<Vec<FileSystemEntry>, String> {
    let mut all = Vec::new();
    loop {
        let batch = callback_promise(|ok, err| {
            reader
                .read_entries_with_callback_and_callback(ok, err)
                .map_err(|e| crate::link::describe(&e))
        })
        .await?;
        let batch: Array = batch.unchecked_into();
        if batch.length() == 0 {
            return Ok(all);
        }
        all.extend(batch.iter().map(|e| e.unchecked_into::<FileSystemEntry>()));
    }
}

async fn file_of(entry: &FileSystemFileEntry) -> Result<Blob, String> {
    let file = callback_promise(|ok, err| {
        entry.file_with_callback_and_callback(ok, err);
        Ok(())
    })
    .await?;
    Ok(file.unchecked_into())
}

/// Turns a callback-style file-system call into a future.
async fn callback_promise(
    call: impl FnOnce(&Function, &Function) -> Result<(), String>,
) -> Result<JsValue, String> {
    let mut outcome = Ok(());
    let mut call = Some(call);
    let promise = Promise::new(&mut |resolve, reject| {
        if let Some(call) = call.take() {
            outcome = call(&resolve, &reject);
        }
    });
    outcome?;
    JsFuture::from(promise)
        .await
        .map_err(|e| crate::link::describe(&e))
}
