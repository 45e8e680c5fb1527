//! The whole "Train your own classes" section, made of the other parts' components.

use leptos::prelude::*;

use super::classes::{self, ClassList, Intake};
use super::curves::Curves;
use super::project::ProjectControls;
use super::run::TrainControls;
use super::scores::Results;
use super::state::use_training;
use crate::notice::Notice;
use crate::tabs::Turn;

/// The whole "Train your own classes" section.
#[component]
pub fn TrainingPanel() -> impl IntoView {
    let training = use_training();
    view! {
        <section
            class="training"
            aria-labelledby="training-title"
            data-testid="training"
            on:drop=move |ev| classes::add_dropped_folder(training, &ev)
            on:dragover=|ev| ev.prevent_default()
        >
            <div class="training-head">
                <h2 id="training-title">"Train your own classes"</h2>
                <p class="muted">
                    "Teach the model new classes from your photos: it learns a small new head on top of "
                    "MobileNetV2, here in the page. Add or drop a folder with one sub-folder per class "
                    "(the folder names become the class names), or add photos to each class."
                </p>
            </div>
            <Notice message=training.message testid="training-message" />
            {move || match training.turn.get() {
                Turn::Mine => {
                    view! {
                        <Intake />
                        <ProjectControls />
                        <ClassList />
                        <TrainControls />
                        <Curves />
                        <Results />
                    }
                        .into_any()
                }
                Turn::Claiming => ().into_any(),
                Turn::Waiting => {
                    view! {
                        <p class="notice" role="status" data-testid="other-tab">
                            "Afinar is open in another tab, which is finishing what it is doing. "
                            "Your classes and photos come here as soon as it is done."
                        </p>
                    }
                        .into_any()
                }
                Turn::Elsewhere => {
                    view! {
                        <p class="notice" role="status" data-testid="other-tab">
                            "Afinar was opened in another tab, and your classes and photos went "
                            "with it: only one tab keeps them at a time, so that two never write "
                            "over each other. "
                            <button
                                data-testid="use-here"
                                on:click=|_| {
                                    let _ = window().location().reload();
                                }
                            >
                                "Use Afinar here"
                            </button>
                        </p>
                    }
                        .into_any()
                }
            }}
        </section>
    }
}
