//! The model's bytes: from Cache Storage when an earlier visit kept them, else downloaded with
//! progress, then kept for the next visit.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Cache, DedicatedWorkerGlobalScope, Headers, ReadableStreamDefaultReader,
    ReadableStreamReadResult, Response, ResponseInit,
};

use afinar_protocol::{ModelSource, Reply};
use afinar_worker_scope::js_error;

/// Cache Storage bucket that keeps the downloaded model between visits.
const MODEL_CACHE: &str = "afinar-models-v1";
/// The header of a kept model that records its sha256 when it was kept: a copy that no longer
/// matches it (a damaged disk, a write cut short) is downloaded again, not read.
const SHA256_HEADER: &str = "x-afinar-sha256";

async fn open_cache(scope: &DedicatedWorkerGlobalScope) -> Option<Cache> {
    let storage = scope.caches().ok()?;
    JsFuture::from(storage.open(MODEL_CACHE))
        .await
        .ok()
        .map(JsCast::unchecked_into)
}

/// The sha256 of `bytes` in hex: the browser's native SHA-256 where it offers one (secure
/// contexts, which is where the app runs but for plain-http hosts), else the core's.
pub async fn sha256_hex(scope: &DedicatedWorkerGlobalScope, bytes: &[u8]) -> String {
    // `digest` copies the bytes before it returns, so the view into wasm memory it is given
    // is not read again later.
    let digest = scope.crypto().and_then(|crypto| {
        crypto
            .subtle()
            .digest_with_str_and_u8_array("SHA-256", bytes)
    });
    if let Ok(promise) = digest
        && let Ok(buffer) = JsFuture::from(promise).await
    {
        let digest = Uint8Array::new(&buffer).to_vec();
        if digest.len() == 32 {
            return afinar_core::preprocess::hex(&digest);
        }
    }
    afinar_core::preprocess::sha256_hex(bytes)
}

/// The model's bytes and where they came from.
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// Their sha256 in hex.
    pub sha256: String,
    pub source: ModelSource,
    /// To be kept in the cache (with its sha256) once it is found to work.
    pub keep: bool,
}

/// The bytes at `url`, from the cache or the network; `report` sees status and progress.
pub async fn fetch_model(
    scope: &DedicatedWorkerGlobalScope,
    url: &str,
    report: impl Fn(Reply),
) -> Result<Fetched, String> {
    if let Some(cache) = open_cache(scope).await
        && let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await
        && let Ok(response) = hit.dyn_into::<Response>()
    {
        report(Reply::Status(
            "Reading the model from this browser's cache…".into(),
        ));
        let kept_as = response.headers().get(SHA256_HEADER).ok().flatten();
        let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
            .await
            .map_err(js_error)?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        let sha256 = sha256_hex(scope, &bytes).await;
        // A copy kept by a build before the sha256 was recorded is read, and kept again with it.
        let keep = match kept_as {
            None => Some(true),
            Some(kept) if kept == sha256 => Some(false),
            Some(_) => None,
        };
        if let Some(keep) = keep {
            let size = bytes.len() as u64;
            report(Reply::Download {
                loaded: size,
                total: Some(size),
            });
            return Ok(Fetched {
                bytes,
                sha256,
                source: ModelSource::Cache,
                keep,
            });
        }
        forget_model(scope, url).await;
        report(Reply::Status(
            "The model kept in this browser is damaged; downloading it again…".into(),
        ));
    }

    let response: Response = JsFuture::from(scope.fetch_with_str(url))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    if !response.ok() {
        return Err(format!("the server answered HTTP {}", response.status()));
    }
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let body = response.body().ok_or("the response has no body")?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(256 << 20) as usize);
    let mut reported = 0u64;
    report(Reply::Download { loaded: 0, total });
    loop {
        let chunk: ReadableStreamReadResult = JsFuture::from(reader.read())
            .await
            .map_err(js_error)?
            .unchecked_into();
        if chunk.get_done().unwrap_or(true) {
            break;
        }
        let chunk: Uint8Array = chunk.get_value().unchecked_into();
        let start = bytes.len();
        bytes.resize(start + chunk.length() as usize, 0);
        chunk.copy_to(&mut bytes[start..]);
        // About a hundred progress messages for the whole file is plenty.
        let loaded = bytes.len() as u64;
        if loaded - reported >= total.unwrap_or(1 << 20) / 100 {
            reported = loaded;
            report(Reply::Download { loaded, total });
        }
    }
    report(Reply::Download {
        loaded: bytes.len() as u64,
        total,
    });
    Ok(Fetched {
        sha256: sha256_hex(scope, &bytes).await,
        bytes,
        source: ModelSource::Network,
        keep: true,
    })
}

/// Keeps the model for the next visit, with its `sha256`. A full or unavailable cache only costs
/// a download then.
pub async fn keep_model(
    scope: &DedicatedWorkerGlobalScope,
    url: &str,
    mut bytes: Vec<u8>,
    sha256: &str,
) {
    let Some(cache) = open_cache(scope).await else {
        return;
    };
    let init = ResponseInit::new();
    if let Ok(headers) = Headers::new() {
        let _ = headers.set(SHA256_HEADER, sha256);
        init.set_headers(&headers);
    }
    if let Ok(response) = Response::new_with_opt_u8_array_and_init(Some(&mut bytes), &init) {
        match JsFuture::from(cache.put_with_str(url, &response)).await {
            // For the tests (and the curious): the next visit can start offline from here on.
            Ok(_) => afinar_worker_scope::mark(scope, "afinar:model-kept"),
            Err(e) => web_sys::console::warn_1(&e),
        }
    }
}

/// Drops the kept model (one that is damaged, or that this build cannot read), so that the
/// next visit downloads it instead of failing on it again.
pub async fn forget_model(scope: &DedicatedWorkerGlobalScope, url: &str) {
    if let Some(cache) = open_cache(scope).await {
        let _ = JsFuture::from(cache.delete_with_str(url)).await;
    }
}
