//! Why a model file was refused: every reader of `.tflite` files says it in these words.

/// Why a model file was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("the model file is empty")]
    Empty,
    #[error("not a TFLite model (the file does not carry the TFLite identifier \"TFL3\")")]
    NotTflite,
    #[error("the TFLite file is damaged or truncated: {0}")]
    Corrupt(String),
    #[error("not a MobileNetV2 1.0/224 model: {0}")]
    WrongArchitecture(String),
    #[error("unsupported TFLite content: {0}")]
    Unsupported(String),
    #[error("the model has {classes} outputs but its label list has {labels} lines")]
    LabelCount { classes: usize, labels: usize },
    #[error("the model file carries no label list (no zip with a .txt is appended to it)")]
    NoLabels,
}
