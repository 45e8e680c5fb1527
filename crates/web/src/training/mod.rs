//! "Train your own classes": the class list and its photos, the recipe, training with live
//! curves, the scores, and the trained head's export and import.
//!
//! Photos are prepared (features computed) by the worker as soon as they are added, once; the
//! photos, their features, the class list, the recipe and the trained head are kept in
//! IndexedDB ([`persistence`]) so a reload loses nothing.
//!
//! The state all parts share is one [`Training`] ([`state`]), provided as a Leptos context and
//! read by each component with `use_training`. Each part uses only parts listed before it:
//! - [`state`]: the shared state, its types and small helpers;
//! - [`saving`]: the photos written to the store, a batch at a time;
//! - [`persistence`]: everything else read from or written to IndexedDB, and starting it all;
//! - [`head`]: the head in use, its export and import;
//! - [`publish`]: the classifier as a web app of its own;
//! - [`classes`]: the class list, class rows, photo thumbnails, adding folders and photos;
//! - [`project`]: the whole project as one `.afinar` file, saved and opened;
//! - [`recipe`]: the recipe controls;
//! - [`run`]: starting and cancelling a run, the worker's replies, the progress;
//! - [`curves`]: loss and accuracy per epoch;
//! - [`scores`]: the scores, the confusion matrix and the photos a run left out;
//! - [`panel`]: the whole section.
//!
//! This file only declares them: none of them uses it.

mod classes;
mod confusion;
mod curves;
mod head;
mod panel;
mod persistence;
mod project;
mod publish;
mod recipe;
mod run;
mod saving;
mod scores;
mod state;

pub use panel::TrainingPanel;
pub use state::Training;
