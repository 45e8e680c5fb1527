use serde::{Deserialize, Serialize};

/// One labelled output of a classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Output index (0 = background for the ImageNet files).
    pub index: usize,
    pub label: String,
    pub prob: f32,
}
