//! The page's one message bar: shown while its message is set, gone when dismissed.

use leptos::prelude::*;

/// A dismissible notice: the app's (a refused model file, a restarted worker) and the training
/// part's (its messages, the photos a run left out). `testid` tells them apart for the e2e
/// tests; `children`, when given, go under the message (a list, for one).
#[component]
pub fn Notice(
    message: RwSignal<Option<String>>,
    #[prop(default = "notice")] testid: &'static str,
    #[prop(optional)] children: Option<ChildrenFn>,
) -> impl IntoView {
    let text = move || message.get().unwrap_or_default();
    view! {
        <Show when=move || message.with(Option::is_some)>
            <div class="notice" role="status" data-testid=testid>
                {match children.clone() {
                    Some(more) => view! { <div><span>{text}</span>{more()}</div> }.into_any(),
                    None => view! { <span>{text}</span> }.into_any(),
                }}
                <button class="close" aria-label="Dismiss" on:click=move |_| message.set(None)>"×"</button>
            </div>
        </Show>
    }
}
