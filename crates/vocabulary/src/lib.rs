//! Afinar's vocabulary: the plain types and constants that the library, the CLI, the page and
//! the model worker all speak. The training recipe as a person sets it ([`TrainSettings`] and
//! its ladder), the limits on what can be asked for, a run's scores, and the `.afinar` project
//! file's manifest.
//!
//! Serde only, no Burn and no DOM: the messages between the page and the worker
//! (`afinar-protocol`) carry these types, and the file formats are written in them, so a change
//! to a message never changes a file format.

mod backend;
pub mod budget;
pub mod defaults;
pub mod limits;
mod prediction;
pub mod project;
mod record;
mod rows;
mod scores;
mod settings;

pub use backend::{Backend, CPU_ADAPTER};
pub use prediction::{NOT_SURE_BELOW, Prediction};
pub use record::{TrainingRecord, utc_date};
pub use rows::RowsNeeded;
pub use scores::{
    CONFUSED_PAIRS_SHOWN, Confused, EpochSummary, LeftOut, MANY_CLASSES, Mistake, RowPrediction,
    RunScores, most_confused, weakest_first,
};
pub use settings::{RecipeName, TrainSettings, total_epochs};

/// File name of the recommended model, as the setup script puts it in place.
pub const DEFAULT_MODEL_FILE: &str = "mobilenet_v2_1.0_224_quant.tflite";

/// Where the page and its inference worker find the recommended model, relative to both.
pub fn default_model_url() -> String {
    format!("models/{DEFAULT_MODEL_FILE}")
}

/// The name `index.html` gives the inference worker it starts before the page's wasm loads.
/// Every page asks for the default model first, so a worker with this name starts reading it at
/// once, and answers the page's own request for it with that load.
pub const EARLY_WORKER_NAME: &str = "afinar-early";

#[cfg(test)]
mod tests;
