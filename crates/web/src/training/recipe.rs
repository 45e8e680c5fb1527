//! The recipe controls. Each edit changes the shared settings, which
//! [`persistence`](super::persistence) saves as soon as they change.

use leptos::prelude::*;

use super::state::use_training;
use afinar_protocol::defaults;
use afinar_protocol::limits::MAX_UNFROZEN_BLOCKS;

fn number(ev: &leptos::ev::Event) -> Option<f64> {
    event_target_value(ev).parse::<f64>().ok()
}

#[component]
pub fn Recipe() -> impl IntoView {
    let settings = use_training().settings;
    let finetuning = move || settings.with(|s| s.unfreeze.is_some());
    view! {
        <details class="recipe">
            <summary>"Recipe"</summary>
            <label>
                "Epochs "
                <input type="number" min="1" max="500" prop:value=move || settings.get().epochs
                    on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.epochs = (v as usize).max(1)) } />
            </label>
            <label>
                "Learning rate "
                <input type="number" min="0.00001" step="any" prop:value=move || settings.get().learning_rate
                    on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.learning_rate = v) } />
            </label>
            <label>
                "Validation share "
                <input type="number" min="0" max="0.9" step="0.05" prop:value=move || settings.get().val_fraction
                    on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.val_fraction = v) } />
            </label>
            <label>
                <input type="checkbox" data-testid="finetune-switch" prop:checked=finetuning
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        settings.update(|s| s.unfreeze = on.then_some(defaults::UNFREEZE));
                    } />
                " Then fine-tune the top of the network"
            </label>
            <Show when=finetuning>
                <label>
                    "Blocks to unfreeze "
                    <input type="number" min="1" max=MAX_UNFROZEN_BLOCKS prop:value=move || settings.get().unfreeze.unwrap_or(defaults::UNFREEZE)
                        on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.unfreeze = Some((v as usize).clamp(1, MAX_UNFROZEN_BLOCKS))) } />
                </label>
                <label>
                    "Fine-tuning epochs "
                    <input type="number" min="1" max="100" prop:value=move || settings.get().finetune_epochs
                        on:change=move |ev| if let Some(v) = number(&ev) { settings.update(|s| s.finetune_epochs = (v as usize).max(1)) } />
                </label>
            </Show>
        </details>
    }
}
