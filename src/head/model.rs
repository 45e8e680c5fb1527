//! The trainable head on the frozen backbone: pooled features → Dense(128, ReLU) → Dense(N),
//! and the trained parts a run produces (the head, and the fine-tuned top of the backbone).

use burn::module::Param;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::{Rng, SeedableRng};

use afinar_vocabulary::defaults;

use crate::architecture::{FEATURE_DIM, FeatureStage};
use crate::model::BackboneTop;

/// Configuration of a [`Head`].
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// Number of the user's classes.
    pub num_classes: usize,
    /// Size of the pooled backbone features.
    #[config(default = "FEATURE_DIM")]
    pub input: usize,
    /// Width of the hidden ReLU layer (the Keras recipe's Dense(128)).
    #[config(default = "defaults::HIDDEN")]
    pub hidden: usize,
    /// Seeds the initial weights. Drawn from a generator of the head's own, not the device's
    /// shared one, so that trainings running at the same time stay reproducible.
    #[config(default = "defaults::SEED")]
    pub seed: u64,
}

/// Dense(hidden, ReLU) → Dense(classes), producing logits.
#[derive(Module, Debug)]
pub struct Head {
    pub hidden: Linear,
    pub output: Linear,
}

impl HeadConfig {
    /// A new head, initialized as Keras does its `Dense` layers (Glorot-uniform weights, zero
    /// biases), which the recipe's reference accuracy was measured with.
    pub fn init(&self, device: &Device) -> Head {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        Head {
            hidden: dense(self.input, self.hidden, &mut rng, device),
            output: dense(self.hidden, self.num_classes, &mut rng, device),
        }
    }
}

/// A Dense layer with Glorot-uniform weights (`±√(6 / (in + out))`) and zero biases.
fn dense(inputs: usize, outputs: usize, rng: &mut impl Rng, device: &Device) -> Linear {
    let limit = (6.0 / (inputs + outputs) as f64).sqrt() as f32;
    let weights: Vec<f32> = (0..inputs * outputs)
        .map(|_| rng.random_range(-limit..limit))
        .collect();
    // Zeros: replaced at once, and a random draw would use the device's shared generator.
    let mut linear = LinearConfig::new(inputs, outputs)
        .with_initializer(Initializer::Zeros)
        .init(device);
    linear.weight = Param::from_data(TensorData::new(weights, [inputs, outputs]), device);
    linear.bias = Some(Param::from_tensor(Tensor::zeros([outputs], device)));
    linear
}

impl Head {
    /// `[N, 1280]` features → `[N, classes]` logits.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.output.forward(relu(self.hidden.forward(features)))
    }

    pub fn num_classes(&self) -> usize {
        self.output.weight.dims()[1]
    }
}

/// What a training run produces: the head and, after the fine-tuning stage, the backbone's top.
#[derive(Module, Debug)]
pub struct TrainedParts {
    pub head: Head,
    pub top: Option<BackboneTop>,
}

impl TrainedParts {
    /// What the frozen backbone must compute for these parts.
    pub fn input_stage(&self) -> FeatureStage {
        match self.unfrozen() {
            0 => FeatureStage::Pooled,
            k => FeatureStage::Boundary(k),
        }
    }

    /// Logits in the user's classes from the frozen backbone's rows at [`Self::input_stage`]
    /// (pooled features, or flattened boundary activations). `[N, width]` → `[N, classes]`.
    pub fn logits(&self, rows: Tensor<2>) -> Tensor<2> {
        let features = match &self.top {
            Some(top) => top.forward_rows(rows),
            None => rows,
        };
        self.head.forward(features)
    }

    /// Blocks of the backbone the parts replace (0 for a head alone).
    pub fn unfrozen(&self) -> usize {
        self.top.as_ref().map_or(0, BackboneTop::unfrozen)
    }
}
