//! The recipe controls: one of the ladder's recipes, then single settings. Each edit changes
//! the shared settings, which [`persistence`](super::persistence) saves as soon as they change.

use leptos::prelude::*;

use super::state::use_training;
use afinar_vocabulary::limits::{MAX_EPOCHS, MAX_UNFROZEN_BLOCKS};
use afinar_vocabulary::{RecipeName, TrainSettings, budget, defaults};

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

/// One number of the recipe: its label, bounds, the value shown (the settings a run would use
/// now) and how an entry (clamped to the bounds) changes the settings.
#[component]
fn Setting(
    label: &'static str,
    min: f64,
    #[prop(optional)] max: Option<f64>,
    #[prop(default = "any")] step: &'static str,
    get: fn(&TrainSettings) -> f64,
    set: fn(&mut TrainSettings, f64),
) -> impl IntoView {
    let training = use_training();
    let change = move |ev: leptos::ev::Event| {
        if let Some(v) = number(&ev) {
            let v = v.clamp(min, max.unwrap_or(f64::MAX));
            training.edit_settings(&|s| set(s, v));
        }
    };
    view! {
        <label>
            {label}
            <input type="number" min=min max=max step=step
                prop:value=move || get(&training.effective_settings()) on:change=change />
        </label>
    }
}

#[component]
pub fn Recipe() -> impl IntoView {
    let training = use_training();
    let settings = training.settings;
    // What the controls show: the settings a run would use now.
    let shown = move || training.effective_settings();
    let edit = move |change: &dyn Fn(&mut TrainSettings)| training.edit_settings(change);
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
        let workers = crate::preferences::photo_workers(training.workers.get()) as usize;
        let minutes = s.estimated_seconds(photos, workers) / 60.0;
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
                <select data-testid="recipe-select" on:change=pick>
                    <option value=AUTO prop:selected=move || settings.with(|s| s.auto)>{auto_label}</option>
                    {RecipeName::ALL.into_iter().map(|n| view! {
                        <option value=n.name()
                            prop:selected=move || settings.with(|s| !s.auto && s.recipe == n)>
                            {describe(n)}
                        </option>
                    }).collect_view()}
                </select>
            </label>
            <Setting label="Epochs " min=1.0 max=MAX_EPOCHS as f64 step="1"
                get=|s| s.epochs as f64 set=|s, v| s.epochs = v as usize />
            <Setting label="Learning rate " min=1e-5
                get=|s| s.learning_rate set=|s, v| s.learning_rate = v />
            <Setting label="Validation share " min=0.0 max=0.9 step="0.05"
                get=|s| s.val_fraction set=|s, v| s.val_fraction = v />
            <Setting label="Varied copies per photo " min=0.0 max=16.0 step="1"
                get=|s| s.views as f64 set=|s, v| s.views = v as usize />
            <Setting label="Label smoothing " min=0.0 max=0.4 step="0.05"
                get=|s| s.label_smoothing set=|s, v| s.label_smoothing = v />
            <Setting label="Weight decay " min=0.0
                get=|s| s.weight_decay set=|s, v| s.weight_decay = v />
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
                <Setting label="Blocks to unfreeze " min=1.0 max=MAX_UNFROZEN_BLOCKS as f64 step="1"
                    get=|s| s.unfreeze.unwrap_or(defaults::UNFREEZE) as f64
                    set=|s, v| s.unfreeze = Some(v as usize) />
                <Setting label="Fine-tuning epochs " min=1.0 max=100.0 step="1"
                    get=|s| s.finetune_epochs as f64 set=|s, v| s.finetune_epochs = v as usize />
                <Setting label="Fine-tuning learning rate " min=1e-6
                    get=|s| s.finetune_learning_rate set=|s, v| s.finetune_learning_rate = v />
            </Show>
        </details>
    }
}
