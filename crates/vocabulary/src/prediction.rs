use serde::{Deserialize, Serialize};

/// One labelled output of a classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Output index (0 = background for the ImageNet files).
    pub index: usize,
    pub label: String,
    pub prob: f32,
}

/// Below this probability a photo is *not sure* rather than in the user's top class. Measured on
/// flower photos the head did not train on (`scripts/bench-not-sure`): the highest threshold
/// that gives up at most 5 % of the right answers.
pub const NOT_SURE_BELOW: f64 = 0.7;
