//! Training the user's classes on the frozen backbone, and scoring them.
//!
//! [`dataset`] (classes, photos, split) → [`labelled`] (rows of cached backbone outputs) →
//! [`fit`] (the head's stage) → [`finetune`] (the optional stage that trains the top of the
//! backbone too) → [`evaluate`] (scores). [`pipeline`] runs them in order for the CLI and the
//! browser worker alike; [`audit`] (labels to check) runs after it. [`peers`] lets several
//! workers train the fine-tuning stage together, each on its share of the photos.

pub mod audit;
pub mod dataset;
pub mod evaluate;
pub mod finetune;
pub mod fit;
mod flat;
pub mod labelled;
pub mod peers;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod peers_tests;
pub mod pipeline;

pub use audit::{AuditConfig, Disputed, disputed_labels};
pub use dataset::{Dataset, DatasetError, LeftOut, Part, Sample};
pub use evaluate::{Evaluation, Predicted, evaluate};
pub use fit::{EpochReport, Kept, train_head};
pub use labelled::{LabelledFeatures, TrainError, samples_in, select_rows};
pub use peers::{Alone, Follower, Leader, Link, Peers, ShareRows, StageShare};
pub use pipeline::{
    AugmentedRows, BaseModel, RunError, Split, TrainingRun, TrainingSet, run, run_with,
};
