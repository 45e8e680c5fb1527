//! Messages between Afinar's page and its model worker: plain serializable data, no tensors and
//! no DOM. The page sends [`Request`]s; the worker answers with [`Reply`]s, in order.
//!
//! A crate of its own so the page can speak to the worker without linking the model code. The
//! settings, limits and scores the messages carry are `afinar-vocabulary`'s.

mod f32_bytes;
mod failure;
#[cfg(target_arch = "wasm32")]
pub mod js;
mod model;
pub mod project;
mod rows;
mod training;

use afinar_vocabulary::{Backend, EpochSummary};
use serde::{Deserialize, Serialize};

pub use model::{Classification, ExportedModel, ModelInfo, ModelSource, Publication};
pub use rows::{RowsAhead, RowsPart};
pub use training::{
    DisputedLabel, HeadInfo, PreparedPhoto, StageShare, TrainingOutcome, TrainingRows,
};

/// What a cancelled run says, wherever it stopped.
pub const TRAINING_CANCELLED: &str = "Training was cancelled; your photos and classes are kept.";

/// Page → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Fetch the app's model from `url` (or take it from Cache Storage) and load it.
    LoadDefaultModel { url: String },
    /// Load a `.tflite` the user picked. On failure the current model stays.
    LoadModelFile {
        name: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Run the model on this backend from now on (the user's choice, kept even where slow).
    UseBackend(Backend),
    /// Run the model on the faster backend here: WebGPU on a hardware adapter; the CPU where
    /// there is no adapter or only a software one (such as SwiftShader), which is slower than
    /// the CPU. `BackendReady::fallback` says why when that is the CPU although WebGPU exists.
    UseBestBackend,
    /// Classify one photo (the file's bytes as read from disk).
    Classify {
        id: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Classify one frame of the camera's live preview; answered with
    /// [`Reply::FrameClassified`], so that frames and photos never share ids.
    ClassifyFrame {
        id: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Prepare a training photo ([`PreparedPhoto`]) for recipes needing `rows`.
    Prepare {
        id: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        rows: afinar_vocabulary::RowsNeeded,
    },
    /// Prepare training photos on this many workers at once from now on (at most
    /// [`afinar_vocabulary::limits::MAX_PHOTO_WORKERS`]); 1 prepares them in the worker itself.
    UseWorkers(u32),
    /// Rows of the next [`Request::Train`] (whose set says they came ahead), in order.
    TrainRows(Box<RowsPart>),
    /// Train a head; the worker answers with [`Reply::Epoch`]s, then [`Reply::Trained`], and
    /// uses the new head from then on.
    Train(Box<TrainingRows>),
    /// Stop the training under way after the current epoch. Handled as soon as it arrives.
    CancelTraining,
    /// Use a head file (exported earlier, or kept by the page); answered with
    /// [`Reply::HeadReady`] or [`Reply::HeadRefused`].
    UseHead {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Classify with the ImageNet head only from now on.
    ForgetHead,
    /// Write the classifier in use (the model with the user's head) as a `.tflite`: the model
    /// file's own layers below the freeze boundary, the trained part in float32; answered with
    /// [`Reply::ModelExported`].
    ExportModel,
    /// Write the classifier in use (the model with the user's head) as a web app of its own;
    /// answered with [`Reply::Published`].
    Publish {
        /// Below this probability the app shows a photo as *not sure*.
        not_sure_below: f64,
    },
    /// Start writing a project file; its photos follow in [`Request::AddProjectPhotos`], then
    /// [`Request::FinishProject`]. Replaces a project being written or read.
    SaveProject(Box<project::ProjectStart>),
    /// Photos for the project being written, answered with [`Reply::ProjectProgress`].
    AddProjectPhotos(Vec<project::ProjectPhoto>),
    /// Close the project being written; answered with [`Reply::ProjectBytes`] parts.
    FinishProject,
    /// The next part of a project file the user opened (in order, from its start).
    OpenProjectPart {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// All parts sent: check the file and answer with [`Reply::ProjectOpened`].
    OpenProject,
    /// Photos `from..from + count` of the opened project (in [`project::Manifest::photos`]
    /// order), answered with [`Reply::ProjectPhotos`].
    ProjectPhotos { from: usize, count: usize },
    /// Forget the project being written or read.
    CloseProject,
    /// Check the labels of the last training run's photos: each is scored by heads trained
    /// without it. Answered with [`Reply::LabelsChecked`]; a separate request so that the
    /// training's own time and replies are the training's alone.
    CheckLabels,
    /// Training worker → a helper training worker it started: follow the fine-tuning stage
    /// with this share of its photos. Then, at each step, the helper sends its gradients and
    /// hears their sum over every worker, each as a bare `Float32Array` (no envelope: the
    /// vectors are large and frequent, and a typed array is copied once, not converted).
    FollowStage(Box<StageShare>),
    /// Training worker → a helper: training rows of the share that the next
    /// [`Request::FollowStage`] hands it (whose own rows are empty), in order: its held photos'
    /// boundary activations as `boundary`, their views' as `augmented_boundary`.
    StageRows(Box<RowsPart>),
    /// Training worker → a helper: say your memory ([`Reply::HelperMemory`]), even while
    /// following a stage.
    ReportMemory,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The worker's wasm is running and will receive messages from now on.
    Started,
    /// The worker's files come from another build than the page's (an update arrived while
    /// the page loaded): its loader says so instead of starting, and the page asks for a reload.
    WrongBuild,
    /// Something is under way that the page should show, e.g. "Starting WebGPU…".
    Status(String),
    /// Model download progress (bytes); `total` is absent when the server does not say.
    Download {
        loaded: u64,
        total: Option<u64>,
    },
    ModelReady(ModelInfo),
    /// The default model could not be loaded; nothing can be classified until one is.
    ModelFailed(String),
    /// A user's model file was refused; the current model (if any) stays.
    ModelRefused {
        name: String,
        message: String,
    },
    /// The backend now in use, with the adapter's name where the browser tells it. `fallback`
    /// says why it is not the one asked for.
    BackendReady {
        backend: Backend,
        adapter: String,
        fallback: Option<String>,
    },
    /// The worker hit a bug and stopped; the page starts a new one.
    Crashed(String),
    /// A message the worker could not read (a page and a worker from different builds); nothing
    /// was done, and no other answer to it will come.
    BadRequest(String),
    /// The answer to [`Request::Classify`]; `Err` holds a message for people.
    Classified {
        id: u32,
        result: Result<Classification, String>,
    },
    /// The answer to [`Request::ClassifyFrame`].
    FrameClassified {
        id: u32,
        result: Result<Classification, String>,
    },
    /// The answer to [`Request::Prepare`], with the rows it was asked for.
    Prepared {
        id: u32,
        rows: afinar_vocabulary::RowsNeeded,
        result: Result<PreparedPhoto, String>,
    },
    /// One training epoch finished.
    Epoch(EpochSummary),
    /// Training finished, was cancelled or failed (`Err` holds a message for people).
    Trained(Result<TrainingOutcome, String>),
    HeadReady(HeadInfo),
    HeadRefused(String),
    /// Said by the page's own link, never by a worker: the worker stopped while taking up the
    /// head it was given (after its model had loaded), so the head is not given to the next
    /// worker; the page stops using it, so it cannot stop the next visit too.
    HeadSetAside(String),
    /// The answer to [`Request::ExportModel`]; `Err` holds a message for people.
    ModelExported(Result<ExportedModel, String>),
    /// The answer to [`Request::Publish`]; `Err` holds a message for people.
    Published(Result<Publication, String>),
    /// Photos written to the project so far, or why it cannot be written.
    ProjectProgress(Result<usize, String>),
    /// A part of the finished project file, in order; `last` on its final part. An `Err`
    /// (a message for people) ends it too.
    ProjectBytes(Result<project::ProjectPart, String>),
    /// The answer to [`Request::OpenProject`]: the checked project, or why it was refused.
    ProjectOpened(Result<Box<project::OpenedProject>, String>),
    /// The answer to [`Request::ProjectPhotos`].
    ProjectPhotos(Result<Vec<project::ProjectPhoto>, String>),
    /// The answer to [`Request::CheckLabels`]: the photos whose label is disputed, the most
    /// confident first, or why there are none to show (a message for people).
    LabelsChecked(Result<Vec<DisputedLabel>, String>),
    /// Helper training worker → the training worker that started it: it stopped following
    /// the stage, and why (a message for people).
    StageFailed(String),
    /// Helper → the training worker, answering [`Request::ReportMemory`]: its wasm memory (it
    /// only grows: the peak so far).
    HelperMemory(u64),
}
