//! The one thing long computations need from where they run: a chance for the host to do
//! other work. In a browser worker, messages (such as "cancel") are only delivered between
//! tasks, and CPU-backend reads complete without ever returning to the event loop.

/// Lets the host's event loop run once: a message to itself through a `MessageChannel` in the
/// browser, nothing natively. Not `setTimeout(0)`: browsers clamp nested timers to 4 ms, which
/// was a quarter of the page's 10-epoch head training on 1,806 photos.
pub async fn let_host_run() {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::{JsCast, JsValue};
        let Ok(channel) = web_sys::MessageChannel::new() else {
            return;
        };
        let turn = js_sys::Promise::new(&mut |resolve, _reject| {
            // Setting `onmessage` starts the port; the message arrives as a task of its own.
            channel.port1().set_onmessage(Some(resolve.unchecked_ref()));
            if channel.port2().post_message(&JsValue::NULL).is_err() {
                let _ = resolve.call0(&JsValue::NULL);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(turn).await;
        channel.port1().set_onmessage(None);
    }
}
