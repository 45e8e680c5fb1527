//! The recipe controls: one of the ladder's recipes, then single settings. Each edit changes
//! the shared settings, which [`persistence`](super::persistence) saves as soon as they change.

use leptos::prelude::*;

use super::state::use_training;
use afinar_protocol::limits::MAX_UNFROZEN_BLOCKS;
use afinar_protocol::{RecipeName, TrainSettings, budget, defaults};

fn number(ev: &leptos::ev::Event) -> Option<f64> {
    event_target_value(ev).parse::<f64>().ok()
}

/// What each recipe of the ladder does, for its choice.
fn describe(name: RecipeName) -> &'static str {
    match name {
        RecipeName::Quick => "Quick: the new classes on the network's features (fastest)",
        RecipeName::Better => "Better: also on varied copies of each photo",
        RecipeName::Best => "Best: better, then the top of the network fine-tuned (slowest)",
    }
}

/// The value of the recipe choice that lets the page pick.
const AUTO: &str = "auto";

#[component]
pub fn Recipe() -> impl IntoView {
    let training = use_training();
    let settings = training.settings;
    // What the controls show: the settings a run would use now.
    let shown = move || training.effective_settings();
    // An edit starts from what is shown and ends the page's own pick.
    let edit = move |change: &dyn Fn(&mut TrainSettings)| {
        let mut s = training.effective_settings_untracked();
        s.auto = false;
        change(&mut s);
        settings.set(s);
    };
    let finetuning = move || shown().unfreeze.is_some();
    let pick = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        if value == AUTO {
            settings.update(|s| s.auto = true);
            return;
        }
        let Some(name) = RecipeName::ALL.into_iter().find(|n| n.name() == value) else {
            return;
        };
        // The photos' validation share and the seed are the user's, not the recipe's.
        settings.update(|s| {
            *s = TrainSettings {
                val_fraction: s.val_fraction,
                seed: s.seed,
                ..TrainSettings::named(name)
            }
        });
    };
    let summary = move || {
        let s = shown();
        let photos = training.photos.with(Vec::len);
        let minutes = s.estimated_seconds(photos) / 60.0;
        let how = if s.auto {
            " (picked for the photos)"
        } else {
            ""
        };
        format!(
            "Recipe: {}{how} · about {minutes:.0} min for {photos} photos",
            s.recipe.name()
        )
    };
    let auto_label = format!(
        "Automatic: the best that trains in about {:.0} minutes here",
        budget::PAGE_SECONDS / 60.0
    );
    view! {
        <details class="recipe">
            <summary data-testid="recipe-summary">{summary}</summary>
            <label>
                "Start from "
                <select data-testid="recipe-select" on:change=pick
                    prop:value=move || settings.with(|s| if s.auto { AUTO } else { s.recipe.name() })>
                    <option value=AUTO>{auto_label}</option>
                    {RecipeName::ALL.into_iter().map(|n| view! {
                        <option value=n.name()>{describe(n)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>
                "Epochs "
                <input type="number" min="1" max="500" prop:value=move || shown().epochs
                    on:change=move |ev| if let Some(v) = number(&ev) { edit(&|s| s.epochs = (v as usize).max(1)) } />
            </label>
            <label>
                "Learning rate "
                <input type="number" min="0.00001" step="any" prop:value=move || shown().learning_rate
                    on:change=move |ev| if let Some(v) = number(&ev) { edit(&|s| s.learning_rate = v) } />
            </label>
            <label>
                "Validation share "
                <input type="number" min="0" max="0.9" step="0.05" prop:value=move || shown().val_fraction
                    on:change=move |ev| if let Some(v) = number(&ev) { edit(&|s| s.val_fraction = v) } />
            </label>
            <label>
                "Varied copies per photo "
                <input type="number" min="0" max="16" data-testid="views-input" prop:value=move || shown().views
                    on:change=move |ev| if let Some(v) = number(&ev) { edit(&|s| s.views = (v as usize).min(16)) } />
            </label>
            <label>
                "Label smoothing "
                <input type="number" min="0" max="0.4" step="0.05" prop:value=move || shown().label_smoothing
                    on:change=move |ev| if let Some(v) = number(&ev) { edit(&|s| s.label_smoothing = v.clamp(0.0, 0.4)) } />
            </label>
            <label>
                "Weight decay "
                <input type="number" min="0" step="any" prop:value=move || shown().weight_decay
                    on:change=move |ev| if let Some(v) = number(&ev) { edit(&|s| s.weight_decay = v.max(0.0)) } />
            </label>
            <label>
                <input type="checkbox" prop:checked=move || shown().cosine_decay
                    on:change=move |ev| { let on = event_target_checked(&ev); edit(&|s| s.cosine_decay = on) } />
                " Lower the learning rate over the epochs (cosine)"
            </label>
            <label>
                <input type="checkbox" data-testid="finetune-switch" prop:checked=finetuning
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        edit(&|s| s.unfreeze = on.then_some(defaults::UNFREEZE));
                    } />
                " Then fine-tune the top of the network"
            </label>
            <Show when=finetuning>
                <label>
                    "Blocks to unfreeze "
                    <input type="number" min="1" max=MAX_UNFROZEN_BLOCKS prop:value=move || shown().unfreeze.unwrap_or(defaults::UNFREEZE)
                        on:change=move |ev| if let Some(v) = number(&ev) { edit(&|s| s.unfreeze = Some((v as usize).clamp(1, MAX_UNFROZEN_BLOCKS))) } />
                </label>
                <label>
                    "Fine-tuning epochs "
                    <input type="number" min="1" max="100" prop:value=move || shown().finetune_epochs
                        on:change=move |ev| if let Some(v) = number(&ev) { edit(&|s| s.finetune_epochs = (v as usize).max(1)) } />
                </label>
                <label>
                    "Fine-tuning learning rate "
                    <input type="number" min="0.000001" step="any" prop:value=move || shown().finetune_learning_rate
                        on:change=move |ev| if let Some(v) = number(&ev) { edit(&|s| s.finetune_learning_rate = v) } />
                </label>
            </Show>
        </details>
    }
}
