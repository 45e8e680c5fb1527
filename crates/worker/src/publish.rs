//! The classifier in use as a web app of its own: the inference worker's files (its wasm-bindgen
//! script and module, fetched beside this worker, from the service worker's copy where it has
//! one), the model file and the head file, written by the core in both forms. Here rather than
//! in the inference worker, which every visit loads: the zip and gzip writers would grow it by
//! a quarter.

use afinar::publish::{AppParts, PublishedApp, WORKER_SCRIPT, WORKER_WASM};
use afinar_protocol::Publication;
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, Response};

use afinar_worker_scope::js_error;

/// Both forms of the app made of `model`, `head` and the inference worker's files.
pub async fn publish(
    scope: &DedicatedWorkerGlobalScope,
    model: &[u8],
    head: &[u8],
    not_sure_below: f64,
) -> Result<Publication, String> {
    let cannot = |e: String| format!("The app could not be published: {e}.");
    let worker_script = own_file(scope, WORKER_SCRIPT).await.map_err(cannot)?;
    let worker_wasm = own_file(scope, WORKER_WASM).await.map_err(cannot)?;
    let app = PublishedApp::new(AppParts {
        model,
        head,
        worker_script: &worker_script,
        worker_wasm: &worker_wasm,
        not_sure_below,
    })
    .map_err(|e| cannot(e.to_string()))?;
    Ok(Publication {
        zip: app.zip().map_err(|e| cannot(e.to_string()))?,
        single_file: app.single_file(),
    })
}

/// One of the inference worker's files, beside this worker's script.
async fn own_file(scope: &DedicatedWorkerGlobalScope, name: &str) -> Result<Vec<u8>, String> {
    let base = scope.location().href();
    let url = web_sys::Url::new_with_base(name, &base).map_err(js_error)?;
    let response: Response = JsFuture::from(scope.fetch_with_str(&url.href()))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    if !response.ok() {
        return Err(format!(
            "{name}: the server answered HTTP {}",
            response.status()
        ));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    Ok(Uint8Array::new(&buffer).to_vec())
}
