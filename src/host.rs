//! The one thing long computations need from where they run: a chance for the host to do
//! other work. In a browser worker, messages (such as "cancel") are only delivered between
//! tasks, and CPU-backend reads complete without ever returning to the event loop.

/// Lets the host's event loop run once: a zero-delay timer in the browser, nothing natively.
pub async fn let_host_run() {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::{JsCast, JsValue};
        let global = js_sys::global();
        let Ok(set_timeout) = js_sys::Reflect::get(&global, &"setTimeout".into()) else {
            return;
        };
        let Some(set_timeout) = set_timeout.dyn_ref::<js_sys::Function>() else {
            return;
        };
        let set_timeout = set_timeout.clone();
        let timer = js_sys::Promise::new(&mut |resolve, _reject| {
            // Works in windows and workers alike (`setTimeout` lives on both globals).
            if set_timeout
                .call2(&global, &resolve, &JsValue::from(0))
                .is_err()
            {
                let _ = resolve.call0(&JsValue::NULL);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(timer).await;
    }
}
