//! The browser app's entry point. Until the in-page app lands this is a placeholder that proves
//! the wasm path: it fetches the model, reads it with the same library code as the CLI, and
//! says what it found.

#[cfg(target_arch = "wasm32")]
fn main() {
    wasm_bindgen_futures::spawn_local(async {
        let message = match load_model().await {
            Ok(weights) => format!(
                "Model ready in your browser: MobileNetV2 with {} convolutions, {} classes (sha256 {}…).",
                weights.convs.len() + 1,
                weights.num_classes(),
                &weights.sha256[..12]
            ),
            Err(e) => format!("Could not load the model: {e}"),
        };
        if let Some(status) = gloo_utils::document().get_element_by_id("status") {
            status.set_text_content(Some(&message));
        }
    });
}

#[cfg(target_arch = "wasm32")]
async fn load_model() -> Result<afinar::MobileNetV2Weights, String> {
    let url = format!("models/{}", afinar::DEFAULT_MODEL_FILE);
    let response = gloo_net::http::Request::get(&url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.ok() {
        return Err(format!("{url} answered HTTP {}", response.status()));
    }
    let bytes = response.binary().await.map_err(|e| e.to_string())?;
    afinar::MobileNetV2Weights::from_tflite(&bytes).map_err(|e| e.to_string())
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("afinar-web is the browser app; build it with `trunk build` (see README)");
}
